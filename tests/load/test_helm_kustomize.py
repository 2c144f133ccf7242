"""``helmCharts:`` in a kustomization: real Kustomize, with gitops-checker's helm shim behind it.

Kustomize gets ``--enable-helm --helm-command <shim>``; the shim renders through
``checker.load.helm`` (the binary, else the SDK), so no helm binary is needed and Kustomize
never pulls a chart: a chart that is not vendored is a Kustomize error that says so.
"""

from __future__ import annotations

import http.server
import shutil
import threading
from pathlib import Path

from checker.load import helmshim, load_paths
from tests.conftest import FIXTURES

FIXTURES = FIXTURES / "helm"
CONTAINER = ("spec", "template", "spec", "containers", 0)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_helm_charts_render_through_the_shim_and_kustomize_patches_apply(tmp_path: Path,
                                                                         ) -> None:
    shutil.copytree(FIXTURES / "web", tmp_path / "app" / "charts" / "web")
    write(tmp_path / "app" / "kustomization.yaml", """\
namespace: team
helmCharts:
  - name: web
    releaseName: shop
    valuesInline:
      replicas: 5
      securityContext:
        privileged: true
patches:
  - target:
      kind: Deployment
    patch: |
      - op: add
        path: /spec/template/spec/hostNetwork
        value: true
""")
    loaded = load_paths([tmp_path / "app"], tmp_path)
    assert [f.message for f in loaded.findings] == []
    deploy = next(r for r in loaded.resources if r.kind == "Deployment")
    assert deploy.key == "apps/v1/Deployment/team/shop-web"
    spec = deploy.body["spec"]
    assert spec["replicas"] == 5
    assert spec["template"]["spec"]["hostNetwork"] is True
    assert spec["template"]["spec"]["containers"][0]["securityContext"] == {
        "privileged": True, "runAsNonRoot": True}
    # generated objects point at the kustomization that declares the chart
    assert deploy.location.path == "app/kustomization.yaml"
    assert sorted(r.kind for r in loaded.resources) == ["Deployment", "Pod", "Service"]
    # the chart folder under charts/ is the kustomization's chartHome, not a chart to render
    assert [c.kind for c in loaded.coverage if c.kind == "helm"] == []


def test_a_chart_that_is_not_vendored_is_not_pulled(tmp_path: Path) -> None:
    requests: list[str] = []

    class Counting(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_error(404)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        write(tmp_path / "app" / "kustomization.yaml", f"""\
helmCharts:
  - name: podinfo
    repo: http://127.0.0.1:{server.server_address[1]}
    version: 6.7.0
""")
        loaded = load_paths([tmp_path / "app"], tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    (finding,) = loaded.findings
    assert finding.rule_id == "input.kustomize-error"
    assert finding.location.path == "app/kustomization.yaml"
    assert helmshim.NOT_PULLED in finding.message  # Kustomize's whole message is kept
    assert loaded.resources == []
    assert requests == []  # Kustomize asked the shim to pull; nothing reached the server
    assert helmshim.main(["pull", "podinfo", "--repo", "http://x"]) == 1


def test_shim_version_and_unknown_commands(capsys: object) -> None:
    assert helmshim.main(["version", "-c", "--short"]) == 0
    assert helmshim.main(["install", "x"]) == 1


def test_a_patched_field_of_chart_output_points_at_the_patch(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "web", tmp_path / "app" / "charts" / "web")
    write(tmp_path / "app" / "kustomization.yaml", """\
helmCharts:
  - name: web
    releaseName: shop
patches:
  - path: host-network.yaml
""")
    write(tmp_path / "app" / "host-network.yaml", """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-web
spec:
  template:
    spec:
      hostNetwork: true
""")
    loaded = load_paths([tmp_path / "app"], tmp_path)
    assert [f.message for f in loaded.findings] == []
    deploy = next(r for r in loaded.resources if r.kind == "Deployment")
    assert deploy.body["spec"]["template"]["spec"]["hostNetwork"] is True
    where = deploy.locate(("spec", "template", "spec", "hostNetwork"))
    assert str(where) == "app/host-network.yaml:8"
