"""Helpers shared by renderers (pure functions of the report)."""

from __future__ import annotations

import hashlib

from checker.model import Finding, Report, Severity

SECURITY_SEVERITY = {Severity.ERROR: "7.5", Severity.WARNING: "5.0", Severity.NOTE: "2.0"}
INPUT_GROUP = "input"


def fingerprint(finding: Finding) -> str:
    """Stable identity of a finding that survives line moves: rule, resource, field, message."""
    path = "/".join(str(p) for p in finding.field_path)
    raw = "\x1f".join((finding.rule_id, finding.cluster, finding.resource or finding.location.path,
                       path, finding.message))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def group_of(finding: Finding, report: Report) -> str:
    """The JUnit suite / Markdown section a finding belongs to (cluster or pack)."""
    if report.group_by == "cluster" and finding.cluster:
        return finding.cluster
    if finding.category == "input":
        return INPUT_GROUP
    return finding.pack or finding.category


def by_severity(findings: tuple[Finding, ...] | list[Finding]) -> list[Finding]:
    """Most severe first, then the deterministic finding order."""
    return sorted(findings, key=lambda f: (-int(f.severity), f.sort_key()))


def standards(report: Report) -> dict[str, int]:
    """Active findings counted per standard named in their controls."""
    out: dict[str, int] = {}
    for finding in report.active:
        for std in sorted({c.standard for c in finding.controls}):
            out[std] = out.get(std, 0) + 1
    return dict(sorted(out.items()))
