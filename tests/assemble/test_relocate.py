"""relocate: every path of a report relative to the repository root."""

from __future__ import annotations

from checker.assemble import SARIF, assemble, relocate
from checker.model import (
    Coverage,
    Finding,
    Impact,
    ImpactEntry,
    Report,
    Severity,
    SourceLocation,
)


def report() -> Report:
    findings = tuple(Finding(rule_id="r", category="policy", severity=Severity.ERROR,
                             message=f"m{i}", location=SourceLocation(path, i))
                     for i, path in enumerate(["b.yaml", "a/c.yaml", "", "../up.yaml"], 1))
    fixed = (Finding(rule_id="r", category="policy", severity=Severity.ERROR, message="gone",
                     location=SourceLocation("old.yaml", 2), baseline="absent"),)
    impact = Impact(base="b", entries=(ImpactEntry(
        cluster="", against="desired", outcome="fails", policy="p", resource="Pod a/b",
        location=SourceLocation("d.yaml", 4), why="w"),))
    return assemble(Report(findings=findings, rules={}, resources_checked=1, files_checked=3,
                           coverage=(Coverage("rendered", "kustomize", "k", "a", 1),),
                           fixed=fixed, impact=impact))


def test_every_path_moves_under_the_prefix_and_the_selection_follows() -> None:
    moved = relocate(report(), "clusters/prod/")
    assert [f.location.path for f in moved.findings] == [
        "clusters/prod", "clusters/prod/a/c.yaml", "clusters/prod/b.yaml", "clusters/up.yaml"]
    assert [c.path for c in moved.coverage] == ["clusters/prod/a"]
    assert [f.location.path for f in moved.fixed] == ["clusters/prod/old.yaml"]
    assert moved.impact is not None
    assert [e.location.path for e in moved.impact.entries] == ["clusters/prod/d.yaml"]
    kept = {f.location.path for s in moved.selections[SARIF] for f in s.kept}
    assert kept == {f.location.path for f in moved.findings}


def test_no_prefix_is_the_same_report() -> None:
    original = report()
    assert relocate(original, "") is original and relocate(original, ".") is original
