"""The ``helm`` binary engine, against a real Helm binary (``scripts/install_helm.sh``).

The rest of the suite renders with the Helm SDK package (no ``helm`` on PATH). Here the real
binary is put on PATH and must give what the SDK gives: the same objects per template, the same
findings and locations in a whole scan, the chart's own objects when a dependency is not
vendored (the CLI refuses such a chart; the SDK renders it without the subchart), and a
template error at the same template line. Without the binary the tests skip locally and fail
in CI (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from checker.load import helm
from checker.options import ScanOptions
from checker.pipeline import scan
from checker.report import RENDERERS
from tests.conftest import FIXTURES
from tests.load.test_helm import GIT_SOURCE, release

PROJECT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("GITOPS_CHECKER_HELM_BINARY") or PROJECT / ".tools/helm/helm")
WEB = FIXTURES / "helm" / "web"


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """PATH with the real helm binary first; the render cache cleared around the test."""
    if not BINARY.is_file():
        pytest.skip(f"no helm binary at {BINARY} (bash scripts/install_helm.sh)")
    monkeypatch.setenv("PATH", f"{BINARY.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    helm._render_cache.clear()
    assert helm.engine() == "binary"
    yield BINARY
    helm._render_cache.clear()


def without_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH without any helm: the SDK engine."""
    parts = [p for p in os.environ.get("PATH", "").split(os.pathsep)
             if p and not Path(p, "helm").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(parts))
    helm._render_cache.clear()
    assert helm.engine() == "sdk"


def documents(rendered: dict[str, str]) -> dict[str, list[Any]]:
    return {source: [d for d in yaml.safe_load_all(text) if d is not None]
            for source, text in sorted(rendered.items())
            if not source.endswith("NOTES.txt")}


CASES: dict[str, tuple[str, str, dict[str, Any], bool]] = {
    "defaults": ("web", "default", {}, True),
    "release values": ("shop", "apps", {"replicas": 3, "image": {"tag": "1.28"},
                                        "securityContext": {"privileged": True}}, True),
    "subchart enabled": ("web", "apps", {"cache": {"enabled": True}}, True),
    "null deletes a default": ("web", "apps", {"securityContext": None}, True),
    "without crds": ("web", "apps", {}, False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_binary_renders_what_the_sdk_renders(case: str, on_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    name, namespace, values, crds = CASES[case]
    chart_name, binary = helm._binary_render(WEB, name, namespace, values, crds)
    without_binary(monkeypatch)
    sdk_name, sdk = helm._sdk_render(WEB, name, namespace, values, crds)
    assert chart_name == sdk_name == "web"
    got, want = documents(binary), documents(sdk)
    assert got == want
    assert any(d.get("kind") == "Deployment" for docs in got.values() for d in docs)
    if case == "subchart enabled":
        assert "web/charts/cache/templates/statefulset.yaml" in got
    if case == "without crds":
        assert not any(d.get("kind") == "CustomResourceDefinition"
                       for docs in got.values() for d in docs)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(WEB, tmp_path / "charts" / "web")
    (tmp_path / "clusters").mkdir()
    (tmp_path / "clusters" / "source.yaml").write_text(GIT_SOURCE.lstrip(), encoding="utf-8")
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "web.yaml").write_text(release(
        "  values:\n    replicas: 2\n    securityContext:\n      privileged: true\n"),
        encoding="utf-8")
    return tmp_path


def reports(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], str, str]:
    """The JSON report under the binary (already on PATH), then JSON and SARIF under the SDK."""
    binary = scan(ScanOptions(paths=(root,), root=root, fail_on=None))
    binary_json = RENDERERS["json"](binary)
    without_binary(monkeypatch)
    sdk = scan(ScanOptions(paths=(root,), root=root, fail_on=None))
    return json.loads(binary_json), binary_json, RENDERERS["json"](sdk)


def test_scan_with_the_binary_gives_the_sdk_report(repo: Path, on_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    data, binary_json, sdk_json = reports(repo, monkeypatch)
    assert binary_json == sdk_json
    privileged = [f for f in data["findings"] if "privileged" in json.dumps(f)]
    assert privileged, "the privileged release must be found"
    # the field points at the HelmRelease line that set it, through either engine
    assert any(f["location"]["path"] == "apps/web.yaml" for f in privileged)


def test_missing_dependency_still_renders_the_charts_own_objects(
        repo: Path, on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chart = repo / "charts" / "web" / "Chart.yaml"
    chart.write_text(chart.read_text(encoding="utf-8") + "  - name: redis\n"
                     "    version: 1.0.0\n    repository: https://charts.example.com\n",
                     encoding="utf-8")
    # Helm's CLI itself refuses the chart: the case the engine must handle
    with pytest.raises(helm.HelmFailed, match="missing in charts/"):
        helm._binary_run(repo / "charts" / "web", "web", "apps", {}, True)
    data, binary_json, sdk_json = reports(repo, monkeypatch)
    assert binary_json == sdk_json
    assert any("dependency redis" in f["message"] for f in data["findings"])
    assert chart.read_text(encoding="utf-8").count("redis") == 1  # the repository is untouched


def test_template_error_points_at_the_same_line(repo: Path, on_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    template = repo / "charts" / "web" / "templates" / "configmap.yaml"
    template.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n"
                        "  owner: {{ required \"owner is required\" .Values.owner }}\n",
                        encoding="utf-8")
    data, _binary_json, _sdk_json = reports(repo, monkeypatch)
    without_binary(monkeypatch)
    sdk = json.loads(_sdk_json)

    def errors(report: dict[str, Any]) -> list[tuple[str, int]]:
        return [(f["location"]["path"], f["location"]["line"]) for f in report["findings"]
                if f["rule"] == "input.helm-error"]

    assert errors(data) == errors(sdk) == [("charts/web/templates/configmap.yaml", 6)]
    (message,) = [f["message"] for f in data["findings"] if f["rule"] == "input.helm-error"]
    assert "owner is required" in message
