"""Argo CD Applications and ApplicationSets, rendered with the real Kustomize and Helm.

The fixture repository ``tests/fixtures/argocd`` is written here in the shapes of the official
argoproj/argocd-example-apps (an app-of-apps Helm chart of Applications, a directory app, a
Kustomize app, a Helm app with its values in another source via ``ref``, plugin and Jsonnet
apps) and of the ApplicationSet git directory and list generators.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.config import load_config
from checker.load import helmfetch
from checker.load.argocd import (
    ArgoSettings,
    _image_entry,
    glob_regex,
    normalise_repo_url,
    render_template,
)
from checker.model import Resource
from checker.options import ScanOptions
from checker.pipeline import load_cluster, scan
from tests.conftest import FIXTURES
from tests.load.test_helm_remote import cache, chart_repo  # noqa: F401  (the loopback chart repository)

FIXTURE = FIXTURES / "argocd"
ENTRY = (FIXTURE / "bootstrap", FIXTURE / "appsets")


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def loaded_fixture() -> tuple[list[Resource], list[object], list[object]]:
    config = load_config(FIXTURE, None, ENTRY)
    result = load_cluster(config.clusters[0], FIXTURE)
    return result.resources, list(result.coverage), list(result.findings)


def by_key(resources: list[Resource]) -> dict[tuple[str, str, str], Resource]:
    return {(r.kind, r.namespace, r.name): r for r in resources}


def test_app_of_apps_renders_every_source_type_in_its_destination_namespace() -> None:
    resources, _, _ = loaded_fixture()
    found = by_key(resources)
    # directory app: recurse, and the exclude glob {*-test.yaml,drafts/*} drops two files
    pod = found[("Pod", "guestbook", "debug")]
    assert pod.location.path == "guestbook/debug/privileged-pod.yaml"
    assert pod.locate(("spec", "containers", 0, "securityContext", "privileged")).line == 8 + 2
    assert ("Deployment", "guestbook", "guestbook-ui") in found
    assert ("Pod", "guestbook", "excluded-by-pattern") not in found
    assert not any(r.name == "excluded-draft" for r in resources)
    # kustomize app: the overlay Argo CD would write, rendered by real kustomize
    deploy = found[("Deployment", "kustomize-guestbook", "prod-kustomize-guestbook-ui-v2")]
    container = deploy.body["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/guestbook:2.0"
    assert container["securityContext"] == {"privileged": True}
    assert deploy.body["metadata"]["labels"]["team"] == "web"
    assert deploy.body["spec"]["selector"]["matchLabels"]["team"] == "web"
    assert deploy.body["metadata"]["annotations"]["owner"] == "web-team"
    assert deploy.location.path == "kustomize-guestbook/guestbook-ui-deployment.yaml"
    assert deploy.locate(("spec", "template", "spec", "containers", 0)).line == 16
    assert ("Service", "kustomize-guestbook", "prod-kustomize-guestbook-ui-v2") in found
    # helm app, multi-source: $values/envs/prod/values.yaml, parameters, releaseName
    helm = found[("Deployment", "helm-guestbook", "guestbook-prod-ui")]
    assert helm.body["spec"]["replicas"] == 3
    assert helm.body["spec"]["template"]["spec"]["hostNetwork"] is True
    assert helm.body["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.example.com/guestbook:1.1")
    assert str(helm.location) == "helm-guestbook/templates/deployment.yaml:2"
    # fields set through values point at the line that set them: the $values file, the
    # parameter of the Application (itself rendered from the app-of-apps chart)
    assert str(helm.locate(("spec", "template", "spec", "hostNetwork"))) == (
        "envs/prod/values.yaml:1")
    assert str(helm.locate(("spec", "replicas"))) == "apps/templates/helm-guestbook.yaml:15"
    # ApplicationSet git directories: addons/* without addons/disabled, namespace per folder
    assert ("DaemonSet", "metrics", "node-metrics") in found
    assert ("ConfigMap", "logging", "logging-config") in found
    assert not any(r.name == "disabled-addon" for r in resources)
    # ApplicationSet list generator: {{team}} and {{folder}} filled in (no recurse, no exclude)
    assert ("Deployment", "team-alpha", "guestbook-ui") in found
    assert ("Pod", "team-alpha", "excluded-by-pattern") in found
    assert ("Pod", "team-alpha", "debug") not in found


def test_every_application_is_a_coverage_entry_and_unchecked_ones_are_findings() -> None:
    _, coverage, findings = loaded_fixture()
    states = {(c.state, c.what): c for c in coverage}  # type: ignore[attr-defined]
    assert states[("rendered", "Application argocd/root")].produced == 6
    assert states[("rendered", "Application argocd/guestbook")].produced == 2
    assert states[("rendered", "Application argocd/kustomize-guestbook")].produced == 2
    assert states[("rendered", "Application argocd/helm-guestbook")].produced == 1
    assert states[("followed", "ApplicationSet argocd/addons")].produced == 2
    assert states[("rendered", "Application argocd/addon-metrics")].path == "appsets/addons.yaml"
    assert {c.kind for c in coverage} == {"argocd", "helm"}  # type: ignore[attr-defined]
    helm = sorted((c.what, c.path, c.line, c.produced) for c in coverage  # type: ignore[attr-defined]
                  if c.kind == "helm")  # type: ignore[attr-defined]
    assert helm == [
        ("Application argocd/helm-guestbook Helm chart helm-guestbook",
         "apps/templates/helm-guestbook.yaml", 11, 1),
        ("Application argocd/root Helm chart apps", "bootstrap/root.yaml", 12, 6)]
    not_checked = {c.what: c.reason for c in coverage  # type: ignore[attr-defined]
                   if c.state == "not-checked"}  # type: ignore[attr-defined]
    assert set(not_checked) == {
        "Application argocd/outside", "Application argocd/with-plugin",
        "Application argocd/jsonnet-guestbook jsonnet-guestbook/guestbook-ui.jsonnet",
        "ApplicationSet argocd/teams"}
    assert "not this repository" in not_checked["Application argocd/outside"]
    assert "plugins are not run" in not_checked["Application argocd/with-plugin"]
    assert "generator clusters is not evaluated" in not_checked["ApplicationSet argocd/teams"]
    messages = sorted(f.message for f in findings  # type: ignore[attr-defined]
                      if f.rule_id == "input.not-checked")  # type: ignore[attr-defined]
    assert len(messages) == 4
    teams = next(f for f in findings if "argocd/teams" in f.message)  # type: ignore[attr-defined]
    assert (teams.location.path, teams.location.line) == ("appsets/teams.yaml", 12)  # type: ignore[attr-defined]


def test_privileged_pod_behind_an_application_fails_the_scan_from_the_cluster_folder() -> None:
    report = scan(ScanOptions(paths=ENTRY, root=FIXTURE))
    privileged = sorted((f.resource, f.location.path, f.location.line) for f in report.findings
                        if f.rule_id == "pss-privileged")
    assert privileged == [
        ("Deployment kustomize-guestbook/prod-kustomize-guestbook-ui-v2",
         "kustomize-guestbook/guestbook-ui-deployment.yaml", 16),
        ("Pod guestbook/debug", "guestbook/debug/privileged-pod.yaml", 10)]
    hosts = sorted(f.resource for f in report.findings if f.rule_id == "pss-host-namespaces")
    assert hosts == ["DaemonSet metrics/node-metrics",
                     "Deployment helm-guestbook/guestbook-prod-ui",
                     "Pod team-alpha/excluded-by-pattern"]
    result = CliRunner().invoke(cli, ["scan", "--root", str(FIXTURE), "--format", "json",
                                       *(str(p) for p in ENTRY)])
    assert result.exit_code == 1, result.output
    again = CliRunner().invoke(cli, ["scan", "--root", str(FIXTURE), "--format", "json",
                                      *(str(p) for p in ENTRY)])
    assert again.output == result.output  # byte-identical


def test_sources_outside_this_repository_and_broken_paths(tmp_path: Path) -> None:
    write(tmp_path, ".gitops-checker.yaml", """
        argocd: {repoURLs: ['https://git.example.com/team/repo'], detectRepoURL: false}
    """)
    write(tmp_path, "apps/apps.yaml", """
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {name: missing}
        spec:
          source:
            repoURL: ssh://git@git.example.com/team/repo.git
            path: not/there
          destination: {namespace: x}
        ---
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {name: escape}
        spec:
          source:
            repoURL: https://git.example.com/team/repo
            path: ../../etc
        ---
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {name: remote-chart}
        spec:
          source:
            repoURL: https://charts.example.com
            chart: nginx
            targetRevision: 1.2.3
        ---
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {name: two-types}
        spec:
          source:
            repoURL: https://git.example.com/team/repo
            path: apps
            helm: {}
            directory: {}
    """)
    config = load_config(tmp_path, None, [tmp_path / "apps"])
    result = load_cluster(config.clusters[0], tmp_path)
    found = sorted((f.rule_id, f.location.line, f.message.split(":")[0]) for f in result.findings)
    assert found == [
        ("input.argocd-error", 31, "Application argocd/two-types"),
        ("input.missing-path", 7, "Application argocd/missing"),
        ("input.missing-path", 16, "Application argocd/escape"),
        ("input.not-checked", 24, "Application argocd/remote-chart chart nginx was not checked"),
    ]
    assert not [r for r in result.resources if r.kind != "Application"]


def test_destination_maps_an_application_to_its_configured_cluster(tmp_path: Path) -> None:
    write(tmp_path, ".gitops-checker.yaml", """
        argocd:
          repoURLs: ['https://git.example.com/team/repo']
          detectRepoURL: false
          destinations:
            prod-cluster: production
            https://staging.example.com: staging
        clusters:
          - {name: staging, paths: [argocd/shared, argocd/staging]}
          - {name: production, paths: [argocd/shared]}
    """)
    app = """
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {{name: {name}}}
        spec:
          source: {{repoURL: 'https://git.example.com/team/repo', path: workloads/{name}}}
          destination: {dest}
    """
    write(tmp_path, "argocd/shared/web.yaml", app.format(
        name="web", dest="{name: prod-cluster, namespace: web}"))
    write(tmp_path, "argocd/shared/api.yaml", app.format(
        name="api", dest="{server: 'https://staging.example.com/', namespace: api}"))
    write(tmp_path, "argocd/staging/batch.yaml", app.format(
        name="batch", dest="{name: prod-cluster, namespace: batch}"))
    for name in ("web", "api", "batch"):
        write(tmp_path, f"workloads/{name}/cm.yaml",
              f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n")
    config = load_config(tmp_path)
    staging, production = (load_cluster(c, tmp_path) for c in config.clusters)

    def configmaps(result: object) -> list[str]:
        return sorted(f"{r.namespace}/{r.name}" for r in result.resources  # type: ignore[attr-defined]
                      if r.kind == "ConfigMap")

    assert configmaps(staging) == ["api/api"]
    assert configmaps(production) == ["web/web"]
    followed = [(c.what, c.reason) for c in staging.coverage if c.state == "followed"]
    assert followed == [("Application argocd/web", "targets cluster production; checked there")]
    lost = [f for f in staging.findings if f.rule_id == "input.not-checked"]
    assert [(f.location.path, f.location.line) for f in lost] == [
        ("argocd/staging/batch.yaml", 6)]
    assert "whose paths do not include argocd/staging/batch.yaml" in lost[0].message
    report = scan(ScanOptions(paths=(), root=tmp_path))
    assert report.resources_checked == (3 + 1) + (2 + 1)  # Applications and a ConfigMap each


def test_app_of_apps_cycle_and_kustomize_components_and_patch_files(tmp_path: Path) -> None:
    write(tmp_path, ".gitops-checker.yaml",
          "argocd: {repoURLs: ['https://example.com/r'], detectRepoURL: false}\n")
    write(tmp_path, "root/root.yaml", """
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {name: root}
        spec:
          source: {repoURL: 'https://example.com/r', path: root}
          destination: {namespace: argocd}
        ---
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {name: app}
        spec:
          source:
            repoURL: 'https://example.com/r'
            path: app
            kustomize:
              namespace: team
              components: [../component]
              patches:
                - path: patch.yaml
                  target: {kind: Deployment}
              replicas: [{name: web, count: 4}]
    """)
    write(tmp_path, "app/kustomization.yaml", "resources: [deploy.yaml]\n")
    write(tmp_path, "app/patch.yaml", """
        - op: add
          path: /spec/template/spec/hostIPC
          value: true
    """)
    write(tmp_path, "app/deploy.yaml", """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers: [{name: web, image: nginx:1.25}]
    """)
    write(tmp_path, "component/kustomization.yaml", """
        apiVersion: kustomize.config.k8s.io/v1alpha1
        kind: Component
        commonAnnotations: {from-component: "yes"}
    """)
    config = load_config(tmp_path, None, [tmp_path / "root"])
    result = load_cluster(config.clusters[0], tmp_path)
    deploy = next(r for r in result.resources if r.kind == "Deployment")
    assert (deploy.namespace, deploy.body["spec"]["replicas"]) == ("team", 4)
    assert deploy.body["spec"]["template"]["spec"]["hostIPC"] is True
    assert deploy.body["metadata"]["annotations"] == {"from-component": "yes"}
    assert deploy.location.path == "app/deploy.yaml"
    rendered = sorted((c.what, c.produced) for c in result.coverage if c.state == "rendered")
    assert rendered == [("Application argocd/app", 1), ("Application argocd/root", 2)]
    assert not result.findings


def test_kustomize_errors_name_the_application_not_a_temporary_folder(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", """
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {name: bad}
        spec:
          source:
            repoURL: 'https://example.com/r'
            path: app
            kustomize: {namePrefix: x-}
    """)
    write(tmp_path, "app/kustomization.yaml", "resources: [nothing-here.yaml]\n")
    settings = ArgoSettings(repo_urls=(normalise_repo_url("https://example.com/r"),),
                            detect_remote=False)
    from checker.load import argocd, load_paths

    loaded = argocd.follow(load_paths([tmp_path / "a.yaml"], tmp_path), "", settings, tmp_path)
    errors = [f for f in loaded.findings if f.rule_id == "input.kustomize-error"]
    assert len(errors) == 1
    assert errors[0].location.path == "a.yaml" and errors[0].location.line == 8
    assert errors[0].message.startswith(
        "kustomize build Application argocd/bad (path app) failed: ")
    assert "gitops-checker-" not in errors[0].message and "/tmp" not in errors[0].message
    # a remote base is not fetched unless the trusted config allows its host
    write(tmp_path, "app/kustomization.yaml",
          "resources: ['https://github.com/example/remote//base?ref=v1']\n")
    loaded = argocd.follow(load_paths([tmp_path / "a.yaml"], tmp_path), "", settings, tmp_path)
    (remote,) = loaded.findings
    assert remote.rule_id == "input.not-checked" and remote.location.path == "app/kustomization.yaml"
    assert "github.com" in remote.message


@pytest.mark.parametrize(("url", "expected"), [
    ("https://github.com/Org/Repo.git", "github.com/Org/Repo"),
    ("https://GitHub.com/Org/Repo/", "github.com/Org/Repo"),
    ("git@github.com:Org/Repo.git", "github.com/Org/Repo"),
    ("ssh://git@github.com/Org/Repo", "github.com/Org/Repo"),
    ("https://user:token@git.example.com:8443/a/b.git", "git.example.com:8443/a/b"),
])
def test_repository_urls_compare_normalised(url: str, expected: str) -> None:
    assert normalise_repo_url(url) == expected


def test_globs_match_like_argo_cd() -> None:
    pattern = glob_regex("{*-test.yaml,drafts/*}")
    assert pattern.match("smoke-test.yaml") and pattern.match("drafts/a/b.yaml")
    assert not pattern.match("deploy.yaml")
    assert glob_regex("*.yaml").match("sub/dir/x.yaml")  # '*' crosses '/' as in Argo CD
    assert glob_regex("addons/*", cross_slash=False).match("addons/metrics")
    assert not glob_regex("addons/*", cross_slash=False).match("addons/metrics/sub")
    assert glob_regex("envs/**/config.json", cross_slash=False).match("envs/a/b/config.json")
    assert not glob_regex("file-?.json").match("file-10.json")


def test_images_and_templates() -> None:
    assert _image_entry("nginx:1.25") == {"name": "nginx", "newTag": "1.25"}
    assert _image_entry("nginx=registry:5000/mirror/nginx:1.25") == {
        "name": "nginx", "newName": "registry:5000/mirror/nginx", "newTag": "1.25"}
    assert _image_entry("nginx@sha256:abc") == {"name": "nginx", "digest": "sha256:abc"}
    assert render_template({"n": "{{ a }}-{{b.c}}", "k": "{{missing}}"},
                           {"a": "x", "b.c": "y"}, False) == {"n": "x-y", "k": "{{missing}}"}
    assert render_template({"p": "{{.path.path}}/{{index .path.segments 1}}"},
                           {"path": {"path": "a/b", "segments": ["a", "b"]}}, True) == {
        "p": "a/b/b"}


def test_unsupported_go_template_is_not_checked(tmp_path: Path) -> None:
    write(tmp_path, "set.yaml", """
        apiVersion: argoproj.io/v1alpha1
        kind: ApplicationSet
        metadata: {name: s}
        spec:
          goTemplate: true
          generators:
            - list: {elements: [{name: a}]}
          template:
            metadata: {name: '{{ .name | toJson }}'}
            spec: {source: {repoURL: x, path: y}}
    """)
    from checker.load import argocd, load_paths

    loaded = argocd.follow(load_paths([tmp_path / "set.yaml"], tmp_path), "",
                           ArgoSettings(detect_remote=False), tmp_path)
    assert [c.state for c in loaded.coverage] == ["not-checked"]
    assert ("Go template '{{ .name | toJson }}': function 'toJson' is not evaluated"
            in loaded.findings[0].message)


GO_APPSET = """
    apiVersion: argoproj.io/v1alpha1
    kind: ApplicationSet
    metadata: {name: envs, namespace: argocd}
    spec:
      goTemplate: true
      goTemplateOptions: ["missingkey=error"]
      generators:
        - list:
            elements:
              - {cluster: Prod-EU, tier: gold, replicas: 3}
              - {cluster: staging, replicas: 1}
      template:
        metadata:
          name: '{{ .cluster | normalize }}-web'
          labels:
            tier: '{{ if hasKey . "tier" }}{{ .tier }}{{ else }}none{{ end }}'
        spec:
          project: default
          source:
            repoURL: https://example.com/r
            path: '{{ if eq .cluster "staging" }}apps/staging{{ else }}apps/prod{{ end }}'
            kustomize:
              namePrefix: '{{ printf "%s-" (.cluster | lower | trunc 4) }}'
          destination: {server: https://kubernetes.default.svc, namespace: '{{ .cluster | lower }}'}
"""


def _go_appset(tmp_path: Path, text: str) -> Any:
    write(tmp_path, "set.yaml", text)
    for env in ("prod", "staging"):
        write(tmp_path, f"apps/{env}/cm.yaml", f"apiVersion: v1\nkind: ConfigMap\n"
              f"metadata: {{name: {env}}}\n")
        write(tmp_path, f"apps/{env}/kustomization.yaml", "resources: [cm.yaml]\n")
    from checker.load import argocd, load_paths

    return argocd.follow(load_paths([tmp_path / "set.yaml"], tmp_path), "",
                         ArgoSettings(repo_urls=("example.com/r",), detect_remote=False),
                         tmp_path)


def test_go_template_applicationset_renders_what_argo_cd_renders(tmp_path: Path) -> None:
    loaded = _go_appset(tmp_path, GO_APPSET.replace(
        '{{ if hasKey . "tier" }}{{ .tier }}{{ else }}none{{ end }}', "{{ .cluster }}"))
    assert loaded.findings == []
    rendered = sorted(c.what for c in loaded.coverage if c.state == "rendered")
    assert rendered == ["Application argocd/prod-eu-web", "Application argocd/staging-web"]
    # path, namePrefix and destination namespace came from the templates
    configmaps = sorted((r.namespace, r.name) for r in loaded.resources if r.kind == "ConfigMap")
    assert configmaps == [("prod-eu", "prod-prod"), ("staging", "stag-staging")]


def test_go_template_missing_key_fails_as_in_argo_cd(tmp_path: Path) -> None:
    loaded = _go_appset(tmp_path, GO_APPSET.replace(
        '{{ if hasKey . "tier" }}{{ .tier }}{{ else }}none{{ end }}', "{{ .tier }}"))
    assert not [r for r in loaded.resources if r.kind == "ConfigMap"]
    (finding,) = loaded.findings
    assert finding.rule_id == "input.not-checked"
    assert "Go template '{{ .tier }}' fails as Argo CD executes it" in finding.message
    assert "map has no entry for key 'tier'" in finding.message


def test_go_template_function_outside_the_subset_names_it(tmp_path: Path) -> None:
    loaded = _go_appset(tmp_path, GO_APPSET)
    assert not [r for r in loaded.resources if r.kind == "ConfigMap"]
    (finding,) = loaded.findings
    assert "function 'hasKey' is not evaluated" in finding.message
    assert finding.location.path == "set.yaml"


def test_json_coverage_is_deterministic() -> None:
    first = [json.dumps(c.__dict__, sort_keys=True) for c in loaded_fixture()[1]]
    second = [json.dumps(c.__dict__, sort_keys=True) for c in loaded_fixture()[1]]
    assert first == second


def test_git_files_generator_reads_parameters_from_this_repository(tmp_path: Path) -> None:
    write(tmp_path, "envs/dev/config.json", '{"env": {"name": "dev", "replicas": 2}}\n')
    write(tmp_path, "envs/prod/config.json", '{"env": {"name": "prod", "replicas": 5}}\n')
    write(tmp_path, "envs/prod/nested/config.json", '{"env": {"name": "ignored"}}\n')
    write(tmp_path, "workload/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: w}\n")
    write(tmp_path, "set.yaml", """
        apiVersion: argoproj.io/v1alpha1
        kind: ApplicationSet
        metadata: {name: envs, namespace: gitops}
        spec:
          generators:
            - git:
                repoURL: https://example.com/r.git
                files: [{path: 'envs/*/config.json'}]
          template:
            metadata: {name: 'web-{{env.name}}'}
            spec:
              source: {repoURL: https://example.com/r, path: workload}
              destination: {namespace: '{{path.basename}}-{{env.replicas}}'}
    """)
    from checker.load import argocd, load_paths

    settings = ArgoSettings(repo_urls=("example.com/r",), detect_remote=False)
    loaded = argocd.follow(load_paths([tmp_path / "set.yaml"], tmp_path), "", settings,
                           tmp_path)
    assert sorted(r.namespace for r in loaded.resources if r.kind == "ConfigMap") == [
        "dev-2", "prod-5"]
    assert sorted(c.what for c in loaded.coverage if c.state == "rendered") == [
        "Application gitops/web-dev", "Application gitops/web-prod"]
    assert not loaded.findings


def test_remote_chart_sources_are_fetched_only_from_allowed_hosts(
        chart_repo: str, cache: Path, tmp_path: Path) -> None:  # noqa: F811
    app = """
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {name: web, namespace: argocd}
        spec:
          source:
            repoURL: http://CHART_REPO
            chart: web
            targetRevision: '>=1.0.0'
            helm:
              valuesObject: {replicas: 4}
          destination: {namespace: shop}
    """.replace("CHART_REPO", chart_repo)
    write(tmp_path, "apps/web.yaml", app)
    write(tmp_path, ".gitops-checker.yaml", f"helm: {{allowedHosts: ['{chart_repo}']}}\n")
    config = load_config(tmp_path, None, [tmp_path / "apps"])
    with helmfetch.allow_loopback_for_tests():
        loaded = load_cluster(config.clusters[0], tmp_path, config.helm)
    deploy = next(r for r in loaded.resources if r.kind == "Deployment")
    assert (deploy.namespace, deploy.body["spec"]["replicas"]) == ("shop", 4)
    container = deploy.body["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"] == {"privileged": True}  # web 1.1.0's default
    assert str(deploy.locate(("spec", "replicas"))) == "apps/web.yaml:10"
    assert [c.reason for c in loaded.coverage if c.state == "followed"] == [
        f"chart web 1.1.0 from http://{chart_repo}"]
    assert not loaded.findings
    # the official multi-source shape: a remote chart, its values from this repository ($ref)
    write(tmp_path, "apps/web.yaml", """
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {name: web, namespace: argocd}
        spec:
          sources:
            - repoURL: http://CHART_REPO
              chart: web
              targetRevision: 1.0.0
              helm:
                valueFiles: [$values/envs/web.yaml]
            - repoURL: https://example.com/org/platform.git
              ref: values
          destination: {namespace: shop}
    """.replace("CHART_REPO", chart_repo))
    write(tmp_path, "envs/web.yaml", "replicas: 7\n")
    write(tmp_path, ".gitops-checker.yaml", f"""
        helm: {{allowedHosts: ['{chart_repo}']}}
        argocd: {{repoURLs: [https://example.com/org/platform], detectRepoURL: false}}
    """)
    config = load_config(tmp_path, None, [tmp_path / "apps"])
    with helmfetch.allow_loopback_for_tests():
        multi = load_cluster(config.clusters[0], tmp_path, config.helm)
    deploy = next(r for r in multi.resources if r.kind == "Deployment")
    assert deploy.body["spec"]["replicas"] == 7
    assert str(deploy.locate(("spec", "replicas"))) == "envs/web.yaml:1"
    assert not multi.findings
    # without the host in helm.allowedHosts: not checked, never fetched (a constraint needs
    # the repository's index; an exact version already in the cache would be used offline)
    web = tmp_path / "apps/web.yaml"
    web.write_text(web.read_text().replace("targetRevision: 1.0.0", "targetRevision: '>=1'"))
    write(tmp_path, ".gitops-checker.yaml", """
        helm: {allowedHosts: []}
        argocd: {repoURLs: [https://example.com/org/platform], detectRepoURL: false}
    """)
    config = load_config(tmp_path, None, [tmp_path / "apps"])
    with helmfetch.allow_loopback_for_tests():
        refused = load_cluster(config.clusters[0], tmp_path, config.helm)
    (finding,) = refused.findings
    assert finding.rule_id == "input.not-checked" and finding.location.line == 7
    assert "is not in helm.allowedHosts" in finding.message


def test_chart_dependencies_not_vendored_are_not_checked(tmp_path: Path) -> None:
    write(tmp_path, "app.yaml", """
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {name: site}
        spec:
          source: {repoURL: 'https://example.com/r', path: chart}
          destination: {namespace: site}
    """)
    write(tmp_path, "chart/Chart.yaml", """
        apiVersion: v2
        name: site
        version: 0.1.0
        dependencies:
          - {name: database, version: 9.0.3, repository: https://charts.example.com}
          - {name: cache, version: 1.0.0-rc.1, repository: https://charts.example.com}
    """)
    write(tmp_path, "chart/templates/cm.yaml",
          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: site}\n")
    write(tmp_path, "chart/charts/cache/Chart.yaml", "apiVersion: v2\nname: cache\n"
          "version: 1.0.0-rc.1\n")
    from checker.load import argocd, load_paths

    settings = ArgoSettings(repo_urls=("example.com/r",), detect_remote=False)
    loaded = argocd.follow(load_paths([tmp_path / "app.yaml"], tmp_path), "", settings,
                           tmp_path)
    assert [r.name for r in loaded.resources if r.kind == "ConfigMap"] == ["site"]
    (finding,) = loaded.findings
    assert finding.rule_id == "input.not-checked"
    assert "dependency database is declared in chart/Chart.yaml" in finding.message


def test_links_out_of_the_repository_are_never_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    repo = tmp_path / "repo"
    write(outside, "secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
          "stringData: {token: hunter2}\n")
    write(outside, "params.json", '{"name": "hunter2"}\n')
    write(repo, "envs/a/config.json", '{"name": "a"}\n')
    (repo / "envs/b").mkdir(parents=True)
    (repo / "envs/b/config.json").symlink_to(outside / "params.json")
    (repo / "manifests").mkdir()
    (repo / "manifests/link.yaml").symlink_to(outside / "secret.yaml")
    write(repo, "set.yaml", """
        apiVersion: argoproj.io/v1alpha1
        kind: ApplicationSet
        metadata: {name: envs}
        spec:
          generators:
            - git: {repoURL: 'https://example.com/r', files: [{path: 'envs/*/config.json'}]}
          template:
            metadata: {name: 'app-{{name}}'}
            spec:
              source: {repoURL: 'https://example.com/r', path: manifests}
              destination: {namespace: '{{name}}'}
    """)
    from checker.load import argocd, load_paths

    settings = ArgoSettings(repo_urls=("example.com/r",), detect_remote=False)
    loaded = argocd.follow(load_paths([repo / "set.yaml"], repo), "", settings, repo)
    assert not [r for r in loaded.resources if r.kind != "ApplicationSet"]
    text = " ".join([f.message for f in loaded.findings] + [c.what for c in loaded.coverage])
    assert "hunter2" not in text
    assert "envs/b/config.json was not checked" in text
    assert "manifests/link.yaml was not checked" in text
    assert [c.what for c in loaded.coverage if c.state == "rendered"] == [
        "Application argocd/app-a"]
