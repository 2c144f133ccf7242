"""annotation_selection: the pull request's findings first, within GitHub's per-step limits.

GitHub's documented limits (actions/toolkit docs/problem-matchers.md, "Limitations"): 10
warning, 10 error and 10 notice annotations per step, 50 per job; the rest are dropped.
"""

from __future__ import annotations

from collections import Counter

from checker.action.outputs import annotation_commands
from checker.assemble import (
    ANNOTATION_KIND,
    ANNOTATIONS_PER_JOB,
    ANNOTATIONS_PER_KIND,
    annotation_selection,
    annotation_tier,
    assemble,
)
from checker.changes import Changes
from checker.model import Finding, Report, Severity, SourceLocation, Suppression


def finding(severity: Severity, path: str, line: int, baseline: str = "") -> Finding:
    return Finding(rule_id="r", category="policy", severity=severity, message=f"m {path}:{line}",
                   location=SourceLocation(path, line), baseline=baseline)


def big_report(base: bool = True) -> Report:
    """40 of each severity in old.yaml (unchanged), and in new.yaml 3 new ones on changed
    lines, 2 new ones elsewhere, and one unchanged on a changed line; plus an accepted one."""
    old = [finding(s, "old.yaml", i, "unchanged" if base else "")
           for s in Severity for i in range(1, 41)]
    new = [finding(Severity.NOTE, "new.yaml", 5, "new" if base else ""),
           finding(Severity.ERROR, "new.yaml", 6, "new" if base else ""),
           finding(Severity.WARNING, "new.yaml", 7, "new" if base else ""),
           finding(Severity.ERROR, "z.yaml", 1, "new" if base else ""),
           finding(Severity.NOTE, "z.yaml", 2, "new" if base else ""),
           finding(Severity.WARNING, "old.yaml", 100, "unchanged" if base else "")]
    accepted = Finding(rule_id="r", category="policy", severity=Severity.ERROR, message="acc",
                       location=SourceLocation("new.yaml", 5),
                       suppression=Suppression(kind="file", justification="j"))
    return assemble(Report(findings=(*old, *new, accepted), rules={}, resources_checked=1,
                           files_checked=3, base="b" * 40 if base else ""))


CHANGES = Changes("b" * 40, "h" * 40, {"new.yaml": ((5, 7),), "old.yaml": ((100, 100),)})


def kinds(fs: tuple[Finding, ...]) -> Counter[str]:
    return Counter(ANNOTATION_KIND[f.severity] for f in fs)


def test_new_on_changed_lines_then_new_then_changed_then_the_rest() -> None:
    chosen = annotation_selection(big_report(), CHANGES, limit=50).annotations
    assert chosen is not None
    kept = [(f.location.path, f.location.line) for f in chosen.kept]
    # tier 0 by severity, tier 1 by severity, tier 2, then the rest
    assert kept[:6] == [("new.yaml", 6), ("new.yaml", 7), ("new.yaml", 5), ("z.yaml", 1),
                        ("z.yaml", 2), ("old.yaml", 100)]
    assert [annotation_tier(f, CHANGES) for f in chosen.kept[:6]] == [0, 0, 0, 1, 1, 2]
    assert chosen.on_changed_lines == 4 and chosen.changed_lines == 4
    assert chosen.base == "b" * 40
    assert all(f.suppression is None for f in chosen.kept + chosen.left_out)


def test_githubs_per_step_limits_hold_for_every_kind_and_the_lines_written() -> None:
    report = big_report()
    for limit in (0, 1, 5, 25, 30, 50, 500):
        for errors in (0, 3, 12):
            for comment in (False, True):
                reserved = {"error": errors, **({"warning": 1, "notice": 1} if comment else {})}
                chosen = annotation_selection(report, CHANGES, limit=limit, reserved=reserved)
                assert chosen.annotations is not None
                lines = annotation_commands(chosen)
                written = Counter(line.split(" ", 1)[0].removeprefix("::") for line in lines)
                for kind in ("error", "warning", "notice"):
                    assert written[kind] + reserved.get(kind, 0) <= ANNOTATIONS_PER_KIND or (
                        written[kind] == 0), (limit, errors, comment, written)
                assert sum(written.values()) + sum(reserved.values()) <= ANNOTATIONS_PER_JOB or (
                    sum(written.values()) == 0)
                assert len(chosen.annotations.kept) <= limit
                # nothing is lost: kept and left out are all the active findings
                assert (len(chosen.annotations.kept) + len(chosen.annotations.left_out)
                        == len(report.active))
                if chosen.annotations.left_out:
                    assert "more findings are not annotated" in lines[-1]


def test_the_default_fills_every_kind_and_keeps_a_notice_for_the_rest() -> None:
    chosen = annotation_selection(big_report(), CHANGES, limit=50).annotations
    assert chosen is not None
    assert kinds(chosen.kept) == {"error": 10, "warning": 10, "notice": 9}
    assert len(chosen.left_out) == len(big_report().active) - 29


def test_without_a_base_the_changed_lines_still_come_first() -> None:
    report = big_report(base=False)
    chosen = annotation_selection(report, CHANGES, limit=50).annotations
    assert chosen is not None
    assert {(f.location.path, f.location.line) for f in chosen.kept[:4]} == {
        ("new.yaml", 5), ("new.yaml", 6), ("new.yaml", 7), ("old.yaml", 100)}
    # with neither base nor changes: the most severe first, report order within
    plain = annotation_selection(report, None, limit=3).annotations
    assert plain is not None
    assert [f.severity for f in plain.kept] == [Severity.ERROR] * 3
    assert [(f.location.path, f.location.line) for f in plain.kept] == [
        ("new.yaml", 6), ("old.yaml", 1), ("old.yaml", 2)]
