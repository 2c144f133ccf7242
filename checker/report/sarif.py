"""SARIF 2.1.0 for GitHub code scanning.

The log, run, tool and rules are built from ``sarif_om`` objects and serialized by their schema
property names; results are written as plain data of the same shape (there can be tens of
thousands). The file is indented two spaces, one line per result. GitHub shows
only the first location, needs relative URIs and ``region.startLine``, reads
``security-severity`` from rule properties, and does not hide suppressed results: accepted
findings are left out of this file (see ``render_accepted`` for the opt-in file).
"""

from __future__ import annotations

from dataclasses import replace
from json.encoder import encode_basestring_ascii as _string
from typing import Any

import attr
import sarif_om as om

from checker import selection
from checker.model import BASELINE_STATES, Finding, Report, Rule, Selection, Severity
from checker.report.common import (
    FINGERPRINT,
    SECURITY_SEVERITY,
    RawJSON,
    coverage_counts,
    coverage_dict,
    dump_json,
    exemption_groups,
    fingerprint,
)
from checker.report.common import ONE_LINE as _encode

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/gitops-checker/gitops-checker"
LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}
ONE_LINE = frozenset({"results"})  # lists written one element per line
_ALWAYS = frozenset({"version", "level"})  # written even when equal to the SARIF default


def _plain(value: Any) -> Any:
    """sarif_om object tree -> JSON data, using the schema's property names."""
    if attr.has(type(value)):
        out = {}
        for fld in attr.fields(type(value)):
            item = getattr(value, fld.name)
            if item is None or (fld.default is not attr.NOTHING and item == fld.default
                                and fld.name not in _ALWAYS):
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


def help_uri(rule: Rule, version: str) -> str | None:
    """The absolute link to a rule's docs page (SARIF ``helpUri``), at the release that wrote
    the report (``main`` when the version is not known); None for a rule without a page."""
    if not rule.help_uri:
        return None
    if "://" in rule.help_uri:
        return rule.help_uri
    return f"{INFO_URI}/blob/{f'v{version}' if version else 'main'}/{rule.help_uri}"


def _descriptor(rule: Rule, version: str = "") -> om.ReportingDescriptor:
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
        help_uri=help_uri(rule, version),
        default_configuration=om.ReportingConfiguration(level=LEVEL[rule.severity]),
        properties={
            "security-severity": SECURITY_SEVERITY[rule.severity],
            "precision": "high",
            "problem.severity": {"error": "error", "warning": "warning",
                                 "note": "recommendation"}[rule.severity.label],
            "tags": tags,
        },
    )


class _Lines:
    """Results as one-line JSON (keys sorted, as the C encoder writes them), built from parts.

    Written directly (not through sarif_om and attrs introspection): a large scan has tens of
    thousands of results. Strings go through the C string escaper; the parts that repeat
    across results (file, rule, properties) are encoded once.
    """

    def __init__(self, index: dict[str, int]) -> None:
        self.index = index
        self.files: dict[str, str] = {}
        self.rules: dict[str, str] = {}
        self.properties: dict[tuple[str, str], str] = {}

    def line(self, f: Finding, accepted: bool = False) -> RawJSON:
        """One result on one line, keys sorted; ``accepted``: with its ``suppressions``."""
        loc = f.location
        artifact = self.files.get(loc.path)
        if artifact is None:
            artifact = self.files[loc.path] = (
                f'{{"uri": {_string(loc.path)}, "uriBaseId": "%SRCROOT%"}}')
        rule = self.rules.get(f.rule_id)
        if rule is None:
            rule = self.rules[f.rule_id] = (
                f'"ruleId": {_string(f.rule_id)}, "ruleIndex": {int(self.index[f.rule_id])}')
        properties = self.properties.get((f.category, f.cluster))
        if properties is None:
            properties = self.properties[(f.category, f.cluster)] = _encode(
                {"category": f.category, "cluster": f.cluster} if f.cluster else {
                    "category": f.category})
        if f.affects:  # one result for the objects one line renders into (overlays)
            properties = _encode({"category": f.category, **(
                {"cluster": f.cluster} if f.cluster else {}),
                "objects": [str(ref) for ref in f.affects]})
        start_column = max(loc.column, 1)
        region = ""
        if loc.end_line is not None and loc.end_line >= loc.line:
            if loc.end_column is not None and (loc.end_line > loc.line or
                                               loc.end_column > start_column):
                region = f'"endColumn": {int(loc.end_column)}, '
            region += f'"endLine": {int(loc.end_line)}, '
        text = f.message if not f.resource else f"{f.message} ({f.resource})"
        # the delta against a base: SARIF's baselineState ("new"/"unchanged"); code scanning
        # ignores it and keeps its own alert state, other consumers read it
        state = f'"baselineState": "{f.baseline}", ' if f.baseline in BASELINE_STATES else ""
        return RawJSON(
            f'{{{state}"level": "{LEVEL[f.severity]}", "locations": [{{"physicalLocation": '
            f'{{"artifactLocation": {artifact}, "region": {{{region}"startColumn": '
            f'{int(start_column)}, "startLine": {int(max(loc.line, 1))}}}}}}}], '
            f'"message": {{"text": {_string(text or f.rule_id)}}}, '
            f'"partialFingerprints": {{"{FINGERPRINT}": "{fingerprint(f)}"}}, '
            f'"properties": {properties}, {rule}{_suppressions(f) if accepted else ""}}}')


def _suppressions(f: Finding) -> str:
    """``, "suppressions": [...]`` of an accepted finding (sarif_om 1.0.4 predates
    ``suppression.status``: the 2.1.0 object is written directly); empty for an active one."""
    if f.suppression is None:
        return ""
    s = f.suppression
    return ', "suppressions": ' + _encode([{
        "justification": f"{s.justification} (owner {s.owner}, expires {s.expires or 'never'})",
        "kind": "external", "status": "accepted"}])


def _left_out(part: Selection) -> dict[str, Any]:
    """The run-level notification that says what the cap left out (chosen in assemble)."""
    count = sum(part.left_out.values())
    detail = ", ".join(f"{n} {label}" for label, n in part.left_out.items())
    why = part.why or f"code scanning reads at most {part.limit} results per run"
    return {
        "level": "warning",
        "descriptor": {"id": "gitops-checker/sarif-results-left-out"},
        "message": {"text": f"{count} of {part.total} results were left out of this run "
                            f"({detail}): {why}, so the new and the most severe were kept. "
                            "The JSON report has them all."},
    }


def _run(report: Report, part: Selection, *, accepted: bool) -> dict[str, Any]:
    """One SARIF run: tool and rules through sarif_om, results as plain data.

    The results are the ones the assemble stage kept for this run; when it left some out (a
    run holds at most 25,000), a ``toolExecutionNotifications`` entry of the run's invocation
    says how many.
    """
    chosen = part.kept
    rule_ids = sorted({f.rule_id for f in chosen} | {
        r for r in report.rules if not accepted and report.rules[r].pack != ""})
    index = {rid: i for i, rid in enumerate(rule_ids)}
    rules = [_descriptor(_severity(report.rules[rid], part), report.tool_version)
             if rid in report.rules else _descriptor(Rule(id=rid, title=rid,
                                                          severity=Severity.ERROR))
             for rid in rule_ids]
    lines = _Lines(index)
    results = [lines.line(f, accepted) for f in chosen]
    run = om.Run(
        tool=om.Tool(driver=om.ToolComponent(
            name="gitops-checker", version=report.tool_version or None,
            semantic_version=report.tool_version or None, information_uri=INFO_URI,
            rules=rules,
        )),
        column_kind="unicodeCodePoints",
        original_uri_base_ids={"%SRCROOT%": om.ArtifactLocation(
            description=om.Message(text="The repository root."))},
    )
    if report.sarif_category:
        run.automation_details = om.RunAutomationDetails(id=f"{report.sarif_category}/")
    data: dict[str, Any] = _plain(run)
    if report.coverage and not accepted:
        data.update(_coverage(report))
    if report.engines:  # which Rego engine gave the verdicts
        data.setdefault("properties", {})["regoEngines"] = list(report.engines)
    if part.clusters:  # the clusters whose results the run holds (each result names its own)
        data.setdefault("properties", {})["clusters"] = list(part.clusters)
    exempt = _exemptions(report, part)
    if exempt:
        data.setdefault("properties", {})["gitopsChecker/exemptions"] = exempt
        invocation = (data.get("invocations") or [{"executionSuccessful": not report.errors}])[0]
        invocation["toolConfigurationNotifications"] = [_exempt_note(g) for g in exempt]
        data["invocations"] = [invocation]
    if part.left_out:
        invocation = (data.get("invocations") or [{"executionSuccessful": True}])[0]
        invocation.setdefault("toolExecutionNotifications", []).append(_left_out(part))
        data["invocations"] = [invocation]
    data["results"] = results
    return data


def _exemptions(report: Report, part: Selection) -> list[dict[str, Any]]:
    """The exemption groups of the run's clusters (all of them in a run of every cluster)."""
    items = [e for e in report.exemptions
             if not part.clusters or not e.cluster or e.cluster in part.clusters]
    return exemption_groups(items)


def _exempt_note(group: dict[str, Any]) -> dict[str, Any]:
    """A tool configuration notification: which namespaces which policies skipped, set where
    (code scanning shows no result for an exempt object, so the run says it was not checked)."""
    where = f" in cluster {group['cluster']}" if group["cluster"] else ""
    policies = group["policies"]
    return {
        "level": "note",
        "descriptor": {"id": "gitops-checker/namespace-exempt"},
        "message": {"text": f"namespaces {', '.join(group['namespaces'])}{where} are exempt "
                            f"from {len(policies)} policies ({', '.join(policies)}); "
                            f"{group['skipped']} objects were not checked by them; "
                            f"set by {group['source']}"},
        "properties": {"cluster": group["cluster"], "namespaces": group["namespaces"],
                       "policies": policies, "skipped": group["skipped"],
                       "source": group["source"]},
    }


def _severity(rule: Rule, part: Selection) -> Rule:
    """The rule as this run's descriptor states it: with the severity every one of its results
    in the run has, when that is a cluster's override (code scanning shows a rule's
    ``security-severity`` and default level, not a result's)."""
    severity = part.severities.get(rule.id)
    return rule if severity is None or severity is rule.severity else replace(
        rule, severity=severity)


def _coverage(report: Report) -> dict[str, Any]:
    """The coverage ledger: every entry in the run's properties, and each input that was not
    checked as a tool execution notification (with its location) of the run's invocation."""
    notifications = []
    for c in report.coverage:
        if c.state != "not-checked":
            continue
        notifications.append({
            "level": "warning",
            "message": {"text": f"{c.what} was not checked: {c.reason}"},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": c.path, "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": max(c.line, 1)}}}],
            "descriptor": {"id": "input.not-checked"},
            "properties": {"kind": c.kind},
        })
    invocation: dict[str, Any] = {"executionSuccessful": not report.errors}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return {"invocations": [invocation], "properties": {
        "gitopsChecker/coverage": {"counts": coverage_counts(report.coverage),
                                   "entries": [coverage_dict(c) for c in report.coverage]}}}


def _log(runs: list[dict[str, Any]]) -> str:
    """The SARIF document: indented, one line per result (see ``dump_json``)."""
    log = _plain(om.SarifLog(version="2.1.0", runs=[], schema_uri=SCHEMA))
    log["runs"] = runs
    return dump_json(log, ONE_LINE)


def _runs(report: Report, *, accepted: bool) -> str:
    """The runs the assemble stage chose; grouped per cluster, each run has the category
    ``<category>/<cluster>`` and the coverage ledger is written once, in the first run.

    A Report that did not go through ``assemble`` (built by hand) has every finding.
    """
    key = selection.SARIF_ACCEPTED if accepted else selection.SARIF
    parts = report.selections.get(key) or selection.sarif_parts(report, accepted=accepted,
                                                                  limit=None)
    if not (report.group_by == "cluster" and report.clusters):
        return _log([_run(report, part, accepted=accepted) for part in parts])
    base = report.sarif_category or "gitops-checker"
    runs = []
    for part in parts:
        sub = replace(report, sarif_category=f"{base}/{part.run}" if part.run else base,
                      coverage=() if part.run else report.coverage)  # the ledger: once
        runs.append(_run(sub, part, accepted=accepted))
    return _log(runs)


def render(report: Report) -> str:
    """SARIF for upload: active findings only (accepted risks are left out)."""
    return _runs(report, accepted=False)


def render_accepted(report: Report) -> str:
    """Opt-in SARIF of accepted findings, each with a ``suppressions`` entry."""
    return _runs(report, accepted=True)
