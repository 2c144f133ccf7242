"""Helm charts and Flux HelmReleases rendered with the real Helm (the SDK package, or the binary).

The chart ``tests/fixtures/helm/web`` is copied into each test's repository; its templates have
known lines, so the locations a rendered object and its fields get are asserted exactly.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from checker.config import load_config
from checker.load import helm, load_paths
from checker.model import Resource, Severity
from checker.options import ScanOptions
from checker.pipeline import load_cluster, scan
from tests.conftest import FIXTURES

FIXTURES = FIXTURES / "helm"
Write = Callable[[str, str], Path]
CONTAINER = ("spec", "template", "spec", "containers", 0)

GIT_SOURCE = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  url: https://git.example.com/org/fleet
  ref:
    branch: main
"""


def release(body: str, name: str = "web", namespace: str = "apps",
            chart: str = "./charts/web") -> str:
    """A HelmRelease of the repository's chart with ``body`` appended under spec."""
    return f"""
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {name}
  namespace: {namespace}
spec:
  interval: 10m
  chart:
    spec:
      chart: {chart}
      sourceRef:
        kind: GitRepository
        name: flux-system
        namespace: flux-system
{body}"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with the web chart under charts/web and the flux-system GitRepository."""
    shutil.copytree(FIXTURES / "web", tmp_path / "charts" / "web")
    (tmp_path / "clusters").mkdir()
    (tmp_path / "clusters" / "source.yaml").write_text(GIT_SOURCE.lstrip(), encoding="utf-8")
    return tmp_path


def cluster_objects(root: Path) -> tuple[dict[str, Resource], helm.LoadResult]:
    config = load_config(root)
    loaded = load_cluster(config.clusters[0], root, config.helm)
    return {r.key: r for r in loaded.resources}, loaded


def test_plain_chart_folder_renders_with_defaults_and_says_so(repo: Path) -> None:
    loaded = load_paths([repo / "charts"], repo)
    keys = sorted(r.key for r in loaded.resources)
    assert keys == ["/v1/Service/default/web-web",
                    "apiextensions.k8s.io/v1/CustomResourceDefinition//widgets.example.com",
                    "apps/v1/Deployment/default/web-web"]
    deploy = next(r for r in loaded.resources if r.kind == "Deployment")
    assert str(deploy.location) == "charts/web/templates/deployment.yaml:2"
    # runAsNonRoot comes from the chart's values.yaml through toYaml .Values.securityContext
    assert str(deploy.locate((*CONTAINER, "securityContext", "runAsNonRoot"))) == \
        "charts/web/values.yaml:7"
    assert str(deploy.locate((*CONTAINER, "name"))) == \
        "charts/web/templates/deployment.yaml:20"
    crd = next(r for r in loaded.resources if r.kind == "CustomResourceDefinition")
    assert crd.location.path == "charts/web/crds/widgets.yaml"
    (entry,) = loaded.coverage
    assert (entry.state, entry.kind, entry.path, entry.produced) == (
        "rendered", "helm", "charts/web/Chart.yaml", 3)
    assert "rendered with its default values as release 'web'" in entry.reason
    assert loaded.findings == []
    assert "charts/web/templates/deployment.yaml" in loaded.files


def test_test_hooks_and_notes_are_not_objects(repo: Path) -> None:
    kinds = {r.kind for r in load_paths([repo / "charts"], repo).resources}
    assert "Pod" not in kinds  # the helm.sh/hook: test Pod is only applied by helm test


def test_helm_release_values_point_at_the_release_line(repo: Path, write: Write) -> None:
    write("apps/web.yaml", release("""
  targetNamespace: web-prod
  values:
    replicas: 3
    image:
      tag: "1.28"
    securityContext:
      privileged: true
""") + "\n---\n" + """
apiVersion: v1
kind: Namespace
metadata:
  name: web-prod
""")
    objects, loaded = cluster_objects(repo)
    # targetNamespace: release name <targetNamespace>-<name>, objects in targetNamespace;
    # the chart folder is not rendered a second time with its defaults
    deploy = objects["apps/v1/Deployment/web-prod/web-prod-web-web"]
    assert "apps/v1/Deployment/default/web-web" not in objects
    assert deploy.body["spec"]["replicas"] == 3
    container = deploy.body["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.28"
    assert container["securityContext"] == {"privileged": True, "runAsNonRoot": True}
    assert str(deploy.location) == "charts/web/templates/deployment.yaml:2"
    assert str(deploy.locate((*CONTAINER, "securityContext", "privileged"))) == \
        "apps/web.yaml:22"
    assert str(deploy.locate(("spec", "replicas"))) == "apps/web.yaml:18"
    assert str(deploy.locate((*CONTAINER, "image"))) == "apps/web.yaml:20"  # the tag line
    assert str(deploy.locate((*CONTAINER, "securityContext", "runAsNonRoot"))) == \
        "charts/web/values.yaml:7"
    helm_entries = [c for c in loaded.coverage if c.kind == "helm"]
    assert [(c.state, c.what, c.path, c.line, c.produced) for c in helm_entries] == [
        ("rendered", "HelmRelease apps/web", "apps/web.yaml", 1, 3)]


def test_release_name_and_crds_skip_and_tests(repo: Path, write: Write) -> None:
    write("apps/web.yaml", release("""
  releaseName: shop
  install:
    crds: Skip
  test:
    enable: true
"""))
    objects, _ = cluster_objects(repo)
    assert "apps/v1/Deployment/apps/shop-web" in objects
    assert "/v1/Pod/apps/shop-web-test" in objects
    assert not any(k.startswith("apiextensions") for k in objects)


def test_scan_reports_privileged_at_the_values_line(repo: Path, write: Write) -> None:
    write("apps/web.yaml", release("""
  values:
    securityContext:
      privileged: true
"""))
    report = scan(ScanOptions(paths=(repo,), root=repo))
    privileged = [f for f in report.findings if f.rule_id == "pss-privileged"]
    assert [(str(f.location), f.resource) for f in privileged] == [
        ("apps/web.yaml:18", "Deployment apps/web-web")]


def test_values_from_configmap_secret_target_path_and_optional(repo: Path,
                                                              write: Write) -> None:
    write("apps/values.yaml", """
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-values
  namespace: apps
data:
  values.yaml: |
    replicas: 2
    podSecurityContext:
      runAsUser: 0
---
apiVersion: v1
kind: Secret
metadata:
  name: web-secret
  namespace: apps
stringData:
  tag: "9.9"
""")
    write("apps/web.yaml", release("""
  valuesFrom:
    - kind: ConfigMap
      name: web-values
    - kind: Secret
      name: web-secret
      valuesKey: tag
      targetPath: image.tag
    - kind: ConfigMap
      name: not-in-the-repository
      optional: true
  values:
    replicas: 4
"""))
    objects, loaded = cluster_objects(repo)
    deploy = objects["apps/v1/Deployment/apps/web-web"]
    assert deploy.body["spec"]["replicas"] == 4  # spec.values wins over valuesFrom
    pod = deploy.body["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsUser": 0}
    assert pod["containers"][0]["image"] == "nginx:9.9"
    assert str(deploy.locate(("spec", "template", "spec", "securityContext", "runAsUser"))) \
        == "apps/values.yaml:10"  # the line inside the ConfigMap's block scalar
    assert deploy.locate((*CONTAINER, "image")).path == "apps/values.yaml"  # Secret key line
    assert deploy.locate((*CONTAINER, "image")).line == 18
    (entry,) = [c for c in loaded.coverage if c.kind == "helm"]
    assert "optional valuesFrom ConfigMap apps/not-in-the-repository" in entry.reason


def test_missing_values_from_is_not_checked(repo: Path, write: Write) -> None:
    write("apps/web.yaml", release("""
  valuesFrom:
    - kind: Secret
      name: web-credentials
"""))
    objects, loaded = cluster_objects(repo)
    assert not any(r.kind == "Deployment" for r in objects.values())
    (finding,) = [f for f in loaded.findings if f.rule_id == "input.not-checked"]
    assert str(finding.location) == "apps/web.yaml:17"
    assert finding.severity is Severity.WARNING
    assert finding.message == ("HelmRelease apps/web was not checked: valuesFrom Secret "
                               "apps/web-credentials is not among the scanned objects, so the "
                               "values the cluster uses are unknown")
    assert [c.state for c in loaded.coverage if c.kind == "helm"] == ["not-checked"]


def test_values_files_replace_the_chart_values(repo: Path, write: Write) -> None:
    write("charts/web/values-prod.yaml", "image:\n  repository: registry.example.com/web\n"
          "  tag: \"2.0\"\n")
    write("apps/web.yaml", release("""
      valuesFiles:
        - charts/web/values-prod.yaml
"""))
    objects, _ = cluster_objects(repo)
    deploy = objects["apps/v1/Deployment/apps/web-web"]
    container = deploy.body["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/web:2.0"
    # values.yaml is replaced, so its securityContext default is gone (as Flux packages it)
    assert container["securityContext"] is None
    assert str(deploy.locate((*CONTAINER, "image"))) == "charts/web/values-prod.yaml:2"
    assert str(deploy.location) == "charts/web/templates/deployment.yaml:2"


def test_vendored_subchart_objects_point_at_the_subchart(repo: Path, write: Write) -> None:
    write("apps/web.yaml", release("""
  values:
    cache:
      enabled: true
      privileged: true
"""))
    objects, _ = cluster_objects(repo)
    cache = objects["apps/v1/StatefulSet/apps/web-cache"]
    assert str(cache.location) == "charts/web/charts/cache/templates/statefulset.yaml:2"
    assert cache.body["spec"]["template"]["spec"]["containers"][0]["securityContext"] == {
        "privileged": True}


def test_post_renderers_patch_and_retag_with_kustomize(repo: Path, write: Write) -> None:
    write("apps/web.yaml", release("""
  postRenderers:
    - kustomize:
        patches:
          - target:
              kind: Deployment
            patch: |
              - op: add
                path: /spec/template/spec/hostNetwork
                value: true
        images:
          - name: nginx
            newName: mirror.example.com/nginx
            newTag: "1.29"
"""))
    objects, _ = cluster_objects(repo)
    deploy = objects["apps/v1/Deployment/apps/web-web"]
    spec = deploy.body["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    assert spec["containers"][0]["image"] == "mirror.example.com/nginx:1.29"
    assert str(deploy.location) == "charts/web/templates/deployment.yaml:2"
    assert "gitops-checker.io/helm-object" not in json.dumps(deploy.body)


def test_template_error_is_an_error_at_the_template_line(repo: Path, write: Write) -> None:
    write("apps/web.yaml", release("""
  values:
    image: "a string where the chart wants a mapping"
"""))
    _, loaded = cluster_objects(repo)
    (finding,) = [f for f in loaded.findings if f.rule_id == "input.helm-error"]
    assert finding.severity is Severity.ERROR
    assert str(finding.location) == "charts/web/templates/deployment.yaml:21"
    assert finding.message.startswith("HelmRelease apps/web: helm template failed: ")
    assert "image" in finding.message


def test_default_render_failure_is_not_checked(write: Write, tmp_path: Path) -> None:
    write("charts/strict/Chart.yaml", "apiVersion: v2\nname: strict\nversion: 0.1.0\n")
    write("charts/strict/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
          "  name: {{ required \"name is required\" .Values.name }}\n")
    loaded = load_paths([tmp_path], tmp_path)
    (finding,) = loaded.findings
    assert finding.rule_id == "input.not-checked"
    assert str(finding.location) == "charts/strict/templates/cm.yaml:4"
    assert "name is required" in finding.message
    assert loaded.resources == []


def test_other_git_repository_is_not_checked(repo: Path, write: Write) -> None:
    write("apps/web.yaml", release("").replace("name: flux-system\n        namespace",
                                               "name: tenant\n        namespace"))
    write("apps/tenant.yaml", GIT_SOURCE.replace("flux-system\n  namespace", "tenant\n"
                                                 "  namespace").replace("org/fleet",
                                                                        "tenant/apps"))
    _, loaded = cluster_objects(repo)
    (finding,) = [f for f in loaded.findings if f.rule_id == "input.not-checked"]
    assert "GitRepository flux-system/tenant is not this repository" in finding.message


def test_without_helm_everything_is_not_checked(repo: Path, write: Write,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "no-bin"))
    monkeypatch.setitem(sys.modules, "helm_python", None)
    write("apps/web.yaml", release(""))
    objects, loaded = cluster_objects(repo)
    assert not any(r.kind == "Deployment" for r in objects.values())
    messages = sorted(f.message for f in loaded.findings)
    assert messages == ["HelmRelease apps/web was not checked: neither the helm binary nor the "
                        "helm-python-sdk package is installed"]


def test_same_release_renders_once(repo: Path, write: Write,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = helm._sdk_render if helm.engine() == "sdk" else helm._binary_render

    def counting(*args: object, **kwargs: object) -> tuple[str, dict[str, str]]:
        calls.append(f"{args[1]}/{args[2]}")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(helm, "_sdk_render", counting)
    monkeypatch.setattr(helm, "_binary_render", counting)
    helm._render_cache.clear()
    write("apps/web.yaml", release("  values:\n    replicas: 7\n"))
    cluster_objects(repo)
    cluster_objects(repo)
    assert calls.count("web/apps") == 1


def test_output_is_deterministic(repo: Path, write: Write) -> None:
    write("apps/web.yaml", release("  values:\n    securityContext:\n      privileged: true\n"))
    from checker.report import RENDERERS

    outputs = []
    for _ in range(2):
        helm._render_cache.clear()
        report = scan(ScanOptions(paths=(repo,), root=repo))
        outputs.append(RENDERERS["json"](report) + RENDERERS["sarif"](report))
    assert outputs[0] == outputs[1]


def test_dependency_not_vendored_is_not_checked(repo: Path, write: Write) -> None:
    chart = repo / "charts" / "web" / "Chart.yaml"
    chart.write_text(chart.read_text(encoding="utf-8") + "  - name: redis\n"
                     "    version: 1.0.0\n    repository: https://charts.example.com\n"
                     "    condition: redis.enabled\n", encoding="utf-8")
    write("apps/web.yaml", release("  values:\n    redis:\n      enabled: true\n"))
    objects, loaded = cluster_objects(repo)
    assert "apps/v1/Deployment/apps/web-web" in objects  # the chart's own objects are checked
    assert not_checked_messages(loaded) == [
        "HelmRelease apps/web dependency redis was not checked: Chart.yaml declares redis but "
        "charts/ does not hold it (Flux fetches chart dependencies; vendor it to have its "
        "objects checked)"]
    # disabled by its condition, the missing dependency is not needed
    write("apps/web.yaml", release("  values:\n    redis:\n      enabled: false\n"))
    objects, loaded = cluster_objects(repo)
    assert "apps/v1/Deployment/apps/web-web" in objects
    assert not_checked_messages(loaded) == []


def not_checked_messages(loaded: helm.LoadResult) -> list[str]:
    return [f.message for f in loaded.findings if f.rule_id == "input.not-checked"]


def test_chart_an_argo_cd_application_renders_is_not_rendered_with_defaults(
        repo: Path, write: Write) -> None:
    write(".gitops-checker.yaml", "argocd:\n  repoURLs: [https://git.example.com/org/fleet]\n")
    write("apps/web-app.yaml", """
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata:
          name: shop
          namespace: argocd
        spec:
          project: default
          source:
            repoURL: https://git.example.com/org/fleet
            path: charts/web
            helm:
              values: |
                replicas: 6
          destination:
            server: https://kubernetes.default.svc
            namespace: shop
    """)
    objects, loaded = cluster_objects(repo)
    deployments = sorted((r.key, r.body["spec"]["replicas"]) for r in objects.values()
                         if r.kind == "Deployment")
    assert deployments == [("apps/v1/Deployment/shop/shop-web", 6)]
    assert not any("(default values)" in c.what for c in loaded.coverage)


def test_chart_ref_to_a_helm_chart_object(repo: Path, write: Write) -> None:
    write("charts/web/values-shop.yaml", "replicas: 9\n")
    write("apps/web.yaml", """
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmChart
metadata:
  name: web-chart
  namespace: apps
spec:
  interval: 10m
  chart: ./charts/web
  sourceRef:
    kind: GitRepository
    name: flux-system
    namespace: flux-system
  valuesFiles:
    - charts/web/values.yaml
    - charts/web/values-shop.yaml
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: apps
spec:
  chartRef:
    kind: HelmChart
    name: web-chart
""")
    objects, loaded = cluster_objects(repo)
    deploy = objects["apps/v1/Deployment/apps/web-web"]
    assert deploy.body["spec"]["replicas"] == 9
    assert str(deploy.locate(("spec", "replicas"))) == "charts/web/values-shop.yaml:1"
    assert not_checked_messages(loaded) == []


def test_git_repository_with_this_repositorys_url_is_this_repository(repo: Path,
                                                                      write: Write) -> None:
    write("apps/web.yaml", release("").replace("name: flux-system\n        namespace",
                                               "name: fleet\n        namespace"))
    write("apps/fleet.yaml", GIT_SOURCE.replace("flux-system\n  namespace", "fleet\n"
                                                "  namespace").replace(
        "org/fleet", "org/fleet.git"))
    objects, loaded = cluster_objects(repo)
    assert "apps/v1/Deployment/apps/web-web" in objects
    assert not_checked_messages(loaded) == []


def test_chart_with_a_symlink_out_of_the_repository_is_not_rendered(
        repo: Path, write: Write, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.yaml"
    outside.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stolen\n",
                       encoding="utf-8")
    (repo / "charts" / "web" / "templates" / "leak.yaml").symlink_to(outside)
    write("apps/web.yaml", release(""))
    objects, loaded = cluster_objects(repo)
    assert not any(r.name == "stolen" for r in objects.values())
    # the release says so, and the loader says it of the chart folder too
    assert sorted(m.split(" resolves to ")[0] for m in not_checked_messages(loaded)) == [
        "Helm chart charts/web was not checked: charts/web/templates/leak.yaml",
        "HelmRelease apps/web was not checked: charts/web/templates/leak.yaml"]


def test_plain_chart_with_a_missing_dependency_says_so(repo: Path) -> None:
    chart = repo / "charts" / "web" / "Chart.yaml"
    chart.write_text(chart.read_text(encoding="utf-8") + "  - name: redis\n"
                     "    version: 1.0.0\n    repository: https://charts.example.com\n",
                     encoding="utf-8")
    loaded = load_paths([repo / "charts"], repo)
    assert any(r.kind == "Deployment" for r in loaded.resources)
    assert not_checked_messages(loaded) == [
        "Helm chart charts/web (default values) dependency redis was not checked: Chart.yaml "
        "declares redis but charts/ does not hold it (vendor it to have its objects checked)"]


def test_chart_of_this_repository_at_another_ref_is_not_checked(repo: Path,
                                                                write: Write) -> None:
    write("clusters/pinned.yaml", GIT_SOURCE.replace("name: flux-system\n  namespace",
                                                     "name: pinned\n  namespace")
          .replace("branch: main", "tag: v1.0.0"))
    write("apps/web.yaml", release("").replace("name: flux-system\n        namespace",
                                               "name: pinned\n        namespace"))
    objects, loaded = cluster_objects(repo)
    assert "apps/v1/Deployment/apps/web-web" not in objects  # not as that release
    (finding,) = [f for f in loaded.findings if f.rule_id == "input.not-checked"]
    assert ("GitRepository flux-system/pinned is this repository, but at tag 'v1.0.0' "
            "(spec.ref), which is not this checkout") in finding.message
