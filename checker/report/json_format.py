"""JSON: the whole report as data, keys sorted, for scripts and dashboards."""

from __future__ import annotations

import json
from typing import Any

from checker.model import Finding, Report


def finding_dict(f: Finding) -> dict[str, Any]:
    """One finding as plain JSON-ready data."""
    out: dict[str, Any] = {
        "rule": f.rule_id,
        "category": f.category,
        "severity": f.severity.label,
        "message": f.message,
        "location": {"path": f.location.path, "line": f.location.line,
                     "column": f.location.column, "endLine": f.location.end_line,
                     "endColumn": f.location.end_column},
        "resource": f.resource,
        "fieldPath": list(f.field_path),
        "controls": [{"standard": c.standard, "id": c.id} for c in f.controls],
        "pack": f.pack,
        "cluster": f.cluster,
        "details": dict(f.details),
    }
    if f.suppression is not None:
        out["acceptance"] = {"kind": f.suppression.kind,
                             "justification": f.suppression.justification,
                             "owner": f.suppression.owner, "expires": f.suppression.expires,
                             "source": f.suppression.source}
    return out


def render(report: Report) -> str:
    """The report as pretty-printed JSON with sorted keys."""
    data = {
        "tool": {"name": "gitops-checker", "version": report.tool_version},
        "summary": {"resources": report.resources_checked, "files": report.files_checked,
                    "bySeverity": report.counts(), "accepted": len(report.suppressed)},
        "packs": list(report.packs),
        "clusters": list(report.clusters),
        "findings": [finding_dict(f) for f in report.active],
        "accepted": [finding_dict(f) for f in report.suppressed],
        "errors": list(report.errors),
    }
    if report.drift_summary:
        data["drift"] = dict(report.drift_summary)
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
