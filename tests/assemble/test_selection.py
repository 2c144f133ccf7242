"""The SARIF cap keeps the most severe results and says what it left out.

The assemble stage chooses (``checker.assemble``); the renderer writes what it chose.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checker import assemble
from checker.model import Finding, Report, Rule, Severity, SourceLocation
from checker.report import RENDERERS
from tests.conftest import sarif_problems


def _flood(warnings: int, errors: int) -> Report:
    """``warnings`` cheap warnings in files sorted before the few errors."""
    findings = [Finding("demo-cheap", "policy", Severity.WARNING, f"w{i}",
                        SourceLocation(f"a/{i:05d}.yaml", 1), resource=f"ConfigMap ns/w{i}")
                for i in range(warnings)]
    findings += [Finding("demo-privileged", "policy", Severity.ERROR, f"e{i}",
                         SourceLocation(f"z/{i}.yaml", 3), resource=f"Pod ns/e{i}")
                 for i in range(errors)]
    findings.append(Finding("demo-hint", "policy", Severity.NOTE, "n", SourceLocation("b.yaml", 1)))
    rules = {"demo-cheap": Rule("demo-cheap", "Cheap", Severity.WARNING),
             "demo-privileged": Rule("demo-privileged", "Privileged", Severity.ERROR),
             "demo-hint": Rule("demo-hint", "Hint", Severity.NOTE)}
    return assemble.assemble(Report(
        findings=tuple(sorted(findings, key=Finding.sort_key)), rules=rules,
        resources_checked=len(findings), files_checked=len(findings), tool_version="1.0.0"))


def test_30000_warnings_do_not_push_errors_out_of_sarif() -> None:
    """Errors sorted after 30,000 warnings are all uploaded; a notification counts the rest."""
    report = _flood(30_000, 3)
    log = json.loads(RENDERERS["sarif"](report))
    run = log["runs"][0]
    results = run["results"]
    assert len(results) == assemble.SARIF_MAX_RESULTS
    levels = [r["level"] for r in results]
    assert levels.count("error") == 3
    assert levels.count("note") == 0  # the note ranks below every warning
    assert levels.count("warning") == assemble.SARIF_MAX_RESULTS - 3
    # the kept results stay in the report's order (file order here)
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results]
    assert uris == sorted(uris)
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert len(notes) == 1
    text = notes[0]["message"]["text"]
    assert "5004 of 30004 results were left out" in text
    assert "5003 warning, 1 note" in text
    assert "JSON report has them all" in text
    assert notes[0]["level"] == "warning"


def test_sarif_under_the_cap_has_no_notification() -> None:
    """A run within the cap is unchanged: every result, no invocation added."""
    run = json.loads(RENDERERS["sarif"](_flood(10, 2)))["runs"][0]
    assert len(run["results"]) == 13
    assert "invocations" not in run


def test_select_orders_by_severity_then_report_order() -> None:
    """``select`` with a small limit: errors first, then warnings in report order."""
    report = _flood(5, 2)
    chosen, left = assemble.select(report.findings, 4)
    assert left == 4
    assert [f.severity for f in chosen].count(Severity.ERROR) == 2
    assert [f.message for f in chosen if f.severity == Severity.WARNING] == ["w0", "w1"]


def test_capped_sarif_passes_microsoft_validator(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The run-level notification is valid SARIF for the Multitool with GitHub's rules."""
    monkeypatch.setattr(assemble, "SARIF_MAX_RESULTS", 5)
    path = tmp_path / "capped.sarif"
    path.write_text(RENDERERS["sarif"](_flood(20, 2)), encoding="utf-8")
    assert len(json.loads(path.read_text())["runs"][0]["results"]) == 5
    assert sarif_problems(path, tmp_path) == []


def test_the_renderer_writes_what_assemble_chose_and_never_cuts() -> None:
    """A report that did not go through assemble is written whole (the renderer does not
    filter); the assembled one holds the assemble stage's choice, per run."""
    report = _flood(30_000, 3)
    whole = Report(**{**report.__dict__, "selections": {}})
    assert len(json.loads(RENDERERS["sarif"](whole))["runs"][0]["results"]) == 30_004
    (part,) = report.selections[assemble.SARIF]
    assert (len(part.kept), dict(part.left_out), part.total) == (
        assemble.SARIF_MAX_RESULTS, {"warning": 5003, "note": 1}, 30_004)


def test_each_cluster_run_is_capped_on_its_own() -> None:
    """Grouped per cluster, the cap applies to each SARIF run, as code scanning reads them."""
    base = _flood(2, 1)
    findings = tuple(Finding(**{**f.__dict__, "cluster": c}) for c in ("a", "b")
                     for f in base.findings)
    report = assemble.assemble(Report(**{**base.__dict__, "findings": findings,
                                         "clusters": ("a", "b"), "group_by": "cluster"}))
    parts = report.selections[assemble.SARIF]
    assert [p.run for p in parts] == ["", "a", "b"]
    assert [p.total for p in parts] == [0, 4, 4]
    runs = json.loads(RENDERERS["sarif"](report))["runs"]
    assert [len(r["results"]) for r in runs] == [0, 4, 4]
