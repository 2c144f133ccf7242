"""GitHub's limits of one SARIF upload: 20 runs per file, 25,000 results per run (new and
most severe kept), 10 MB compressed; and a cluster's severity where code scanning reads it.

Figures from GitHub's "SARIF support for code scanning" and "SARIF results exceed limit"
pages; that upload-sarif merges a directory into one upload (so the 20 runs count over all
its files) is from github/codeql-action's ``upload-lib.ts``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from checker import assemble
from checker.model import Finding, ObjectRef, Report, Rule, Severity, SourceLocation
from checker.report import RENDERERS
from checker.report.sarif import render_accepted
from tests.conftest import sarif_problems

RULES = {"demo-privileged": Rule("demo-privileged", "Privileged", Severity.ERROR, pack="demo"),
         "demo-tag": Rule("demo-tag", "Tag", Severity.ERROR, pack="demo")}


def _finding(cluster: str, i: int, *, rule: str = "demo-privileged",
             severity: Severity = Severity.ERROR, baseline: str = "",
             message: str = "") -> Finding:
    ref = ObjectRef(cluster, "apps", "v1", "Deployment", "shop", f"web-{i}")
    f = Finding(rule, "policy", severity, message or f"container app of web-{i} is privileged",
                SourceLocation(f"apps/web-{i:05d}.yaml", 12, 9), resource=ref.display,
                field_path=("spec", "template", "spec", "containers", 0), pack="demo",
                cluster=cluster, ref=ref)
    return replace(f, baseline=baseline) if baseline else f


def _fleet(clusters: int, per_cluster: int = 2) -> Report:
    names = tuple(f"cluster-{n:03d}" for n in range(clusters))
    findings = tuple(_finding(c, i) for c in names for i in range(per_cluster))
    return assemble.assemble(Report(findings=findings, rules=RULES, resources_checked=1,
                                    files_checked=1, clusters=names, group_by="cluster",
                                    sarif_category="gitops-checker", tool_version="1.0.0"))


def _validate(path: Path, tmp_path: Path) -> None:
    """Microsoft's SARIF Multitool with GitHub's rules (Sarif;Ghas) reports no problem."""
    assert sarif_problems(path, tmp_path) == []


@pytest.mark.parametrize("clusters", [19, 20, 45])
def test_a_sarif_file_never_has_more_than_20_runs(clusters: int) -> None:
    """19 clusters: a run each (and the run of findings of no cluster); more: the clusters
    share 19 runs. Every result still names its cluster, every cluster is in one run's
    ``clusters``, and no two runs share a category (upload-sarif refuses that)."""
    report = _fleet(clusters)
    runs = json.loads(RENDERERS["sarif"](report))["runs"]
    assert len(runs) <= assemble.SARIF_MAX_RUNS
    assert len(runs) == (clusters + 1 if clusters < 20 else 20)
    categories = [r["automationDetails"]["id"] for r in runs]
    assert len(set(categories)) == len(categories)
    results = [res for r in runs for res in r["results"]]
    assert len(results) == 2 * clusters
    listed = [c for r in runs for c in r.get("properties", {}).get("clusters", [])]
    assert sorted(listed) == list(report.clusters)
    for run in runs:
        mine = set(run.get("properties", {}).get("clusters", []))
        assert {res["properties"]["cluster"] for res in run["results"]} <= mine
    if clusters >= 20:
        assert categories[1:] == [f"gitops-checker/clusters-{g:02d}/" for g in range(1, 20)]


def test_a_cluster_keeps_its_run_when_others_are_added() -> None:
    """The run of a cluster is a digest of its name: adding clusters never moves another."""
    def where(report: Report) -> dict[str, str]:
        return {c: p.run for p in report.selections[assemble.SARIF] for c in p.clusters}

    small, large = where(_fleet(30)), where(_fleet(60))
    assert all(large[c] == run for c, run in small.items())


def test_grouped_runs_pass_the_validator(tmp_path: Path) -> None:
    """45 clusters in 19 shared runs: valid for the Multitool with GitHub's rules."""
    path = tmp_path / "grouped.sarif"
    path.write_text(RENDERERS["sarif"](_fleet(45)), encoding="utf-8")
    _validate(path, tmp_path)


def test_new_findings_are_kept_before_old_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the cap, the pull request's new findings go first, even warnings before old
    errors; then severity; the notification says what was left out and why."""
    monkeypatch.setattr(assemble, "SARIF_MAX_RESULTS", 5)
    old = [_finding("", i, baseline="unchanged") for i in range(8)]
    new = [_finding("", 100 + i, rule="demo-tag", severity=Severity.WARNING, baseline="new")
           for i in range(3)]
    report = assemble.assemble(Report(findings=(*old, *new), rules=RULES, resources_checked=1,
                                      files_checked=1))
    (part,) = report.selections[assemble.SARIF]
    assert sum(f.baseline == "new" for f in part.kept) == 3
    assert len(part.kept) == 5 and dict(part.left_out) == {"error": 6}
    run = json.loads(RENDERERS["sarif"](report))["runs"][0]
    (note,) = run["invocations"][0]["toolExecutionNotifications"]
    assert "6 of 11 results were left out" in note["message"]["text"]
    assert "at most 5 results per run" in note["message"]["text"]


def _noise(i: int) -> str:
    """A message that does not compress: hex of a digest (names and images can be as random)."""
    return "container is privileged: " + "".join(
        hashlib.sha256(f"{i}/{k}".encode()).hexdigest() for k in range(12))


def test_the_file_stays_under_githubs_compressed_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Results that do not compress would make the file too large for code scanning: the
    assemble stage keeps fewer (each run the same share) until the gzip-compressed file is
    under the budget, and each run's notification says the size limit left them out.

    The budget is lowered to 1 MB here so the test stays quick; the real one is 9,000,000
    bytes (GitHub rejects over 10 MB compressed).
    """
    monkeypatch.setattr(assemble, "SARIF_MAX_BYTES", 1_000_000)
    findings = tuple(_finding(c, i, message=_noise(i)) for c in ("a", "b") for i in range(3_000))
    raw = Report(findings=findings, rules=RULES, resources_checked=1, files_checked=1,
                 clusters=("a", "b"), group_by="cluster")
    whole = RENDERERS["sarif"](raw).encode()
    assert len(gzip.compress(whole)) > 2_000_000  # without the budget: twice too large
    parts = assemble.sarif_selection(raw, max_bytes=1_000_000)
    report = replace(raw, selections={assemble.SARIF: parts})
    text = RENDERERS["sarif"](report).encode()
    size = len(gzip.compress(text, compresslevel=9))
    assert 700_000 < size <= 1_000_000, size  # under the budget, and not far under it
    runs = json.loads(text)["runs"]
    assert [len(r["results"]) for r in runs][1:] == [len(parts[1].kept)] * 2
    for run in runs[1:]:
        (note,) = run["invocations"][0]["toolExecutionNotifications"]
        assert "rejects a SARIF file over 10 MB compressed" in note["message"]["text"]


def test_a_small_report_is_never_rendered_to_measure_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under the upper bound of its size, no probe render is made (the common case costs
    nothing)."""
    calls: list[int] = []
    monkeypatch.setattr(assemble, "sarif_size", lambda *a, **k: calls.append(1) or 0)
    _fleet(3, per_cluster=200)
    assert calls == []


def test_a_clusters_severity_override_reaches_the_rule_code_scanning_reads(
        tmp_path: Path) -> None:
    """Code scanning shows a rule's ``security-severity`` and default level, not a result's:
    in the run of a cluster that lowers a rule to warning, the rule says warning (5.0); in
    the other cluster's run it still says error (7.5)."""
    findings = (_finding("staging", 1, rule="demo-tag", severity=Severity.WARNING),
                _finding("production", 1, rule="demo-tag"))
    report = assemble.assemble(Report(findings=findings, rules=RULES, resources_checked=1,
                                      files_checked=1, clusters=("production", "staging"),
                                      group_by="cluster", sarif_category="gitops-checker",
                                      tool_version="1.0.0"))
    text = RENDERERS["sarif"](report)
    runs = {r["automationDetails"]["id"]: r for r in json.loads(text)["runs"]}

    def rule(run: str) -> dict[str, object]:
        (found,) = [d for d in runs[run]["tool"]["driver"]["rules"] if d["id"] == "demo-tag"]
        return {"level": found["defaultConfiguration"]["level"],
                "security-severity": found["properties"]["security-severity"]}

    assert rule("gitops-checker/staging/") == {"level": "warning", "security-severity": "5.0"}
    assert rule("gitops-checker/production/") == {"level": "error", "security-severity": "7.5"}
    path = tmp_path / "override.sarif"
    path.write_text(text, encoding="utf-8")
    _validate(path, tmp_path)


def test_the_accepted_file_obeys_the_same_run_limit() -> None:
    """The opt-in accepted-risks file is split the same way."""
    from checker.model import Suppression

    base = _fleet(30)
    accepted = tuple(replace(f, suppression=Suppression("annotation", "known")) for f in
                     base.findings)
    report = assemble.assemble(replace(base, findings=accepted, selections={}))
    runs = json.loads(render_accepted(report))["runs"]
    assert len(runs) == 20 and sum(len(r["results"]) for r in runs) == 60
