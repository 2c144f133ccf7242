"""JSON: the whole report as data, keys sorted, for scripts, dashboards and ``merge``.

Indented two spaces, except that each finding (in ``findings`` and ``accepted``) and each rule
is one line: that keeps 60,000 findings fast to write and a diff shows one line per changed
finding. The document holds everything the other formats are rendered from (rules, settings,
each finding's object as a structured ``ref``), so :func:`load` gives the Report back and
``render(load(text)) == text`` for every format; its schema is
``checker/schemas/report.schema.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii as _string
from typing import Any

from checker.model import (
    ClusterPart,
    Control,
    Coverage,
    Exemption,
    FieldPath,
    Finding,
    Impact,
    ImpactEntry,
    ObjectRef,
    PolicyChange,
    Report,
    Rule,
    Severity,
    Shard,
    SourceLocation,
    Suppression,
)
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

ONE_LINE = frozenset({"findings", "accepted", "fixed", "rules"})
_LABEL = {s: s.label for s in Severity}


class _Lines:
    """Findings as one-line JSON (keys sorted, as the C encoder writes them), built from parts.

    Each finding is ``{acceptance (accepted ones only), category, cluster, controls [{id,
    standard, title only where it is not the rule's}], details, fieldPath, location {column,
    endColumn, endLine, line, path}, message, pack, ref {cluster, group, kind, name,
    namespace, version} or null, resource, rule, severity}``. Strings go
    through the C string escaper and nested data through the C encoder; the parts that repeat
    across findings (paths, rules, controls, field paths, details, object refs) are encoded
    once.
    """

    def __init__(self, rules: Mapping[str, Rule]) -> None:
        self.rules = rules
        self.strings: dict[str, str] = {}
        # keyed by the controls tuple's id (and the rule): findings of one rule share that
        # tuple, and hashing
        # it would hash every Control (Python code); every finding stays alive while rendering
        self.heads: dict[tuple[str, str, int, str], str] = {}
        self.paths: dict[FieldPath, str] = {}
        self.details: dict[tuple[tuple[str, Any], ...], str] = {}
        self.refs: dict[int, tuple[ObjectRef, str]] = {}  # findings of an object share its ref

    def string(self, text: str) -> str:
        """``text`` as a JSON string."""
        out = self.strings.get(text)
        if out is None:
            out = self.strings[text] = _string(text)
        return out

    def ref(self, ref: ObjectRef | None) -> str:
        """The object reference as a JSON object, or ``null`` for a finding about a file."""
        if ref is None:
            return "null"
        known = self.refs.get(id(ref))
        if known is not None and known[0] is ref:
            return known[1]
        s = self.string
        out = (f'{{"cluster": {s(ref.cluster)}, "group": {s(ref.group)}, '
               f'"kind": {s(ref.kind)}, "name": {s(ref.name)}, '
               f'"namespace": {s(ref.namespace)}, "version": {s(ref.version)}}}')
        self.refs[id(ref)] = (ref, out)
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
        key = (f.category, f.cluster, id(f.controls), f.rule_id)
        head = self.heads.get(key)
        if head is None:
            # a control's title is the rule's (in "rules"): written only where it differs
            rule = self.rules.get(f.rule_id)
            known = {(c.standard, c.id): c.title for c in rule.controls} if rule else {}
            controls = [{"standard": c.standard, "id": c.id} if known.get(
                (c.standard, c.id)) == c.title else {"standard": c.standard, "id": c.id,
                                                     "title": c.title} for c in f.controls]
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
                "approver": acc.approver, "expires": acc.expires,
                "justification": acc.justification, "kind": acc.kind, "owner": acc.owner,
                "source": acc.source, "ticket": acc.ticket}) + ", " + head[1:]
        return RawJSON(
            f'{head}, "details": {self._details(f.details)}, "fieldPath": {field_path}, '
            f'"location": {{"column": {int(loc.column)}, "endColumn": {end_column}, '
            f'"endLine": {end_line}, "line": {int(loc.line)}, "path": {s(loc.path)}}}, '
            f'"message": {_string(f.message)}, "pack": {s(f.pack)}, '
            f'"ref": {self.ref(f.ref)}, '
            f'"resource": {s(f.resource)}, "rule": {s(f.rule_id)}, '
            f'"severity": "{_LABEL[f.severity]}"}}')


def _controls(controls: tuple[Control, ...]) -> list[dict[str, str]]:
    return [{"standard": c.standard, "id": c.id, "title": c.title} for c in controls]


def _rule(rule: Rule) -> dict[str, Any]:
    return {"id": rule.id, "title": rule.title, "severity": rule.severity.label,
            "description": rule.description, "help": rule.help, "pack": rule.pack,
            "controls": _controls(rule.controls), "helpUri": rule.help_uri}


def _exemptions(report: Report) -> list[dict[str, Any]]:
    """``exemption_groups`` with each policy's own count of objects skipped."""
    groups = exemption_groups(report.exemptions)
    for group in groups:
        group["skippedBy"] = {e.policy: e.skipped for e in report.exemptions
                              if (e.cluster, list(e.namespaces), e.source)
                              == (group["cluster"], group["namespaces"], group["source"])}
    return groups


def _shard(shard: Shard) -> dict[str, Any]:
    return {"index": shard.index, "count": shard.count, "clusters": list(shard.clusters),
            "parts": [{"name": p.name, "packs": list(p.packs), "engines": list(p.engines),
                       "errors": list(p.errors), "rules": list(p.rules)}
                      for p in shard.parts],
            "files": list(shard.files), "acceptancesUsed": list(shard.used)}


def render(report: Report) -> str:
    """The report as JSON with sorted keys: indented, one line per finding and per rule."""
    lines = _Lines(report.rules)
    active, suppressed = report.active, report.suppressed
    data = {
        "tool": {"name": "gitops-checker", "version": report.tool_version,
                 "regoEngines": list(report.engines)},
        "summary": {"resources": report.resources_checked, "files": report.files_checked,
                    "bySeverity": severity_counts(active), "accepted": len(suppressed)},
        "settings": {"failOn": report.fail_on.label if report.fail_on is not None
                     else "never", "groupBy": report.group_by, "linkBase": report.link_base,
                     "sarifCategory": report.sarif_category, "gate": report.gate},
        "packs": list(report.packs),
        "clusters": list(report.clusters),
        "rules": [_rule(r) for _, r in sorted(report.rules.items())],
        "findings": [lines.line(f) for f in active],
        "accepted": [lines.line(f) for f in suppressed],
        "errors": list(report.errors),
        "coverage": {"counts": coverage_counts(report.coverage),
                     "entries": [coverage_dict(c) for c in report.coverage]},
        "exemptions": _exemptions(report),
    }
    if report.drift_summary:
        data["drift"] = dict(report.drift_summary)
    if report.impact is not None:  # the policy change's what-if (docs/github-action.md)
        data["impact"] = impact_data(report.impact)
    if report.base:
        data["delta"] = delta_summary(report) | {
            "fixed": [lines.line(f) for f in report.fixed]}
    if report.shard is not None:
        data["shard"] = _shard(report.shard)
    return dump_json(data, ONE_LINE)


class LoadError(ValueError):
    """A JSON report that is not one this version writes: says where and what."""


SCHEMA_FILE = "schemas/report.schema.json"


def schema() -> dict[str, Any]:
    """The published JSON Schema of the report (``checker/schemas/report.schema.json``)."""
    from importlib import resources

    loaded: dict[str, Any] = json.loads(resources.files("checker").joinpath(
        SCHEMA_FILE).read_text(encoding="utf-8"))
    return loaded


def _first_error(instance: Any, sub: dict[str, Any], prefix: str) -> str | None:
    """The schema's first complaint about ``instance`` (validated against ``sub``)."""
    import jsonschema

    validator = jsonschema.Draft7Validator({**schema(), **sub})
    error = min(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path],
                default=None)
    if error is None:
        return None
    where = "/".join([prefix, *(str(p) for p in error.absolute_path)]).strip("/")
    return f"{where or '(document)'}: {error.message}"


_STRINGS = ("rule", "category", "message", "resource", "pack", "cluster")
_LOCATION = frozenset({"path", "line", "column", "endLine", "endColumn"})
_REF = frozenset({"cluster", "group", "version", "kind", "namespace", "name"})
_ACCEPTANCE = frozenset({"kind", "justification", "owner", "expires", "source", "approver",
                         "ticket"})
_FINDING = frozenset({*_STRINGS, "severity", "location", "fieldPath", "controls", "details",
                      "ref"})
_BASELINES = frozenset({"new", "unchanged", "absent"})
_CONTROL = frozenset({"standard", "id"})
_CONTROL_TITLED = _CONTROL | {"title"}


def _int(value: Any) -> bool:
    return type(value) is int


def _text_fields(value: Any, keys: frozenset[str]) -> bool:
    return (type(value) is dict and value.keys() == keys
            and all(type(v) is str for v in value.values()))


def _plain_finding(item: Any, acceptance: bool | None) -> bool:
    """What the schema requires of one finding, checked in plain Python (a report has tens
    of thousands; the schema validator is only asked to say what is wrong with one that fails
    here). ``acceptance``: required (accepted), forbidden (findings) or optional (fixed)."""
    if type(item) is not dict:
        return False
    keys = set(item)
    if "baseline" in keys:
        if item["baseline"] not in _BASELINES:
            return False
        keys.discard("baseline")
    if "acceptance" in keys:
        if acceptance is False or not _text_fields(item["acceptance"], _ACCEPTANCE):
            return False
        keys.discard("acceptance")
    elif acceptance:
        return False
    if keys != _FINDING or not all(type(item[k]) is str for k in _STRINGS):
        return False
    loc = item["location"]
    if not (type(loc) is dict and loc.keys() == _LOCATION and type(loc["path"]) is str
            and _int(loc["line"]) and _int(loc["column"])
            and (loc["endLine"] is None or _int(loc["endLine"]))
            and (loc["endColumn"] is None or _int(loc["endColumn"]))):
        return False
    ref = item["ref"]
    return (item["severity"] in ("error", "warning", "note")
            and type(item["fieldPath"]) is list
            and all(type(p) is str or _int(p) for p in item["fieldPath"])
            and type(item["controls"]) is list
            and all(_text_fields(c, _CONTROL) or _text_fields(c, _CONTROL_TITLED)
                    for c in item["controls"])
            and type(item["details"]) is dict
            and (ref is None or _text_fields(ref, _REF)))


def _check(data: Any, name: str) -> None:
    """Refuse a document the schema does not accept, naming the first place it fails.

    The findings are checked in plain Python and the rest of the document by the schema:
    the schema validator takes about 0.4 ms a finding, too long for a fleet's reports.
    """
    problem = None
    if type(data) is not dict:
        problem = _first_error(data, {}, "")
    else:
        lists = {key: data.get(key) for key in ("findings", "accepted")}
        delta: Any = data.get("delta")
        fixed = delta.get("fixed") if isinstance(delta, dict) else None
        skeleton = {**data, **{k: [] for k, v in lists.items() if type(v) is list}}
        if isinstance(delta, dict) and type(fixed) is list:
            skeleton["delta"] = {**delta, "fixed": []}
        problem = _first_error(skeleton, {}, "")
        parts: list[tuple[str, Any, bool | None]] = [
            (key, items, key == "accepted") for key, items in lists.items()]
        parts.append(("delta/fixed", fixed, None))
        for key, items, accepted in parts:
            if problem is not None or type(items) is not list:
                continue
            for n, item in enumerate(items):
                if not _plain_finding(item, accepted):
                    where = "delta" if key == "delta/fixed" else key
                    sub = (schema()["properties"]["delta"]["properties"]["fixed"]["items"]
                           if key == "delta/fixed" else
                           schema()["properties"][where]["items"])
                    problem = _first_error(item, sub, f"{key}/{n}") or (
                        f"{key}/{n}: not a finding of this version")
                    break
    if problem is not None:
        raise LoadError(f"{name}: {problem} (not a gitops-checker JSON report of this version)")


def _impact(data: Mapping[str, Any], refs: dict[tuple[str, ...], ObjectRef]) -> Impact:
    """The ``Impact`` that ``checker.report.impact.data`` wrote."""
    def ref(r: Mapping[str, str] | None) -> ObjectRef | None:
        if r is None:
            return None
        key = (r["cluster"], r["group"], r["version"], r["kind"], r["namespace"], r["name"])
        return refs.setdefault(key, ObjectRef(*key))

    return Impact(
        base=data["base"],
        changes=tuple(PolicyChange(
            c["cluster"], c["policy"], c["change"], c["constraint"],
            c["enforcement"]["before"], c["enforcement"]["after"], c["severity"]["before"],
            c["severity"]["after"], c["location"]) for c in data["policies"]),
        entries=tuple(ImpactEntry(
            cluster=e["cluster"], against=e["against"], outcome=e["outcome"],
            policy=e["policy"], resource=e["resource"],
            location=SourceLocation(e["location"]["path"], e["location"]["line"]),
            why=e["why"], message=e["message"], constraint=e["constraint"],
            severity_before=e["severity"]["before"], severity_after=e["severity"]["after"],
            enforcement_before=e["enforcement"]["before"],
            enforcement_after=e["enforcement"]["after"], ref=ref(e["object"]),
            field_path=tuple(e["fieldPath"])) for e in data["entries"]),
        live=tuple(data["live"]), problems=tuple(data["problems"]))


def _finding_controls(items: list[dict[str, str]], rule: Rule | None) -> tuple[Control, ...]:
    """A finding's controls; a title left out is its rule's."""
    known = {(c.standard, c.id): c.title for c in rule.controls} if rule else {}
    return tuple(Control(c["standard"], c["id"], c.get("title", known.get(
        (c["standard"], c["id"]), ""))) for c in items)


def _finding(item: Mapping[str, Any], severity: Mapping[str, Severity],
             refs: dict[tuple[str, ...], ObjectRef], rules: Mapping[str, Rule]) -> Finding:
    loc = item["location"]
    acc = item.get("acceptance")
    ref = None
    if item["ref"] is not None:
        r = item["ref"]
        key = (r["cluster"], r["group"], r["version"], r["kind"], r["namespace"], r["name"])
        ref = refs.get(key)
        if ref is None:  # one object, one shared ObjectRef (as the pipeline builds them)
            ref = refs[key] = ObjectRef(*(str(k) for k in key))
    return Finding(
        rule_id=item["rule"], category=item["category"], severity=severity[item["severity"]],
        message=item["message"],
        location=SourceLocation(loc["path"], loc["line"], loc["column"], loc["endLine"],
                                loc["endColumn"]),
        resource=item["resource"], field_path=tuple(item["fieldPath"]),
        controls=_finding_controls(item["controls"], rules.get(item["rule"])),
        pack=item["pack"], cluster=item["cluster"],
        suppression=None if acc is None else Suppression(
            kind=acc["kind"], justification=acc["justification"], owner=acc["owner"],
            expires=acc["expires"], source=acc["source"], approver=acc["approver"],
            ticket=acc["ticket"]),
        details=item["details"], ref=ref, baseline=item.get("baseline", ""))


def load(text: str, name: str = "report") -> Report:
    """The Report a JSON report was rendered from (``name``: the file, for errors).

    Everything the renderers read comes back: ``render(load(json))`` equals the original
    report's rendering in every format (the assemble stage's selections are made again).
    Policy records (what ran where, with digests) are in the evidence record, not here.
    A document that is not JSON, or that the schema does not accept, is a ``LoadError`` that
    names the file and the place (``findings/3/location``).
    """
    from checker.assemble import assemble

    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise LoadError(f"{name}:{err.lineno}: not JSON ({err.msg})") from None
    _check(data, name)
    try:
        severity = {s.label: s for s in Severity}
        settings = data["settings"]
        refs: dict[tuple[str, ...], ObjectRef] = {}
        rules = {r["id"]: Rule(
            id=r["id"], title=r["title"], severity=severity[r["severity"]],
            description=r["description"], help=r["help"], pack=r["pack"],
            controls=tuple(Control(c["standard"], c["id"], c["title"])
                           for c in r["controls"]), help_uri=r["helpUri"])
            for r in data["rules"]}
        findings = [_finding(f, severity, refs, rules) for f in (*data["findings"],
                                                                 *data["accepted"])]
        exemptions = [Exemption(g["cluster"], policy, tuple(g["namespaces"]), g["source"],
                                skipped)
                      for g in data["exemptions"] for policy, skipped in g["skippedBy"].items()]
        shard = None
        if "shard" in data:
            sh = data["shard"]
            shard = Shard(
                clusters=tuple(sh["clusters"]),
                parts=tuple(ClusterPart(p["name"], tuple(p["packs"]), tuple(p["engines"]),
                                        tuple(p["errors"]), tuple(p["rules"]))
                            for p in sh["parts"]),
                files=tuple(sh["files"]), used=tuple(sh["acceptancesUsed"]),
                index=sh["index"], count=sh["count"])
        report = Report(
            findings=tuple(findings), rules=rules,
            resources_checked=data["summary"]["resources"],
            files_checked=data["summary"]["files"], packs=tuple(data["packs"]),
            clusters=tuple(data["clusters"]), tool_version=data["tool"]["version"],
            errors=tuple(data["errors"]), link_base=settings["linkBase"],
            sarif_category=settings["sarifCategory"], group_by=settings["groupBy"],
            fail_on=None if settings["failOn"] == "never" else severity[settings["failOn"]],
            gate=settings["gate"],
            drift_summary=data.get("drift", {}),
            coverage=tuple(Coverage(c["state"], c["kind"], c["what"], c["path"], c["line"],
                                    c["reason"], c["produced"])
                           for c in data["coverage"]["entries"]),
            engines=tuple(data["tool"]["regoEngines"]),
            exemptions=tuple(sorted(exemptions)), shard=shard,
            impact=_impact(data["impact"], refs) if "impact" in data else None,
            base=data.get("delta", {}).get("base", ""),
            fixed=tuple(_finding(f, severity, refs, rules) for f in data.get("delta", {}).get(
                "fixed", ())))
    except (KeyError, TypeError, AttributeError) as err:
        raise LoadError(f"{name}: not a JSON report of this version ({type(err).__name__}: "
                        f"{err})") from None
    return assemble(report)
