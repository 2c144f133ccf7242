"""Plain text for terminals and logs: one line per finding, then a summary."""

from __future__ import annotations

from checker.model import Report


def render(report: Report) -> str:
    """``path:line:col: severity [rule] message (resource)`` lines and a summary line."""
    lines = []
    for f in report.active:
        where = f"{f.location.path}:{f.location.line}:{f.location.column}"
        resource = f" ({f.resource})" if f.resource else ""
        cluster = f" [cluster {f.cluster}]" if f.cluster else ""
        lines.append(f"{where}: {f.severity.label} [{f.rule_id}] {f.message}{resource}{cluster}")
    for f in report.suppressed:
        assert f.suppression is not None
        lines.append(f"{f.location.path}:{f.location.line}: accepted [{f.rule_id}] {f.message} "
                     f"(owner {f.suppression.owner or 'unknown'}, "
                     f"expires {f.suppression.expires or 'never'})")
    for err in report.errors:
        lines.append(f"error: {err}")
    counts = report.counts()
    summary = ", ".join(f"{n} {label}" for label, n in counts.items())
    lines.append(
        f"{report.resources_checked} resources in {report.files_checked} files checked: "
        f"{summary}" + (f", {len(report.suppressed)} accepted" if report.suppressed else "")
    )
    return "\n".join(lines) + "\n"
