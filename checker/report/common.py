"""Helpers shared by renderers (pure functions of the report)."""

from __future__ import annotations

import hashlib
import heapq
import json
import re
from collections import Counter
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from checker.model import Coverage, Exemption, Finding, Report, Severity

SECURITY_SEVERITY = {Severity.ERROR: "7.5", Severity.WARNING: "5.0", Severity.NOTE: "2.0"}
INPUT_GROUP = "input"


# Markdown text from the repository (messages, names, paths, reasons) is written inert: the
# characters that make inline markup in GitHub Markdown backslash-escaped ("|" too, for table
# cells; "$" for math; ":" before "/" and "." after "www", so a URL is no autolink), a first
# character that could open a block escaped, "<", ">" and "&" as entities (no HTML), line
# breaks as spaces, and a word joiner after "@" and "#", so "@team" notifies nobody, an
# address is no mail link and "#12" links no issue. What shows is the text as it was.
_MD_SPECIAL = frozenset("\\`*_[]|~$")
_MD_ENTITY = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
_MD_BREAKS = frozenset("\r\n\t\v\f\u2028\u2029\x85")
_MD_BLOCK = re.compile(r"[-+=]|\d{1,9}[.)]")  # a list item, a setext line, an ordered list


def markdown_text(value: str) -> str:
    """``value`` as literal text in GitHub Markdown (a table cell too): no markup, no HTML,
    no link, no mention, no issue reference."""
    out = []
    for i, char in enumerate(value):
        if char in _MD_ENTITY:
            out.append(_MD_ENTITY[char])
        elif char in _MD_SPECIAL:
            out.append("\\" + char)
        elif char == "@":
            out.append("@\u2060")
        elif char == "#":
            out.append("\\#\u2060")
        elif char in _MD_BREAKS:
            out.append(" ")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append("\ufffd")  # other control characters: shown as replaced
        elif (char == ":" and value[i + 1:i + 2] == "/") or (
                char == "." and value[max(i - 3, 0):i].lower() == "www"):
            out.append("\\" + char)
        else:
            out.append(char)
    indent = len(value) - len(value.lstrip(" "))
    if indent:  # leading spaces would make a code block: entities are text
        out[:indent] = ["&#32;"] * indent
    elif start := _MD_BLOCK.match(value):  # escape the opener's last character: "\-", "1\."
        out[start.end() - 1] = "\\" + out[start.end() - 1]
    return "".join(out)


def markdown_code(value: str) -> str:
    """``value`` as an inline code span in GitHub Markdown (a table cell too).

    A code span shows its text as is (no HTML, no link, no mention); a backtick cannot end it
    early (it becomes ``'``) and ``|`` is escaped so it cannot end a table cell.
    """
    text = "".join(" " if c in _MD_BREAKS else "\ufffd" if ord(c) < 0x20 or ord(c) == 0x7F
                   else c for c in value)
    return "`" + (text.replace("`", "'").replace("|", "\\|").strip() or " ") + "`"


def markdown_link(label: str, base: str, path: str, line: int | None = None) -> str:
    """``[label](base/path#Lline)``: the label escaped, the path percent-encoded.

    ``base`` is trusted (the server, repository and commit of the run); the path comes from
    the repository and is encoded whole, so it cannot end the link or add a scheme.
    """
    import urllib.parse

    target = f"{base.rstrip('/')}/{urllib.parse.quote(path, safe='/')}"
    return f"[{markdown_text(label)}]({target}{f'#L{line}' if line else ''})"


FINGERPRINT = "gitopsChecker/v3"  # v3: Finding.identity, the one the delta uses


def fingerprint(finding: Finding) -> str:
    """Stable identity of a finding that survives line moves: a digest of ``Finding.identity``.

    That is the rule, the cluster, the object (its ``ObjectRef``: group, kind, namespace,
    name, not the served version; a finding about a file and no object: its path), the field
    path and the message without file positions or line numbers: the same identity the delta
    against the base pairs findings on, so code scanning and the delta agree on what is one
    finding. Two objects one base line renders into (two overlays) and two findings of one
    rule on one line (a liveness and a readiness probe) differ in it.
    """
    raw = "\x1f".join(finding.identity)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def delta_summary(report: Report) -> dict[str, Any]:
    """``{"base": commit, "counts": {"new", "unchanged", "fixed"}}`` of a delta report:
    active findings only (accepted ones are listed apart in every format)."""
    return {"base": report.base, "counts": {
        "new": len(report.new), "unchanged": len(report.unchanged),
        "fixed": sum(1 for f in report.fixed if f.suppression is None)}}


def delta_line(report: Report) -> str:
    """One sentence about the delta (empty without a base), for text and Markdown."""
    if not report.base:
        return ""
    counts = delta_summary(report)["counts"]
    gate = " (the exit code weighs the new ones only)" if report.gate == "new" else ""
    return (f"Against the base {report.base[:12]}: {counts['new']} new, "
            f"{counts['unchanged']} unchanged, {counts['fixed']} fixed by this change{gate}.")


def group_of(finding: Finding, report: Report) -> str:
    """The JUnit suite / Markdown section a finding belongs to (cluster or pack)."""
    if report.group_by == "cluster" and finding.cluster:
        return finding.cluster
    if finding.category == "input":
        return INPUT_GROUP
    return finding.pack or finding.category


GROUPINGS = ("cluster", "pack")


def standard_grouping(report: Report) -> str:
    """The standard key when the report is grouped by a standard's requirements, else ``""``."""
    return report.group_by if report.group_by and report.group_by not in GROUPINGS else ""


def requirement_group(standard: str, control_id: str, title: str) -> str:
    """The JUnit suite / Markdown row name of one requirement of a standard."""
    return f"{standard} {control_id}" + (f": {title}" if title else "")


def unmapped_group(standard: str) -> str:
    """The group of findings and rules that map to no requirement of ``standard``."""
    return f"not mapped to {standard}"


def groups_of(finding: Finding, report: Report) -> list[str]:
    """The groups a finding belongs to: ``group_of``'s one group, or, grouped by a standard,
    one per requirement of that standard the finding's rule serves (a finding that fails two
    requirements is listed under both)."""
    standard = standard_grouping(report)
    if not standard or finding.category == "input":
        return [group_of(finding, report)]
    groups = [requirement_group(standard, c.id, c.title) for c in finding.controls
              if c.standard == standard]
    return list(dict.fromkeys(groups)) or [unmapped_group(standard)]


def by_severity(findings: tuple[Finding, ...] | list[Finding]) -> list[Finding]:
    """Most severe first, then the deterministic finding order."""
    return sorted(findings, key=lambda f: (-int(f.severity), f.sort_key()))


# Finding.sort_key as one C call (a test checks they agree).
SORT_KEY = attrgetter("cluster", "location.path", "location.line", "location.column", "rule_id",
                      "resource", "message")


def most_severe(findings: Sequence[Finding], n: int) -> list[Finding]:
    """``by_severity(findings)[:n]``, without sorting every finding: only the most severe
    levels that fill the first ``n`` are ranked (a large scan has tens of thousands)."""
    per = Counter(map(attrgetter("severity"), findings))
    ranked = sorted(findings, key=attrgetter("severity"), reverse=True)  # stable
    out: list[Finding] = []
    start = 0
    for severity in sorted(per, reverse=True):
        if len(out) >= n:
            break
        out += heapq.nsmallest(n - len(out), ranked[start:start + per[severity]], key=SORT_KEY)
        start += per[severity]
    return out


def severity_counts(active: Sequence[Finding]) -> dict[str, int]:
    """``Report.counts()`` for the report's ``active`` findings, counted in one C loop."""
    per = Counter(map(attrgetter("severity"), active))
    return {s.label: per.get(s, 0) for s in sorted(Severity, reverse=True)}


def standards(report: Report, active: Sequence[Finding] | None = None) -> dict[str, int]:
    """Active findings counted per standard named in their controls (``active``: the report's,
    when the caller has it already)."""
    findings = report.active if active is None else active
    # Findings of one rule share their controls tuple: count the tuples, then their standards.
    controls = list(map(attrgetter("controls"), findings))
    per_tuple = Counter(map(id, controls))
    tuples = dict(zip(map(id, controls), controls, strict=True))
    out: dict[str, int] = {}
    for key, n in per_tuple.items():
        for std in {c.standard for c in tuples[key]}:
            out[std] = out.get(std, 0) + n
    return dict(sorted(out.items()))


ONE_LINE = json.JSONEncoder(sort_keys=True, separators=(", ", ": "), default=str).encode
"""``json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)``, prebuilt."""
_SCALAR = json.JSONEncoder(default=str).encode


class RawJSON(str):
    """Text that already is the one-line JSON of a list element (see ``dump_json``)."""


def dump_json(value: Any, one_line: frozenset[str]) -> str:
    """``json.dumps(value, indent=2, sort_keys=True, default=str) + "\\n"``, except that each
    element of a list under a key in ``one_line`` is written on one line by the C encoder
    (``ONE_LINE``), or as given when it is ``RawJSON``.

    Large reports are dominated by those lists (SARIF results, JSON findings): the pure-Python
    indenting encoder takes seconds for them, the C encoder a fraction of that, and one element
    per line keeps the file readable and line diffs meaningful.
    """
    chunks: list[str] = []
    _dump(value, one_line, 0, chunks)
    chunks.append("\n")
    return "".join(chunks)


def _dump(value: Any, one_line: frozenset[str], level: int, out: list[str]) -> None:
    pad = "\n" + "  " * (level + 1)
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        out.append("{")
        for n, key in enumerate(sorted(value)):
            item = value[key]
            out.append(("," if n else "") + pad + _SCALAR(str(key)) + ": ")
            if key in one_line and isinstance(item, (list, tuple)) and item:
                inner = ",\n" + "  " * (level + 2)
                out.append("[" + inner[1:])
                out.append(inner.join([x if isinstance(x, RawJSON) else ONE_LINE(x)
                                       for x in item]))
                out.append(pad + "]")
            else:
                _dump(item, one_line, level + 1, out)
        out.append(pad[:-2] + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        out.append("[")
        for n, item in enumerate(value):
            out.append(("," if n else "") + pad)
            _dump(item, one_line, level + 1, out)
        out.append(pad[:-2] + "]")
    else:
        out.append(_SCALAR(value))


COVERAGE_STATES = ("rendered", "followed", "not-checked")


def coverage_counts(coverage: Sequence[Coverage]) -> dict[str, int]:
    """Ledger entries per state, every state present, in ``COVERAGE_STATES`` order."""
    out = dict.fromkeys(COVERAGE_STATES, 0)
    for entry in coverage:
        out[entry.state] = out.get(entry.state, 0) + 1
    return out


def coverage_dict(entry: Coverage) -> dict[str, Any]:
    """One ledger entry as plain JSON-ready data."""
    return {"state": entry.state, "kind": entry.kind, "what": entry.what, "path": entry.path,
            "line": entry.line, "reason": entry.reason, "produced": entry.produced}


def coverage_summary(coverage: Sequence[Coverage]) -> str:
    """``2 rendered, 1 followed, 0 not checked`` (the text and Markdown summary line)."""
    return ", ".join(f"{n} {state.replace('-', ' ')}"
                     for state, n in coverage_counts(coverage).items())


def exemption_groups(items: Sequence[Exemption]) -> list[dict[str, Any]]:
    """Exemptions grouped by cluster, namespaces and source: the policies and objects skipped.

    ``skipped`` is the largest count of any policy of the group (the objects of the exempt
    namespaces that the broadest of those policies would have evaluated).
    """
    groups: dict[tuple[str, tuple[str, ...], str], list[Exemption]] = {}
    for item in sorted(items):
        groups.setdefault((item.cluster, item.namespaces, item.source), []).append(item)
    return [{"cluster": cluster, "namespaces": list(namespaces), "source": source,
             "policies": sorted(e.policy for e in members),
             "skipped": max(e.skipped for e in members)}
            for (cluster, namespaces, source), members in sorted(groups.items())]
