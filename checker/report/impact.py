"""The policy-change impact ("what-if") as Markdown lines and as JSON data.

Shared by the Markdown report (where it is the headline when it applies), the JSON report
and the pull-request comment. Pure: they read ``Report.impact`` (``checker.impact`` built
it, ordered) and write it. Every text may come from the pull request (a policy's message, a
resource name): cells go through ``escape`` (the caller's escaper for its medium).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from checker.model import Impact, ImpactEntry, PolicyChange, Report

ROWS = 50          # impact rows in Markdown; the JSON report holds every entry
CHANGE_ROWS = 30   # changed-policy rows
OUTCOME = {"fails": "🔴 newly fails", "enforcement": "🟠 enforcement changes",
           "passes": "🟢 newly passes", "not-checked": "⚠️ not checked"}
Escape = Callable[[str], str]


def counts(impact: Impact) -> dict[str, int]:
    """Entries by outcome, every outcome present."""
    out = {o: 0 for o in OUTCOME}
    for e in impact.entries:
        out[e.outcome] += 1
    return out


def _change_text(c: PolicyChange) -> str:
    if c.change == "added":
        return f"added ({c.enforcement_after}, {c.severity_after})"
    if c.change == "removed":
        return f"removed (was {c.enforcement_before}, {c.severity_before})"
    parts = []
    if c.enforcement_before != c.enforcement_after:
        parts.append(f"enforcementAction {c.enforcement_before} → {c.enforcement_after}")
    if c.severity_before != c.severity_after:
        parts.append(f"severity {c.severity_before} → {c.severity_after}")
    return "; ".join(parts) or "template or constraint changed"


def _severity(e: ImpactEntry) -> str:
    if e.outcome == "enforcement":
        action = (f"{e.enforcement_before} → {e.enforcement_after}"
                  if e.enforcement_before != e.enforcement_after else "")
        level = (f"{e.severity_before} → {e.severity_after}"
                 if e.severity_before != e.severity_after else "")
        return ", ".join(p for p in (action, level) if p)
    return e.severity_after or e.severity_before


def headline(impact: Impact) -> str:
    """One sentence: what the policy change does to the change's objects."""
    n = counts(impact)
    clusters = sorted({e.cluster for e in impact.entries if e.cluster})
    where = f" in {len(clusters)} cluster{'s' if len(clusters) != 1 else ''}" if clusters else ""
    parts = [f"{n['fails']} newly failing", f"{n['enforcement']} enforcement "
             f"change{'s' if n['enforcement'] != 1 else ''}", f"{n['passes']} newly passing"]
    if n["not-checked"]:
        parts.append(f"{n['not-checked']} not evaluated")
    what = (f"{len(impact.changes)} polic{'ies' if len(impact.changes) != 1 else 'y'}"
            if impact.changes else "its acceptances or config, no policy")
    return f"This pull request changes {what}; on its objects: " + ", ".join(parts) + (
        where + ".")


def markdown(report: Report, escape: Escape, where: Callable[[ImpactEntry], str],
             heading: str = "###", rows: int = ROWS) -> list[str]:
    """The impact section (empty when there is nothing to show)."""
    impact = report.impact
    if impact is None or not impact.applies:
        return []
    lines = [f"{heading} Policy change impact", "",
             f"**{escape(headline(impact))}**", "",
             "The pull request's manifests, evaluated with the policies of the base "
             f"{escape(impact.base)} and with the change's own"
             + (f"; live objects too for {', '.join(escape(c) for c in impact.live)}"
                if impact.live else "")
             + ". The check itself uses the base's policies until the change is merged; "
             "nothing here has reached Gatekeeper.", ""]
    for problem in impact.problems:
        lines.append(f"- ⛔ {escape(problem)}")
    if impact.problems:
        lines.append("")
    entries = impact.entries
    if entries:
        lines += ["| Cluster | Against | Outcome | Policy | Resource | Severity | Why | Where |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for e in entries[:rows]:
            lines.append(
                f"| {escape(e.cluster or '(default)')} | {e.against} | {OUTCOME[e.outcome]} | "
                f"{escape(e.constraint or e.policy)} | {escape(e.resource)} | "
                f"{escape(_severity(e))} | {escape(e.why)} | {where(e)} |")
        if len(entries) > rows:
            lines += ["", f"… and {len(entries) - rows} more in the JSON report (`impact`)."]
        lines.append("")
    if impact.changes:
        lines += ["<details><summary>Changed policies</summary>", "",
                  "| Cluster | Policy | Constraint | Change |", "| --- | --- | --- | --- |"]
        for c in impact.changes[:CHANGE_ROWS]:
            lines.append(f"| {escape(c.cluster or '(default)')} | {escape(c.policy)} | "
                         f"{escape(c.constraint)} | {escape(_change_text(c))} |")
        if len(impact.changes) > CHANGE_ROWS:
            lines += ["", f"… and {len(impact.changes) - CHANGE_ROWS} more in the JSON report."]
        lines += ["", "</details>", ""]
    return lines


def _entry(e: ImpactEntry) -> dict[str, Any]:
    ref = None if e.ref is None else {
        "cluster": e.ref.cluster, "group": e.ref.group, "version": e.ref.version,
        "kind": e.ref.kind, "namespace": e.ref.namespace, "name": e.ref.name}
    return {"cluster": e.cluster, "against": e.against, "outcome": e.outcome,
            "policy": e.policy, "constraint": e.constraint, "resource": e.resource,
            "object": ref, "fieldPath": list(e.field_path),
            "location": {"path": e.location.path, "line": e.location.line},
            "message": e.message, "why": e.why,
            "severity": {"before": e.severity_before, "after": e.severity_after},
            "enforcement": {"before": e.enforcement_before, "after": e.enforcement_after}}


def data(impact: Impact | None) -> dict[str, Any] | None:
    """``impact`` as JSON data (None when no what-if was evaluated)."""
    if impact is None:
        return None
    return {
        "base": impact.base,
        "counts": counts(impact),
        "live": list(impact.live),
        "problems": list(impact.problems),
        "policies": [{"cluster": c.cluster, "policy": c.policy, "change": c.change,
                      "constraint": c.constraint, "location": c.location,
                      "enforcement": {"before": c.enforcement_before,
                                      "after": c.enforcement_after},
                      "severity": {"before": c.severity_before, "after": c.severity_after}}
                     for c in impact.changes],
        "entries": [_entry(e) for e in impact.entries],
    }
