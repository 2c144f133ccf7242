"""Flux, as kustomize-controller applies it: sourceRef, ExternalArtifact, patches, images,
components, names, commonMetadata, substituteFrom, spec.ignore; real ``kubectl kustomize``.

The repositories are written here in the shapes of the official examples
(fluxcd/flux2-kustomize-helm-example: clusters/<env> with Kustomizations reading
ExternalArtifacts of an ArtifactGenerator over apps/ and infrastructure/;
fluxcd/flux2-multi-tenancy: a tenant's GitRepository of another repository).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.config import load_config
from checker.pipeline import load_cluster
from tests.conftest import FIXTURES, kustomize_build, needs_kustomize

Write = Callable[[str, str], Path]
pytestmark = needs_kustomize

POD = """
    apiVersion: v1
    kind: Pod
    metadata:
      name: {name}
    spec:
      containers:
        - name: app
          image: {image}
"""
DEPLOY = """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      labels: {app: web}
    spec:
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
            - name: web
              image: nginx:1.27
              securityContext:
                privileged: false
"""


def scan_json(root: Path, *paths: str, extra: tuple[str, ...] = ()) -> tuple[int, dict]:
    args = ["scan", *(str(root / p) for p in paths), "--root", str(root), "--format", "json",
            *extra]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def load(root: Path, *paths: str) -> tuple[list, list, list]:
    (cluster,) = load_config(root, default_paths=[root / p for p in paths]).clusters
    loaded = load_cluster(cluster, root)
    return loaded.resources, loaded.findings, loaded.coverage


def test_oci_repository_source_is_not_this_repository(write: Write, tmp_path: Path) -> None:
    """``path: ./`` of an OCIRepository used to load the whole repository into production."""
    write("clusters/production/apps.yaml", """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: apps, namespace: flux-system}
        spec:
          path: ./
          sourceRef:
            kind: OCIRepository
            name: apps
    """)
    write("clusters/production/source.yaml", """
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: OCIRepository
        metadata: {name: apps, namespace: flux-system}
        spec:
          url: oci://ghcr.io/example/apps
    """)
    write("clusters/staging/debug.yaml", POD.format(name="debug", image="busybox:1.36").replace(
        "image: busybox:1.36", "image: busybox:1.36\n      securityContext: {privileged: true}"))
    resources, findings, coverage = load(tmp_path, "clusters/production")
    assert "debug" not in {r.name for r in resources}
    (finding,) = [f for f in findings if f.rule_id == "input.not-checked"]
    assert not [f for f in findings if f.rule_id == "input.missing-path"]
    assert finding.message == ("Flux Kustomization flux-system/apps was not checked: it reads "
                               "OCIRepository flux-system/apps, which is not this repository")
    assert (finding.location.path, finding.location.line) == (
        "clusters/production/apps.yaml", 6)
    assert [(c.state, c.kind) for c in coverage] == [("not-checked", "flux")]


def test_tenant_git_repository_of_another_repository_is_not_checked(write: Write,
                                                                      tmp_path: Path) -> None:
    """flux2-multi-tenancy: a tenant syncs a branch of its own repository."""
    write("clusters/production/flux-system/gotk-sync.yaml", """
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: GitRepository
        metadata: {name: flux-system, namespace: flux-system}
        spec:
          url: ssh://git@github.com/example/fleet
          ref: {branch: main}
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: flux-system, namespace: flux-system}
        spec:
          path: ./clusters/production
          sourceRef: {kind: GitRepository, name: flux-system}
    """)
    write("clusters/production/tenants.yaml", """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: tenants, namespace: flux-system}
        spec:
          path: ./tenants/production
          sourceRef: {kind: GitRepository, name: flux-system}
    """)
    write("tenants/base/dev-team/sync.yaml", """
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: GitRepository
        metadata: {name: dev-team, namespace: apps}
        spec:
          url: https://github.com/example/dev-team-apps
          ref: {branch: production}
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: dev-team, namespace: apps}
        spec:
          path: ./deploy/production
          sourceRef: {kind: GitRepository, name: dev-team}
          targetNamespace: apps
    """)
    write("tenants/base/dev-team/kustomization.yaml", "resources: [sync.yaml]\n")
    write("tenants/production/kustomization.yaml", "resources: [../base/dev-team]\n")
    resources, findings, coverage = load(tmp_path, "clusters/production")
    assert not [f for f in findings if f.rule_id == "input.missing-path"]
    (finding,) = [f for f in findings if f.rule_id == "input.not-checked"]
    assert finding.message == (
        "Flux Kustomization apps/dev-team was not checked: it reads GitRepository "
        "apps/dev-team (https://github.com/example/dev-team-apps), which is not this "
        "repository")
    assert finding.location.path == "tenants/base/dev-team/sync.yaml"
    assert {(c.state, c.what) for c in coverage} >= {
        ("followed", "Flux Kustomization flux-system/tenants"),
        ("not-checked", "Flux Kustomization apps/dev-team")}
    assert "Kustomization apps/dev-team" in {r.display for r in resources}


def write_monorepo(write: Write) -> None:
    """clusters/<env> -> ExternalArtifacts of an ArtifactGenerator over apps/ (the shape of
    flux2-kustomize-helm-example, written for these tests)."""
    write("clusters/production/flux-system/kustomization.yaml", "resources: []\n")
    write("clusters/production/artifacts.yaml", """
        apiVersion: source.extensions.fluxcd.io/v1beta1
        kind: ArtifactGenerator
        metadata: {name: flux-system, namespace: flux-system}
        spec:
          sources:
            - alias: repo
              kind: GitRepository
              name: flux-system
          artifacts:
            - name: apps
              copy:
                - from: "@repo/apps/base/**"
                  to: "@artifact/base/"
                - from: "@repo/apps/production/**"
                  to: "@artifact/production/"
    """)
    write("clusters/production/apps.yaml", """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: apps, namespace: flux-system}
        spec:
          sourceRef:
            kind: ExternalArtifact
            name: apps
          path: ./production
          patches:
            - target: {kind: Deployment, name: web}
              patch: |
                - op: replace
                  path: /spec/template/spec/containers/0/securityContext/privileged
                  value: true
          images:
            - name: nginx
              newName: registry.example.com/nginx
              newTag: "1.28"
    """)
    write("apps/base/kustomization.yaml", "resources: [deploy.yaml]\n")
    write("apps/base/deploy.yaml", DEPLOY)
    write("apps/production/kustomization.yaml", """
        resources: [../base]
        namespace: web
    """)
    write("apps/staging/kustomization.yaml", "resources: [../base]\nnamespace: web-staging\n")


def test_external_artifact_is_read_from_this_repository_with_patches_and_images(
        write: Write, tmp_path: Path) -> None:
    write_monorepo(write)
    resources, findings, coverage = load(tmp_path, "clusters/production")
    assert [f for f in findings if f.category == "input"] == []
    (web,) = [r for r in resources if r.kind == "Deployment"]
    assert web.namespace == "web"  # production only: staging is not in the artifact
    container = web.body["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/nginx:1.28"
    assert container["securityContext"]["privileged"] is True
    assert web.location.path == "apps/base/deploy.yaml"  # the repository file, not the copy
    # the fields Flux changed point at the Flux object's patch and images entries
    privileged = web.locate(("spec", "template", "spec", "containers", 0, "securityContext",
                             "privileged"))
    assert (privileged.path, privileged.line) == ("clusters/production/apps.yaml", 10)
    image = web.locate(("spec", "template", "spec", "containers", 0, "image"))
    assert (image.path, image.line) == ("clusters/production/apps.yaml", 16)
    name = web.locate(("spec", "template", "spec", "containers", 0, "name"))
    assert (name.path, name.line) == ("apps/base/deploy.yaml", 14)
    assert ("followed", "Flux Kustomization flux-system/apps") in {
        (c.state, c.what) for c in coverage}


def test_privileged_patch_through_the_flux_object_fails_the_scan(write: Write,
                                                                 tmp_path: Path) -> None:
    write_monorepo(write)
    code, data = scan_json(tmp_path, "clusters/production")
    assert code == 1
    privileged = [f for f in data["findings"] if "privileged" in f["rule"].lower()
                  or "privileged" in f["message"].lower()]
    assert privileged, data["findings"]
    assert {(f["location"]["path"], f["location"]["line"]) for f in privileged} == {
        ("clusters/production/apps.yaml", 10)}


def test_external_artifact_without_generator_is_not_checked(write: Write,
                                                             tmp_path: Path) -> None:
    write("clusters/prod/apps.yaml", """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: apps, namespace: flux-system}
        spec:
          sourceRef: {kind: ExternalArtifact, name: apps}
          path: ./production
    """)
    _, findings, _ = load(tmp_path, "clusters/prod")
    (finding,) = findings
    assert finding.rule_id == "input.not-checked"
    assert "which no ArtifactGenerator in the checked paths produces" in finding.message


def test_synced_base_is_rendered_as_flux_renders_it_besides_the_overlay(
        write: Write, tmp_path: Path) -> None:
    """A base Flux syncs directly used to be checked only through the overlay."""
    write("apps/base/kustomization.yaml", "resources: [deploy.yaml]\n")
    write("apps/base/deploy.yaml", DEPLOY)
    write("apps/prod/kustomization.yaml", "resources: [../base]\nnamePrefix: prod-\n")
    write("clusters/dev/base.yaml", """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: base, namespace: flux-system}
        spec:
          path: ./apps/base
          sourceRef: {kind: GitRepository, name: flux-system}
          targetNamespace: dev
          namePrefix: dev-
          commonMetadata:
            labels: {team: web}
          patches:
            - target: {kind: Deployment}
              patch: |
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: any}
                spec:
                  template:
                    spec:
                      hostNetwork: true
    """)
    resources, findings, _ = load(tmp_path, ".")
    assert [f for f in findings if f.category == "input"] == []
    deployments = {(r.namespace, r.name): r for r in resources if r.kind == "Deployment"}
    assert set(deployments) == {("", "prod-web"), ("dev", "dev-web")}
    dev = deployments[("dev", "dev-web")]
    assert dev.body["metadata"]["labels"] == {"app": "web", "team": "web"}
    assert dev.body["spec"]["template"]["metadata"]["labels"] == {"app": "web"}  # metadata only
    assert dev.body["spec"]["template"]["spec"]["hostNetwork"] is True
    where = dev.locate(("spec", "template", "spec", "hostNetwork"))
    assert (where.path, where.line) == ("clusters/dev/base.yaml", 12)
    assert "hostNetwork" not in deployments[("", "prod-web")].body["spec"]["template"]["spec"]


def test_components_of_a_flux_kustomization(write: Write, tmp_path: Path) -> None:
    write("apps/web/kustomization.yaml", "resources: [deploy.yaml]\n")
    write("apps/web/deploy.yaml", DEPLOY)
    write("apps/components/debug/kustomization.yaml", """
        apiVersion: kustomize.config.k8s.io/v1alpha1
        kind: Component
        images:
          - name: nginx
            newTag: debug
    """)
    write("clusters/dev/web.yaml", """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: web, namespace: flux-system}
        spec:
          path: ./apps/web
          sourceRef: {kind: GitRepository, name: flux-system}
          components: [../components/debug, ../components/missing]
          ignoreMissingComponents: true
          nameSuffix: -v2
    """)
    resources, findings, _ = load(tmp_path, "clusters/dev")
    assert [f for f in findings if f.category == "input"] == []
    (web,) = [r for r in resources if r.kind == "Deployment"]
    assert web.name == "web-v2"
    assert web.body["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:debug"


def test_substitute_from_configmaps_and_secrets_in_the_repository(write: Write,
                                                                    tmp_path: Path) -> None:
    write("clusters/dev/vars.yaml", """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: cluster-vars, namespace: flux-system}
        data: {tag: "1.0", stage: dev}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: cluster-secret, namespace: flux-system}
        data: {stage: cHJvZA==}
    """)
    write("clusters/dev/apps.yaml", """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: apps, namespace: flux-system}
        spec:
          path: ./apps
          sourceRef: {kind: GitRepository, name: flux-system}
          postBuild:
            substitute: {tag: "2.0"}
            substituteFrom:
              - kind: ConfigMap
                name: cluster-vars
              - kind: Secret
                name: cluster-secret
              - kind: ConfigMap
                name: optional-vars
                optional: true
              - kind: ConfigMap
                name: in-the-cluster
    """)
    write("apps/pod.yaml", POD.format(name="app-${stage}", image="nginx:${tag}"))
    resources, findings, coverage = load(tmp_path, "clusters/dev")
    (pod,) = [r for r in resources if r.kind == "Pod"]
    # the Secret (later) would override the ConfigMap's stage; Secret values never reach a
    # report, so that variable stays as written instead of showing the ConfigMap's value
    assert pod.name == "app-${stage}"
    assert "cHJvZA" not in json.dumps(pod.body) and "prod" not in json.dumps(pod.body)
    assert pod.body["spec"]["containers"][0]["image"] == "nginx:2.0"  # inline wins
    secret, missing = [f for f in findings if f.rule_id == "input.not-checked"]
    assert "Secret flux-system/cluster-secret" in secret.message
    assert "Secret values never reach a report" in secret.message
    assert (secret.location.path, secret.location.line) == ("clusters/dev/apps.yaml", 12)
    assert "ConfigMap flux-system/in-the-cluster" in missing.message
    assert (missing.location.path, missing.location.line) == ("clusters/dev/apps.yaml", 17)
    assert "optional-vars" not in " ".join(c.what for c in coverage)


def test_substitute_from_a_configmap_fills_variables(write: Write, tmp_path: Path) -> None:
    write("clusters/dev/vars.yaml", """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: cluster-vars, namespace: flux-system}
        data: {stage: dev, replicas: "3"}
    """)
    write("clusters/dev/apps.yaml", """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: apps, namespace: flux-system}
        spec:
          path: ./apps
          sourceRef: {kind: GitRepository, name: flux-system}
          postBuild:
            substituteFrom:
              - kind: ConfigMap
                name: cluster-vars
    """)
    write("apps/deploy.yaml", """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web-${stage}
        spec:
          replicas: ${replicas}
    """)
    resources, findings, _ = load(tmp_path, "clusters/dev")
    assert [f for f in findings if f.category == "input"] == []
    (deploy,) = [r for r in resources if r.kind == "Deployment"]
    assert deploy.name == "web-dev"
    assert deploy.body["spec"]["replicas"] == 3


def test_git_repository_ignore_leaves_files_out_of_a_generated_kustomization(
        write: Write, tmp_path: Path) -> None:
    write("clusters/dev/flux-system/gotk-sync.yaml", """
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: GitRepository
        metadata: {name: flux-system, namespace: flux-system}
        spec:
          url: https://github.com/example/fleet
          ignore: |
            /apps/drafts/
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: apps, namespace: flux-system}
        spec:
          path: ./apps
          sourceRef: {kind: GitRepository, name: flux-system}
    """)
    write("apps/live.yaml", POD.format(name="live", image="nginx:1.27"))
    write("apps/drafts/draft.yaml", POD.format(name="draft", image="nginx:1.27"))
    resources, findings, _ = load(tmp_path, "clusters/dev")
    assert [f for f in findings if f.category == "input"] == []
    assert {r.name for r in resources if r.kind == "Pod"} == {"live"}


def test_not_checked_severity_comes_from_the_trusted_config(write: Write,
                                                              tmp_path: Path) -> None:
    write("clusters/prod/apps.yaml", """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: apps, namespace: flux-system}
        spec:
          path: ./
          sourceRef: {kind: Bucket, name: apps}
    """)
    write("clusters/prod/pod.yaml", POD.format(name="ok", image="nginx:1.27"))
    code, data = scan_json(tmp_path, "clusters/prod")
    (finding,) = [f for f in data["findings"] if f["rule"] == "input.not-checked"]
    assert finding["severity"] == "warning"
    write(".gitops-checker.yaml", "coverage:\n  notChecked: error\n")
    code, data = scan_json(tmp_path, "clusters/prod")
    (finding,) = [f for f in data["findings"] if f["rule"] == "input.not-checked"]
    assert finding["severity"] == "error" and code == 1


def test_flux_components_outside_the_repository_are_refused(write: Write,
                                                            tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    write("repo/apps/web/kustomization.yaml", "resources: [deploy.yaml]\n")
    write("repo/apps/web/deploy.yaml", DEPLOY)
    write("repo/clusters/dev/web.yaml", """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: web, namespace: flux-system}
        spec:
          path: ./apps/web
          sourceRef: {kind: GitRepository, name: flux-system}
          components: [../../../outside]
    """)
    resources, findings, _ = load(tmp_path / "repo", "clusters/dev")
    (finding,) = [f for f in findings if f.category == "input"]
    assert finding.message == ("Flux Kustomization flux-system/web: component "
                               "'../../../outside' leaves the repository, so it was not used")
    assert (finding.location.path, finding.location.line) == ("clusters/dev/web.yaml", 7)
    assert [r.name for r in resources if r.kind == "Deployment"] == ["web"]


FIXTURE = FIXTURES / "flux-monorepo"


def test_fixture_monorepo_production_is_what_flux_applies(tmp_path: Path) -> None:
    """tests/fixtures/flux-monorepo (see its NOTICE): production gets its artifact's overlay
    with Flux's patch and image, the staging-only privileged Pod never, and the tenant's and
    the OCI add-ons' sources are reported as not checked."""
    sarif_file = tmp_path / "out.sarif"
    code, data = scan_json(FIXTURE, "clusters/production", extra=("--sarif", str(sarif_file)))
    assert code == 1
    resources = {f["resource"] for f in data["findings"]}
    assert not any("debug" in r for r in resources)
    (host,) = [f for f in data["findings"] if f["rule"] == "pss-host-namespaces"]
    assert host["resource"] == "Deployment web/web"
    assert (host["location"]["path"], host["location"]["line"]) == (
        "clusters/production/apps.yaml", 18)
    assert sorted(f["location"]["path"] for f in data["findings"]
                  if f["rule"] == "input.not-checked") == [
        "clusters/production/addons.yaml", "tenants/base/team-a/sync.yaml"]
    assert data["coverage"]["counts"] == {"rendered": 3, "followed": 3, "not-checked": 2}
    run = json.loads(sarif_file.read_text(encoding="utf-8"))["runs"][0]
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert [n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for n in notes] == [
        "clusters/production/addons.yaml", "tenants/base/team-a/sync.yaml"]
    # the same input, byte for byte the same report
    again = tmp_path / "again.sarif"
    scan_json(FIXTURE, "clusters/production", extra=("--sarif", str(again)))
    assert again.read_bytes() == sarif_file.read_bytes()


def test_fixture_monorepo_staging_gets_the_privileged_pod(tmp_path: Path) -> None:
    code, data = scan_json(FIXTURE, "clusters/staging")
    assert code == 1
    privileged = [f for f in data["findings"] if f["rule"] == "pss-privileged"]
    assert {f["resource"] for f in privileged} == {"Pod web-staging/debug"}
    assert {f["location"]["path"] for f in privileged} == {"apps/staging/debug.yaml"}
    images = {f["resource"] for f in data["findings"]}
    assert "Deployment web-staging/web" in images


def test_flux_fields_edit_the_folders_own_kustomization(write: Write, tmp_path: Path) -> None:
    """fluxcd/pkg's generator edits the folder's kustomization in place: Flux's namePrefix
    replaces the folder's, its images merge into the folder's entry of the same name, its
    patches are appended. A wrapper around the folder gives other objects (prefix twice, the
    tag lost); the expected objects are the real Kustomize's build of the edited file."""
    write("apps/web/deploy.yaml", DEPLOY)
    own = """
        namePrefix: own-
        resources: [deploy.yaml]
        images:
          - name: nginx
            newName: registry.example.com/nginx
    """
    write("apps/web/kustomization.yaml", own)
    write("clusters/dev/web.yaml", """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: web, namespace: flux-system}
        spec:
          path: ./apps/web
          sourceRef: {kind: GitRepository, name: flux-system}
          targetNamespace: dev
          namePrefix: flux-
          images:
            - name: nginx
              newTag: "1.28"
          patches:
            - target: {kind: Deployment, name: web}
              patch: |
                - op: replace
                  path: /spec/template/spec/containers/0/securityContext/privileged
                  value: true
    """)
    # what the generator writes in place of apps/web/kustomization.yaml
    write("expected/deploy.yaml", DEPLOY)
    write("expected/kustomization.yaml", """
        namePrefix: flux-
        namespace: dev
        resources: [deploy.yaml]
        images:
          - name: nginx
            newName: registry.example.com/nginx
            newTag: "1.28"
        patches:
          - target: {kind: Deployment, name: web}
            patch: |
              - op: replace
                path: /spec/template/spec/containers/0/securityContext/privileged
                value: true
    """)
    (expected,) = kustomize_build(tmp_path / "expected")
    resources, findings, _ = load(tmp_path, "clusters/dev")
    assert [f for f in findings if f.category == "input"] == []
    (web,) = [r for r in resources if r.kind == "Deployment"]
    assert (web.namespace, web.name) == ("dev", "flux-web") == (
        expected["metadata"]["namespace"], expected["metadata"]["name"])
    assert web.body["spec"] == expected["spec"]
    container = web.body["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/nginx:1.28"
    assert container["securityContext"]["privileged"] is True
    # the object still points at the repository's file, the patched field at the Flux object
    assert web.location.path == "apps/web/deploy.yaml"
    where = web.locate(("spec", "template", "spec", "containers", 0, "securityContext",
                        "privileged"))
    assert where.path == "clusters/dev/web.yaml"
    assert (tmp_path / "apps/web/kustomization.yaml").read_text(encoding="utf-8") \
        .startswith("namePrefix: own-")  # the repository is untouched


def test_in_place_build_reaches_bases_and_files_of_the_folder(write: Write,
                                                               tmp_path: Path) -> None:
    write("apps/base/deploy.yaml", DEPLOY)
    write("apps/base/kustomization.yaml", "resources: [deploy.yaml]\n")
    write("apps/dev/kustomization.yaml", """
        resources: [../base]
        patches:
          - path: patches/replicas.yaml
    """)
    write("apps/dev/patches/replicas.yaml", """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec: {replicas: 3}
    """)
    write("clusters/dev/web.yaml", """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: web, namespace: flux-system}
        spec:
          path: ./apps/dev
          sourceRef: {kind: GitRepository, name: flux-system}
          nameSuffix: -dev
    """)
    resources, findings, _ = load(tmp_path, "clusters/dev")
    assert [f for f in findings if f.category == "input"] == []
    (web,) = [r for r in resources if r.kind == "Deployment"]
    assert web.name == "web-dev"
    assert web.body["spec"]["replicas"] == 3
    assert web.location.path == "apps/base/deploy.yaml"


GOTK_SYNC = """
    apiVersion: source.toolkit.fluxcd.io/v1
    kind: GitRepository
    metadata: {name: flux-system, namespace: flux-system}
    spec:
      url: https://github.com/example/fleet
      ref: {branch: main}
    ---
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: {name: apps, namespace: flux-system}
    spec:
      path: ./apps
      sourceRef: {kind: GitRepository, name: flux-system}
"""


def test_sourceignore_files_leave_their_folders_files_out(write: Write,
                                                          tmp_path: Path) -> None:
    """source-controller reads every .sourceignore, each scoped to its folder."""
    write("clusters/dev/flux-system/gotk-sync.yaml", GOTK_SYNC)
    write("apps/.sourceignore", "# drafts are not deployed\ndrafts/\n!drafts/keep.yaml\n")
    write("apps/team/.sourceignore", "/local.yaml\n")
    write("apps/live.yaml", POD.format(name="live", image="nginx:1.27"))
    write("apps/drafts/draft.yaml", POD.format(name="draft", image="nginx:1.27"))
    write("apps/drafts/keep.yaml", POD.format(name="keep", image="nginx:1.27"))
    write("apps/team/drafts/nested.yaml", POD.format(name="nested", image="nginx:1.27"))
    write("apps/team/local.yaml", POD.format(name="local", image="nginx:1.27"))
    write("apps/team/sub/local.yaml", POD.format(name="sub-local", image="nginx:1.27"))
    resources, findings, _ = load(tmp_path, "clusters/dev")
    assert [f for f in findings if f.category == "input"] == []
    assert {r.name for r in resources if r.kind == "Pod"} == {"live", "sub-local"}


def test_ignored_file_named_by_a_kustomization_fails_as_flux_fails(write: Write,
                                                                   tmp_path: Path) -> None:
    write("clusters/dev/flux-system/gotk-sync.yaml", GOTK_SYNC.replace(
        "ref: {branch: main}", "ref: {branch: main}\n      ignore: /apps/secret.yaml"))
    write("apps/kustomization.yaml", "namePrefix: x-\nresources: [live.yaml, secret.yaml]\n")
    write("apps/live.yaml", POD.format(name="live", image="nginx:1.27"))
    write("apps/secret.yaml", POD.format(name="hidden", image="nginx:1.27"))
    write("clusters/dev/apps.yaml", """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: prefixed, namespace: flux-system}
        spec:
          path: ./apps
          sourceRef: {kind: GitRepository, name: flux-system}
          namePrefix: dev-
    """)
    _resources, findings, _ = load(tmp_path, "clusters/dev")
    errors = [f for f in findings if f.rule_id == "input.kustomize-error"
              and "prefixed" in f.message]
    assert errors and "secret.yaml" in errors[0].message


TENANT = """
    apiVersion: source.toolkit.fluxcd.io/v1
    kind: GitRepository
    metadata: {name: release, namespace: flux-system}
    spec:
      url: https://github.com/example/fleet.git
      ref: REF
    ---
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: {name: pinned, namespace: flux-system}
    spec:
      path: ./pinned
      sourceRef: {kind: GitRepository, name: release}
"""


@pytest.mark.parametrize(("ref", "named"), [
    ("{branch: release-1.0}", "branch 'release-1.0'"),
    ("{tag: v1.2.0}", "tag 'v1.2.0'"),
    ("{semver: '>=1.0.0'}", "the tag that matches semver '>=1.0.0'"),
    ("{branch: main, commit: 0123abcd}", "commit '0123abcd'"),
    ("{name: refs/pull/7/head}", "name 'refs/pull/7/head'"),
])
def test_git_repository_at_another_ref_is_not_checked(ref: str, named: str, write: Write,
                                                      tmp_path: Path) -> None:
    write("clusters/dev/flux-system/gotk-sync.yaml", GOTK_SYNC)
    write("clusters/dev/pinned.yaml", TENANT.replace("REF", ref))
    write("apps/live.yaml", POD.format(name="live", image="nginx:1.27"))
    write("pinned/old.yaml", POD.format(name="old", image="nginx:1.27"))
    resources, findings, _ = load(tmp_path, "clusters/dev")
    assert {r.name for r in resources if r.kind == "Pod"} == {"live"}
    (finding,) = [f for f in findings if f.rule_id == "input.not-checked"]
    assert f"GitRepository flux-system/release at {named} (spec.ref)" in finding.message
    assert "branch 'main', the ref of GitRepository flux-system/flux-system" in finding.message
    assert finding.location.path == "clusters/dev/pinned.yaml"


def test_same_ref_as_flux_system_is_this_checkout(write: Write, tmp_path: Path) -> None:
    write("clusters/dev/flux-system/gotk-sync.yaml", GOTK_SYNC)
    write("clusters/dev/pinned.yaml", TENANT.replace("REF", "{name: refs/heads/main}"))
    write("apps/live.yaml", POD.format(name="live", image="nginx:1.27"))
    write("pinned/new.yaml", POD.format(name="new", image="nginx:1.27"))
    resources, findings, _ = load(tmp_path, "clusters/dev")
    assert [f for f in findings if f.category == "input"] == []
    assert {r.name for r in resources if r.kind == "Pod"} == {"live", "new"}


def test_in_a_pull_request_the_base_branch_decides(write: Write, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    write("clusters/dev/flux-system/gotk-sync.yaml", GOTK_SYNC)
    write("clusters/dev/pinned.yaml", TENANT.replace("REF", "{branch: release-1.0}"))
    write("apps/live.yaml", POD.format(name="live", image="nginx:1.27"))
    write("pinned/old.yaml", POD.format(name="old", image="nginx:1.27"))
    monkeypatch.setenv("GITHUB_BASE_REF", "release-1.0")
    monkeypatch.setenv("GITHUB_HEAD_REF", "fix-release")
    resources, findings, _ = load(tmp_path, "clusters/dev")
    # the pull request targets release-1.0: that sync is this change; flux-system's main is not
    assert {r.name for r in resources if r.kind == "Pod"} == {"old"}
    messages = [f.message for f in findings if f.rule_id == "input.not-checked"]
    assert len(messages) == 1 and "GitRepository flux-system/flux-system at branch 'main'" \
        in messages[0] and "branch 'release-1.0' (the pull request's base)" in messages[0]


def test_the_checked_out_branch_counts_locally(write: Write, tmp_path: Path) -> None:
    write("clusters/dev/flux-system/gotk-sync.yaml", GOTK_SYNC)
    write("clusters/dev/pinned.yaml", TENANT.replace("REF", "{branch: release-1.0}"))
    write("pinned/old.yaml", POD.format(name="old", image="nginx:1.27"))
    write(".git/HEAD", "ref: refs/heads/release-1.0\n")
    resources, findings, _ = load(tmp_path, "clusters/dev")
    assert [f for f in findings if f.rule_id == "input.not-checked"] == []
    assert "old" in {r.name for r in resources if r.kind == "Pod"}
