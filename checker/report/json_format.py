"""JSON: the whole report as data, keys sorted, for scripts and dashboards.

Indented two spaces, except that each finding (in ``findings`` and ``accepted``) is one line:
that keeps 60,000 findings fast to write and a diff shows one line per changed finding.
"""

from __future__ import annotations

from collections.abc import Mapping
from json.encoder import encode_basestring_ascii as _string
from typing import Any

from checker.model import FieldPath, Finding, Report, Severity
from checker.report.common import ONE_LINE as _encode
from checker.report.common import (
    RawJSON,
    coverage_counts,
    coverage_dict,
    delta_summary,
    dump_json,
    exemption_groups,
    severity_counts,
)
from checker.report.impact import data as impact_data

ONE_LINE = frozenset({"findings", "accepted", "fixed"})
_LABEL = {s: s.label for s in Severity}


class _Lines:
    """Findings as one-line JSON (keys sorted, as the C encoder writes them), built from parts.

    Each finding is ``{acceptance (accepted ones only), category, cluster, controls, details,
    fieldPath, location {column, endColumn, endLine, line, path}, message, pack, resource,
    rule, severity}``. Strings go through the C string escaper and nested data through the C
    encoder; the parts that repeat across findings (paths, rules, controls, field paths,
    details) are encoded once.
    """

    def __init__(self) -> None:
        self.strings: dict[str, str] = {}
        # keyed by the controls tuple's id: findings of one rule share that tuple, and hashing
        # it would hash every Control (Python code); every finding stays alive while rendering
        self.heads: dict[tuple[str, str, int], str] = {}
        self.paths: dict[FieldPath, str] = {}
        self.details: dict[tuple[tuple[str, Any], ...], str] = {}

    def string(self, text: str) -> str:
        """``text`` as a JSON string."""
        out = self.strings.get(text)
        if out is None:
            out = self.strings[text] = _string(text)
        return out

    def _details(self, details: Mapping[str, Any]) -> str:
        try:
            key = tuple(details.items())
            out = self.details.get(key)
        except TypeError:  # a list or object inside: not cacheable
            return _encode(dict(details))
        if out is None:
            out = _encode(dict(details))
            # only text is cached: 1 == True == 1.0 would share an entry, "1" never does
            if all(type(k) is str and type(v) is str for k, v in key):
                self.details[key] = out
        return out

    def line(self, f: Finding) -> RawJSON:
        """One finding on one line, keys sorted."""
        key = (f.category, f.cluster, id(f.controls))
        head = self.heads.get(key)
        if head is None:
            controls = [{"standard": c.standard, "id": c.id} for c in f.controls]
            head = self.heads[key] = (
                f'{{"category": {_string(f.category)}, "cluster": {_string(f.cluster)}, '
                f'"controls": {_encode(controls)}')
        field_path = self.paths.get(f.field_path)
        if field_path is None:
            field_path = self.paths[f.field_path] = _encode(list(f.field_path))
        loc = f.location
        s = self.string
        end_column = "null" if loc.end_column is None else int(loc.end_column)
        end_line = "null" if loc.end_line is None else int(loc.end_line)
        if f.baseline:  # the delta against a base: "baseline" sorts before "category"
            head = f'{{"baseline": "{f.baseline}", ' + head[1:]
        if f.suppression is not None:  # "acceptance" sorts first
            acc = f.suppression
            head = '{"acceptance": ' + _encode({
                "expires": acc.expires, "justification": acc.justification, "kind": acc.kind,
                "owner": acc.owner, "source": acc.source}) + ", " + head[1:]
        return RawJSON(
            f'{head}, "details": {self._details(f.details)}, "fieldPath": {field_path}, '
            f'"location": {{"column": {int(loc.column)}, "endColumn": {end_column}, '
            f'"endLine": {end_line}, "line": {int(loc.line)}, "path": {s(loc.path)}}}, '
            f'"message": {_string(f.message)}, "pack": {s(f.pack)}, '
            f'"resource": {s(f.resource)}, "rule": {s(f.rule_id)}, '
            f'"severity": "{_LABEL[f.severity]}"}}')


def render(report: Report) -> str:
    """The report as JSON with sorted keys: indented, one line per finding."""
    lines = _Lines()
    active, suppressed = report.active, report.suppressed
    data = {
        "tool": {"name": "gitops-checker", "version": report.tool_version,
                 "regoEngines": list(report.engines)},
        "summary": {"resources": report.resources_checked, "files": report.files_checked,
                    "bySeverity": severity_counts(active), "accepted": len(suppressed)},
        "packs": list(report.packs),
        "clusters": list(report.clusters),
        "findings": [lines.line(f) for f in active],
        "accepted": [lines.line(f) for f in suppressed],
        "errors": list(report.errors),
        "coverage": {"counts": coverage_counts(report.coverage),
                     "entries": [coverage_dict(c) for c in report.coverage]},
        "exemptions": exemption_groups(report.exemptions),
    }
    if report.drift_summary:
        data["drift"] = dict(report.drift_summary)
    if report.impact is not None:  # the policy change's what-if (docs/github-action.md)
        data["impact"] = impact_data(report.impact)
    if report.base:
        data["delta"] = delta_summary(report) | {
            "fixed": [lines.line(f) for f in report.fixed]}
    return dump_json(data, ONE_LINE)
