"""SARIF fingerprints: distinct for distinct findings, stable across runs and line shifts, and
built on ``Finding.identity`` (the identity the delta pairs base and head findings on).

Real scans of a Kustomize base with two overlays, with the shipped best-practice pack: the
base's container line carries a liveness and a readiness finding for each overlay's object
(one result per source location naming both objects in one cluster; a result per cluster
when the overlays are two clusters).
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

from click.testing import CliRunner

from checker.cli import cli
from checker.model import Finding, ObjectRef, Severity, SourceLocation
from checker.report.common import FINGERPRINT, fingerprint

DEPLOYMENT = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
            - name: app
              image: registry.example/web:1.0.0
    """


def _repo(root: Path) -> Path:
    (root / "base").mkdir(parents=True)
    (root / "base" / "deployment.yaml").write_text(textwrap.dedent(DEPLOYMENT), "utf-8")
    (root / "base" / "kustomization.yaml").write_text("resources:\n  - deployment.yaml\n")
    for overlay in ("dev", "prod"):
        (root / "overlays" / overlay).mkdir(parents=True)
        (root / "overlays" / overlay / "kustomization.yaml").write_text(
            f"namespace: {overlay}\nresources:\n  - ../../base\n")
    return root


def _results(root: Path, *paths: str) -> list[dict[str, object]]:
    args = ["scan", *paths, "--root", str(root), "--fail-on", "never", "--format", "sarif"]
    if not paths:  # the clusters of .gitops-checker.yaml
        assert (root / ".gitops-checker.yaml").exists()
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    results = []
    for run in json.loads(out.stdout)["runs"]:
        for r in run["results"]:
            region = r["locations"][0]["physicalLocation"]["region"]
            results.append({"rule": r["ruleId"], "line": region["startLine"],
                            "text": r["message"]["text"],
                            "category": run.get("automationDetails", {}).get("id", ""),
                            "print": r["partialFingerprints"][FINGERPRINT]})
    return results


def _overlays(root: Path) -> list[dict[str, object]]:
    return _results(root, str(root / "overlays"), "--pack", "best-practice")


def test_distinct_findings_on_one_line_have_distinct_fingerprints(tmp_path: Path) -> None:
    """Liveness and readiness on one line are two results with two fingerprints; in one
    cluster each names both overlays' objects (one finding per source location)."""
    probes = [r for r in _overlays(_repo(tmp_path)) if r["rule"] == "bp-probes"]
    assert {r["line"] for r in probes} == {13}
    assert sorted(str(r["text"]) for r in probes) == [
        f"container app must declare a {probe} (Deployment dev/web, Deployment prod/web)"
        for probe in ("livenessProbe", "readinessProbe")]
    assert len({r["print"] for r in probes}) == 2


def test_one_base_line_in_two_clusters_has_a_fingerprint_per_cluster(tmp_path: Path) -> None:
    """The overlays are two clusters: four probe results on the base line, one run (code
    scanning category) per cluster, four fingerprints."""
    root = _repo(tmp_path)
    (root / ".gitops-checker.yaml").write_text(textwrap.dedent("""\
        version: 1
        defaults:
          packs: [best-practice]
        clusters:
          - name: dev
            paths: [overlays/dev]
          - name: prod
            paths: [overlays/prod]
        """), "utf-8")
    probes = [r for r in _results(root) if r["rule"] == "bp-probes"]
    assert sorted((str(r["category"]), r["line"]) for r in probes) == [
        ("gitops-checker/dev/", 13), ("gitops-checker/dev/", 13),
        ("gitops-checker/prod/", 13), ("gitops-checker/prod/", 13)]
    assert len({r["print"] for r in probes}) == 4


def test_fingerprints_are_stable_across_runs_and_line_shifts(tmp_path: Path) -> None:
    """The same repository gives the same fingerprints; three lines inserted above the
    container move every finding and change none of them."""
    root = _repo(tmp_path)
    first = {(r["rule"], r["text"]): r["print"] for r in _overlays(root)}
    assert first == {(r["rule"], r["text"]): r["print"] for r in _overlays(root)}
    path = root / "base" / "deployment.yaml"
    text = path.read_text("utf-8").replace("  template:\n",
                                           "  # one\n  # two\n  # three\n  template:\n")
    path.write_text(text, "utf-8")
    moved = _overlays(root)
    assert {r["line"] for r in moved if r["rule"] == "bp-probes"} == {16}
    assert {(r["rule"], r["text"]): r["print"] for r in moved} == first


def test_the_fingerprint_is_the_digest_of_the_identity() -> None:
    """One identity, for the delta and for code scanning: a message's file position or line
    number is not part of it, so a finding whose message names a moved line keeps its print."""
    ref = ObjectRef("prod", "apps", "v1", "Deployment", "shop", "web")

    def finding(message: str, line: int) -> Finding:
        return Finding("input.parse-error", "input", Severity.ERROR, message,
                       SourceLocation("apps/web.yaml", line), ref=ref, cluster="prod")

    a, b = finding("apps/web.yaml:7: mapping values are not allowed", 7), finding(
        "apps/web.yaml:9: mapping values are not allowed", 9)
    assert a.identity == b.identity and fingerprint(a) == fingerprint(b)
    assert fingerprint(a) == hashlib.sha256("\x1f".join(a.identity).encode()).hexdigest()[:32]
    assert fingerprint(a) != fingerprint(finding("apps/web.yaml:7: another problem", 7))
