"""Plain text for terminals and logs: one line per finding, then a summary."""

from __future__ import annotations

from checker.model import Report, Severity
from checker.report.common import coverage_summary, delta_line, severity_counts
from checker.report.impact import headline

_LABEL = {s: s.label for s in Severity}


def render(report: Report) -> str:
    """``path:line:col: severity [rule] message (resource)`` lines and a summary line.

    With a base, each line says ``new`` or ``unchanged`` (new ones come first) and the
    findings the change fixes follow, as they were at the base.
    """
    active, suppressed = report.active, report.suppressed
    lines = []
    for f in active:
        loc = f.location
        resource = f" ({f.resource})" if f.resource else ""
        cluster = f" [cluster {f.cluster}]" if f.cluster else ""
        state = f"{f.baseline} " if report.base else ""
        lines.append(f"{loc.path}:{loc.line}:{loc.column}: {state}{_LABEL[f.severity]} "
                     f"[{f.rule_id}] {f.message}{resource}{cluster}")
    for f in report.fixed:
        if f.suppression is None:
            resource = f" ({f.resource})" if f.resource else ""
            cluster = f" [cluster {f.cluster}]" if f.cluster else ""
            lines.append(f"{f.location.path}:{f.location.line}: fixed {_LABEL[f.severity]} "
                         f"[{f.rule_id}] {f.message}{resource}{cluster} (at the base)")
    for f in suppressed:
        assert f.suppression is not None
        lines.append(f"{f.location.path}:{f.location.line}: accepted [{f.rule_id}] {f.message} "
                     f"(owner {f.suppression.owner or 'unknown'}, "
                     f"expires {f.suppression.expires or 'never'})")
    for err in report.errors:
        lines.append(f"error: {err}")
    if report.engines:
        lines.append("rego engine: " + "; ".join(report.engines))
    impact = report.impact
    if impact is not None and impact.applies:  # what the change's policies would do
        lines.append(f"policy change impact (base {impact.base}): {headline(impact)}")
        for e in impact.entries:
            lines.append(f"{e.location.path}:{e.location.line}: impact {e.outcome} "
                         f"[{e.constraint or e.policy}] {e.resource} [cluster {e.cluster}, "
                         f"{e.against}]: {e.why}")
        for problem in impact.problems:
            lines.append(f"impact not evaluated: {problem}")
    if report.coverage:  # before the summary, which stays the last line
        lines.append(f"inputs: {coverage_summary(report.coverage)} "
                     "(gitops-checker inputs lists them)")
    if report.base:
        lines.append(delta_line(report))
    counts = severity_counts(active)
    summary = ", ".join(f"{n} {label}" for label, n in counts.items())
    lines.append(
        f"{report.resources_checked} resources in {report.files_checked} files checked: "
        f"{summary}" + (f", {len(suppressed)} accepted" if suppressed else "")
    )
    lines.append("")
    return "\n".join(lines)
