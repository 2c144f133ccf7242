"""Loading manifests: positions, multi-document files, Lists, and every kind of bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from checker.load import load_paths, yamlfile
from checker.model import Severity
from tests.conftest import needs_kustomize

Write = Callable[[str, str], Path]


def test_positions_of_fields_in_multi_document_file(write: Write, tmp_path: Path) -> None:
    """Each object and each field knows its file, line and column."""
    write("apps.yaml", """
        # leading comment
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: first
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: second
          namespace: prod
        spec:
          template:
            spec:
              containers:
                - name: app
                  image: nginx:1.27
    """)
    result = load_paths([tmp_path], tmp_path)
    assert result.findings == []
    first, second = result.resources
    assert (first.kind, first.name, first.location.line) == ("ConfigMap", "first", 2)
    assert second.key == "apps/v1/Deployment/prod/second"
    image = second.locate(("spec", "template", "spec", "containers", 0, "image"))
    assert (image.path, image.line, image.column) == ("apps.yaml", 17, 11)
    # a path the manifest does not declare falls back to its deepest declared prefix
    missing = second.locate(("spec", "template", "spec", "containers", 0, "securityContext"))
    assert missing.line == 16


def test_kind_list_is_expanded_with_positions(write: Write, tmp_path: Path) -> None:
    """Items of a kind: List are separate resources that point at their own lines."""
    write("list.yaml", """
        apiVersion: v1
        kind: List
        items:
          - apiVersion: v1
            kind: Namespace
            metadata:
              name: a
          - apiVersion: v1
            kind: ServiceAccount
            metadata:
              name: b
              namespace: a
    """)
    resources = load_paths([tmp_path], tmp_path).resources
    assert [(r.kind, r.location.line) for r in resources] == [("Namespace", 4), ("ServiceAccount", 8)]
    assert resources[1].locate(("metadata", "namespace")).line == 12


def test_non_kubernetes_files_are_skipped(write: Write, tmp_path: Path) -> None:
    """CI configs and values files are neither resources nor findings."""
    write(".github/workflows/ci.yml", "on: push\njobs: {}\n")
    write("values.yaml", "replicaCount: 2\n")
    write("package.json", '{"name": "x"}')
    write("README.md", "# not yaml\n")
    result = load_paths([tmp_path], tmp_path)
    assert (result.resources, result.findings) == ([], [])


@pytest.mark.parametrize(("content", "message", "line"), [
    # repeated keys and merge keys are read as kubectl reads them (tests/load/test_decoder_oracle.py)
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n", "invalid YAML", 4),
    ("apiVersion: v1\nkind: ConfigMap\ndata:\n  a: 1\n b: 2\n", "invalid YAML", 5),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  <<: [x]\n", "map merge requires", 4),
    ("apiVersion: v1\nkind: ConfigMap\ndata: {a: .nan}\n", "kubectl rejects", 3),
])
def test_bad_yaml_is_a_finding_with_line(write: Write, tmp_path: Path, content: str,
                                         message: str, line: int) -> None:
    """Invalid documents become error findings naming file and line; other files load."""
    write("bad.yaml", content)
    write("good.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ok\n")
    result = load_paths([tmp_path], tmp_path)
    assert [r.name for r in result.resources] == ["ok"]
    (finding,) = result.findings
    assert finding.category == "input" and finding.severity is Severity.ERROR
    assert message in finding.message
    assert (finding.location.path, finding.location.line) == ("bad.yaml", line)


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    """A file that is not UTF-8 is reported with the line of the first bad byte."""
    (tmp_path / "latin1.yaml").write_bytes(
        b"apiVersion: v1\nkind: ConfigMap\ndata:\n  city: M\xfcnchen\n")
    (finding,) = load_paths([tmp_path], tmp_path).findings
    assert "not valid UTF-8" in finding.message and finding.location.line == 4


def test_empty_file_and_non_object_document(write: Write, tmp_path: Path) -> None:
    """An empty file warns; a stray document in a manifest file warns; objects still load."""
    write("empty.yaml", "\n\n")
    write("mixed.yaml", """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: a
        ---
        - just
        - a list
        ---
        replicas: 3
    """)
    result = load_paths([tmp_path], tmp_path)
    assert [r.name for r in result.resources] == ["a"]
    found = sorted((f.location.path, f.location.line, f.rule_id, f.severity.label)
                   for f in result.findings)
    assert found == [
        ("empty.yaml", 1, "input.empty-file", "warning"),
        ("mixed.yaml", 6, "input.not-an-object", "warning"),
        ("mixed.yaml", 9, "input.not-an-object", "warning"),
    ]


def test_alias_bomb_is_stopped(write: Write, tmp_path: Path) -> None:
    """Billion-laughs style aliases stop at the expansion limit, with a finding."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    write("bomb.yaml", "apiVersion: v1\nkind: ConfigMap\ndata:\n" +
          "\n".join("  " + line for line in lines) + "\n")
    (finding,) = load_paths([tmp_path], tmp_path).findings
    assert "alias bomb" in finding.message


def test_deep_nesting_is_stopped(tmp_path: Path) -> None:
    """Runaway nesting is an input finding, not a RecursionError."""
    (tmp_path / "deep.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\ndata: " + "[" * 5000 + "]" * 5000 + "\n")
    (finding,) = load_paths([tmp_path], tmp_path).findings
    assert "nest" in finding.message and finding.severity is Severity.ERROR


def test_huge_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files over the size limit are refused before parsing."""
    monkeypatch.setattr(yamlfile, "MAX_FILE_BYTES", 1024)
    (tmp_path / "big.yaml").write_text("apiVersion: v1\nkind: ConfigMap\ndata:\n" +
                                       "".join(f"  k{i}: v\n" for i in range(500)))
    (finding,) = load_paths([tmp_path], tmp_path).findings
    assert "larger than" in finding.message


def test_missing_path_is_a_finding(tmp_path: Path) -> None:
    """A path that does not exist is reported, not silently ignored."""
    (finding,) = load_paths([tmp_path / "nope"], tmp_path).findings
    assert finding.rule_id == "input.missing-path"


@needs_kustomize
def test_kustomize_overlay_points_back_to_base_lines(write: Write, tmp_path: Path) -> None:
    """Rendered objects carry the overlay's changes and the base file's positions."""
    write("base/kustomization.yaml", "resources: [deploy.yaml]\n")
    write("base/deploy.yaml", """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          template:
            spec:
              containers:
                - name: web
                  image: nginx:1.27
    """)
    write("overlays/prod/kustomization.yaml", """
        resources: [../../base]
        namePrefix: prod-
        namespace: prod
    """)
    result = load_paths([tmp_path], tmp_path)
    assert result.findings == []
    (res,) = result.resources  # the base is not rendered on its own: the overlay includes it
    assert (res.namespace, res.name) == ("prod", "prod-web")
    assert "annotations" not in res.body["metadata"]  # origin bookkeeping removed
    image = res.locate(("spec", "template", "spec", "containers", 0, "image"))
    assert (image.path, image.line) == ("base/deploy.yaml", 10)


@needs_kustomize
def test_kustomize_failure_names_the_folder(write: Write, tmp_path: Path) -> None:
    """A broken kustomization is an error finding naming the folder; other files still load."""
    write("app/kustomization.yaml", "resources: [missing.yaml]\n")
    write("plain.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ok\n")
    result = load_paths([tmp_path], tmp_path)
    assert [r.name for r in result.resources] == ["ok"]
    (finding,) = result.findings
    assert finding.rule_id == "input.kustomize-error"
    assert "kustomize build app failed" in finding.message
    assert finding.location.path == "app/kustomization.yaml"


def test_kustomize_missing_binary_is_a_clear_error(write: Write, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Without kustomize and kubectl the folder is reported, never silently skipped."""
    write("app/kustomization.yaml", "resources: []\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    (finding,) = load_paths([tmp_path], tmp_path).findings
    assert "neither 'kustomize' nor 'kubectl' is installed" in finding.message
    assert finding.severity is Severity.ERROR


def test_helm_chart_folders_are_rendered_not_parsed(write: Write, tmp_path: Path) -> None:
    """Helm templates are not YAML until rendered: the chart is rendered with Helm, never read
    as broken YAML (tests/load/test_helm.py covers the rendering itself)."""
    write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\n")
    write("charts/web/templates/deployment.yaml", """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ .Release.Name }}
        {{- if .Values.extra }}
        spec: {}
        {{- end }}
    """)
    write("apps/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n")
    result = load_paths([tmp_path], tmp_path)
    assert [(r.kind, r.name, str(r.location)) for r in result.resources] == [
        ("Namespace", "web", "apps/ns.yaml:1"),
        ("Deployment", "web", "charts/web/templates/deployment.yaml:2")]
    assert result.findings == []
    (entry,) = result.coverage
    assert (entry.state, entry.kind, entry.path) == ("rendered", "helm", "charts/web/Chart.yaml")
