"""SARIF 2.1.0 for GitHub code scanning.

Built from ``sarif_om`` objects and serialized by their schema property names. GitHub shows
only the first location, needs relative URIs and ``region.startLine``, reads
``security-severity`` from rule properties, and does not hide suppressed results: accepted
findings are left out of this file (see ``render_accepted`` for the opt-in file).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import attr
import sarif_om as om

from checker.model import Finding, Report, Rule, Severity
from checker.report.common import SECURITY_SEVERITY, fingerprint

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/gitops-checker/gitops-checker"
LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}
MAX_RESULTS = 25_000


def _plain(value: Any) -> Any:
    """sarif_om object tree -> JSON data, using the schema's property names."""
    if attr.has(type(value)):
        out = {}
        for fld in attr.fields(type(value)):
            item = getattr(value, fld.name)
            if item is None or (fld.default is not attr.NOTHING and item == fld.default
                                and fld.name not in ("version",)):
                continue
            out[fld.metadata.get("schema_property_name", fld.name)] = _plain(item)
        return out
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _rule_name(rule_id: str) -> str:
    parts = [p for p in rule_id.replace("/", "-").replace(".", "-").split("-") if p]
    return "".join(p[:1].upper() + p[1:] for p in parts) or "Rule"


def _descriptor(rule: Rule) -> om.ReportingDescriptor:
    tags = ["security", "kubernetes", *sorted({c.standard for c in rule.controls})]
    controls = "".join(f"\n- {c.standard}: {c.id}" for c in rule.controls)
    help_text = rule.help or rule.description or rule.title
    help_md = help_text + (f"\n\n**Controls**{controls}" if controls else "")
    return om.ReportingDescriptor(
        id=rule.id,
        name=_rule_name(rule.id),
        short_description=om.MultiformatMessageString(text=rule.title),
        full_description=om.MultiformatMessageString(text=rule.description or rule.title),
        help=om.MultiformatMessageString(text=help_text + controls, markdown=help_md),
        default_configuration=om.ReportingConfiguration(level=LEVEL[rule.severity]),
        properties={
            "security-severity": SECURITY_SEVERITY[rule.severity],
            "precision": "high",
            "problem.severity": {"error": "error", "warning": "warning",
                                 "note": "recommendation"}[rule.severity.label],
            "tags": tags,
        },
    )


def _result(f: Finding, index: int) -> om.Result:
    loc = f.location
    region = om.Region(start_line=max(loc.line, 1), start_column=max(loc.column, 1))
    if loc.end_line is not None and loc.end_line >= loc.line:
        region.end_line = loc.end_line
        if loc.end_column is not None and (loc.end_line > loc.line or
                                           loc.end_column > region.start_column):
            region.end_column = loc.end_column
    text = f.message if not f.resource else f"{f.message} ({f.resource})"
    return om.Result(
        rule_id=f.rule_id,
        rule_index=index,
        level=LEVEL[f.severity],
        message=om.Message(text=text or f.rule_id),
        locations=[om.Location(physical_location=om.PhysicalLocation(
            artifact_location=om.ArtifactLocation(uri=loc.path, uri_base_id="%SRCROOT%"),
            region=region,
        ))],
        partial_fingerprints={"gitopsChecker/v1": fingerprint(f)},
        properties={"category": f.category, **({"cluster": f.cluster} if f.cluster else {})},
    )


def _log(report: Report, findings: Iterable[Finding], *, accepted: bool) -> str:
    chosen = list(findings)[:MAX_RESULTS]
    rule_ids = sorted({f.rule_id for f in chosen} | {
        r for r in report.rules if not accepted and report.rules[r].pack != ""})
    index = {rid: i for i, rid in enumerate(rule_ids)}
    rules = [_descriptor(report.rules[rid]) if rid in report.rules else _descriptor(
        Rule(id=rid, title=rid, severity=Severity.ERROR)) for rid in rule_ids]
    results = []
    for f in chosen:
        result = _result(f, index[f.rule_id])
        if accepted and f.suppression is not None:
            # sarif_om 1.0.4 predates suppression.status; write the 2.1.0 object directly.
            result.suppressions = [{
                "kind": "external", "status": "accepted",
                "justification": f"{f.suppression.justification} (owner {f.suppression.owner}, "
                                 f"expires {f.suppression.expires or 'never'})"}]
        results.append(result)
    run = om.Run(
        tool=om.Tool(driver=om.ToolComponent(
            name="gitops-checker", version=report.tool_version or None,
            semantic_version=report.tool_version or None, information_uri=INFO_URI,
            rules=rules,
        )),
        results=results,
        column_kind="unicodeCodePoints",
        original_uri_base_ids={"%SRCROOT%": om.ArtifactLocation(
            description=om.Message(text="The repository root."))},
    )
    if report.sarif_category:
        run.automation_details = om.RunAutomationDetails(id=f"{report.sarif_category}/")
    log = om.SarifLog(version="2.1.0", runs=[run], schema_uri=SCHEMA)
    return json.dumps(_plain(log), indent=2, sort_keys=True) + "\n"


def _cluster_runs(report: Report, findings: Iterable[Finding], *, accepted: bool) -> str:
    """One run per cluster, each with its own category ``<category>/<cluster>``.

    GitHub code scanning no longer merges several runs of one tool and category in one upload,
    and closes an alert only when a later analysis of the same category lacks it, so every
    cluster always gets its run (empty or not), and findings of no cluster (input and
    acceptance problems) a run of the plain category.
    """
    base = report.sarif_category or "gitops-checker"
    chosen = list(findings)
    groups = [("", [f for f in chosen if f.cluster not in report.clusters])]
    groups += [(c, [f for f in chosen if f.cluster == c]) for c in report.clusters]
    runs = []
    for cluster, items in groups:
        sub = replace(report, sarif_category=f"{base}/{cluster}" if cluster else base)
        runs += json.loads(_log(sub, items, accepted=accepted))["runs"]
    log = json.loads(_log(report, [], accepted=accepted))
    log["runs"] = runs
    return json.dumps(log, indent=2, sort_keys=True) + "\n"


def render(report: Report) -> str:
    """SARIF for upload: active findings only (accepted risks are left out)."""
    if report.group_by == "cluster" and report.clusters:
        return _cluster_runs(report, report.active, accepted=False)
    return _log(report, report.active, accepted=False)


def render_accepted(report: Report) -> str:
    """Opt-in SARIF of accepted findings, each with a ``suppressions`` entry."""
    if report.group_by == "cluster" and report.clusters:
        return _cluster_runs(report, report.suppressed, accepted=True)
    return _log(report, report.suppressed, accepted=True)
