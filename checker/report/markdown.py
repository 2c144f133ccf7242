"""Markdown for pull-request reviewers and the GitHub job summary."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace
from operator import attrgetter

from checker import selection
from checker.model import Finding, ImpactEntry, Report, Selection
from checker.report import impact as impact_section
from checker.report.common import (
    coverage_summary,
    delta_line,
    exemption_groups,
    groups_of,
    markdown_code,
    markdown_link,
    markdown_text,
    requirement_group,
    severity_counts,
    standard_grouping,
    standards,
)

ICON = {"error": "🔴", "warning": "🟠", "note": "🔵"}
CELL_MAX = 500  # characters of one table cell: a longer text ends in "…"
FULL_REPORT = ("the JSON report has them all (`--json FILE`; the Action's `json-file`, kept "
               "with the run as an artifact)")


def _cell(text: str) -> str:
    """Repository text in a cell or line: literal, never markup (``markdown_text``), at most
    ``CELL_MAX`` characters of it."""
    if len(text) > CELL_MAX:
        text = text[:CELL_MAX - 1] + "…"
    return markdown_text(text)


def _cap(report: Report, table: str) -> int:
    """The most rows ``table`` shows (the assemble stage's choice; its default otherwise)."""
    return report.caps.get(table) or selection.SUMMARY_CAPS[table]


def _parts(report: Report, key: str) -> tuple[Selection, ...]:
    """The findings a summary table shows, as the assemble stage chose them (a report built
    by hand: chosen here the same way, with the default caps)."""
    chosen = report.selections.get(key)
    if chosen is None:
        chosen = selection.markdown_selection(report).get(key, ())
    return chosen


def _more(n: int, what: str = "") -> list[str]:
    """The "and N more" line under a capped table (nothing when nothing was left out)."""
    if n <= 0:
        return []
    return ["", f"…and {n} more{' ' + what if what else ''} not shown here: {FULL_REPORT}."]


def _where(f: Finding, report: Report) -> str:
    label = f"{f.location.path}:{f.location.line}"
    if report.link_base:
        return markdown_link(label, report.link_base, f.location.path, f.location.line)
    return markdown_code(label)


def _located(e: ImpactEntry, report: Report) -> str:
    label = f"{e.location.path}:{e.location.line}"
    if report.link_base:
        return markdown_link(label, report.link_base, e.location.path, e.location.line)
    return markdown_text(label)


def _table(findings: list[Finding], report: Report, accepted: bool = False) -> list[str]:
    if accepted:
        out = ["| Rule | Resource | Where | Owner | Expires | Justification |",
               "| --- | --- | --- | --- | --- | --- |"]
        for f in findings:
            s = f.suppression
            assert s is not None
            out.append(f"| {_code(f.rule_id)} | {_cell(f.resource)} | {_where(f, report)} | "
                       f"{_cell(s.owner)} | {_cell(s.expires or 'never')} | "
                       f"{_cell(s.justification)} |")
        return out
    out = ["| Severity | Rule | Message | Resource | Where |",
           "| --- | --- | --- | --- | --- |"]
    for f in findings:
        out.append(f"| {ICON[f.severity.label]} {f.severity.label} | {_code(f.rule_id)} | "
                   f"{_cell(f.message)} | {_cell(f.resource)} | {_where(f, report)} |")
    return out


def _clusters(report: Report, active: tuple[Finding, ...],
              suppressed: tuple[Finding, ...]) -> list[str]:
    """Counts per cluster, then one section per cluster with its failing findings."""
    labels = list(severity_counts(()))
    out = ["### By cluster", "", "| Cluster | " + " | ".join(
        f"{ICON[label]} {label}" for label in labels) + " | accepted |",
        "| --- |" + " ---: |" * (len(labels) + 1)]
    parts = _parts(report, "markdown-cluster")
    shown = [p.run for p in parts]
    per_cluster: dict[str, list[Finding]] = {c: [] for c in shown}
    for f in active:
        if f.cluster in per_cluster:
            per_cluster[f.cluster].append(f)
    accepted = Counter(f.cluster for f in suppressed)
    for cluster in shown:
        counts = severity_counts(per_cluster[cluster]).values()
        out.append(f"| {_cell(cluster)} | " + " | ".join(str(n) for n in counts)
                   + f" | {accepted.get(cluster, 0)} |")
    out += _more(len(report.clusters) - len(shown), "clusters")
    out.append("")
    for part in parts:
        out += [f"### Cluster {_cell(part.run)}", ""]
        if not part.total:
            out += ["✅ No findings.", ""]
            continue
        out += _table(list(part.kept), report)
        out += _more(part.total - len(part.kept), "findings of this cluster")
        out.append("")
    return out


def _requirements(report: Report, active: tuple[Finding, ...]) -> list[str]:
    """Grouped by a standard: one row per requirement the selected rules serve, with the
    rules, the active findings and the most severe level; then findings mapped to none."""
    standard = standard_grouping(report)
    rows: dict[str, list[str]] = {}
    for rule in sorted(report.rules.values(), key=lambda r: r.id):
        for c in rule.controls:
            if c.standard == standard:
                rows.setdefault(requirement_group(standard, c.id, c.title), [])
                if rule.id not in rows[requirement_group(standard, c.id, c.title)]:
                    rows[requirement_group(standard, c.id, c.title)].append(rule.id)
    found: dict[str, list[Finding]] = {}
    for f in active:
        for group in groups_of(f, report):
            found.setdefault(group, []).append(f)
    out = [f"### By {_cell(standard)} requirement", "",
           "| Requirement | Policies | Findings | Worst |", "| --- | --- | ---: | --- |"]
    others = [g for g in found if g not in rows]
    cap = _cap(report, "requirements")
    ordered = [*sorted(rows, key=_requirement_order), *sorted(others)]
    for group in ordered[:cap]:
        if group not in rows:
            out.append(f"| {_cell(group)} | | {len(found[group])} | |")
            continue
        mine = found.get(group, [])
        worst = max((f.severity for f in mine), default=None)
        out.append(f"| {_cell(group.removeprefix(standard + ' '))} | "
                   + ", ".join(_code(r) for r in rows[group]) + f" | {len(mine)} | "
                   + (f"{ICON[worst.label]} {worst.label}" if worst else "✅") + " |")
    out += _more(len(ordered) - cap, "requirements")
    out += ["", f"Requirements of {_cell(standard)} that no selected policy serves are not "
            "listed; `gitops-checker compliance` shows every requirement and whether manifests "
            "can decide it.", ""]
    return out


def _requirement_order(group: str) -> list[object]:
    """APP.4.4.A2 before APP.4.4.A10; 4.1.2 before 4.1.10."""
    return [int(part) if part.isdigit() else part
            for part in re.split(r"(\d+)", group.partition(":")[0])]


def render(report: Report) -> str:
    """Summary counts, counts by standard, the top findings, accepted risks and errors."""
    active, suppressed = report.active, report.suppressed
    counts = severity_counts(active)
    failing = sum(counts.values())
    lines = ["## gitops-checker", ""]
    # the headline of a pull request that changes policies: what the change does
    lines += impact_section.markdown(report, markdown_text, lambda e: _located(e, report))
    verdict = "✅ No findings." if failing == 0 and not report.errors else (
        f"❌ {failing} finding{'s' if failing != 1 else ''}.")
    if report.base and report.gate == "new" and not report.errors:  # gated on the new ones
        new = len(report.new)
        unread = any(f.category == "input" and f.severity.label == "error"
                     for f in report.active)  # fails whatever the gate
        verdict = (f"✅ No new findings ({failing} existing)." if new == 0 and not unread else
                   f"❌ {new} new finding{'s' if new != 1 else ''} ({failing} in all).")
    lines += [f"{verdict} Checked {report.resources_checked} resources in "
              f"{report.files_checked} files"
              + (f" with packs {_cell(', '.join(report.packs))}." if report.packs else "."),
              ""]
    if report.engines:
        lines += ["Rego engine: " + "; ".join(_cell(e) for e in report.engines) + ".", ""]
    if report.base:
        lines += delta_section(report)
    lines += ["| Severity | Count |", "| --- | ---: |"]
    lines += [f"| {ICON[label]} {label} | {n} |" for label, n in counts.items()]
    if suppressed:
        lines.append(f"| accepted risk | {len(suppressed)} |")
    lines.append("")
    per_standard = standards(report, active)
    if per_standard:
        lines += ["### By standard", "", "| Standard | Findings |", "| --- | ---: |"]
        lines += [f"| {_cell(std)} | {n} |" for std, n in per_standard.items()]
        lines.append("")
    if report.group_by == "cluster" and report.clusters:
        lines += _clusters(report, active, suppressed)
    if standard_grouping(report):
        lines += _requirements(report, active)
    if active:
        (top,) = _parts(report, "markdown-top")
        lines += [f"### Top findings ({len(top.kept)} of {top.total})", ""]
        if top.total < len(active):
            lines += [f"{len(active)} findings at {top.total} source locations: a line that "
                      "renders into several objects (overlays) is one row naming them.", ""]
        lines += _table(list(top.kept), report)
        lines += _more(top.total - len(top.kept), "findings")
        lines.append("")
    if suppressed:
        (shown,) = _parts(report, "markdown-accepted")
        lines += ["### Accepted risks", ""]
        lines += _table(list(shown.kept), report, accepted=True)
        lines += _more(shown.total - len(shown.kept), "accepted risks")
        lines.append("")
    lines += annotations_section(report)
    lines += drift_section(report, active)
    lines += coverage_section(report)
    lines += exemptions_section(report)
    if report.errors:
        lines += ["### Errors", ""]
        cap = _cap(report, "errors")
        lines += [f"- {_cell(e)}" for e in report.errors[:cap]]
        lines += _more(len(report.errors) - cap, "errors")
        lines.append("")
    return "\n".join(lines)


def delta_section(report: Report) -> list[str]:
    """The delta against the base, first: what the change brings, then what it fixes (the
    rows the assemble stage chose: ``markdown-new``, ``markdown-fixed``)."""
    (new,) = _parts(report, "markdown-new")
    lines = [f"{_cell(delta_line(report))}", "",
             f"### New in this change ({len(new.kept)} of {new.total})", ""]
    lines += _table(list(new.kept), report) if new.total else ["✅ No new findings."]
    lines += _more(new.total - len(new.kept), "new findings")
    lines.append("")
    (fixed,) = _parts(report, "markdown-fixed")
    if fixed.total:
        lines += [f"### Fixed by this change ({len(fixed.kept)} of {fixed.total})", "",
                  "As they were at the base:", ""]
        # no links: the head commit's file need not have those lines any more
        lines += _table(list(fixed.kept), replace(report, link_base=""))
        lines += _more(fixed.total - len(fixed.kept), "fixed findings")
        lines.append("")
    return lines


def annotations_section(report: Report) -> list[str]:
    """``### Annotations``: how many were written, how many on changed lines, what did not fit.

    GitHub drops annotations past its per-step limits without a word, so the summary names
    the findings that were not annotated (those the assemble stage lists, then a count), in
    the order the Action would have annotated them.
    """
    chosen = report.annotations
    if chosen is None:
        return []
    lines = ["### Annotations", ""]
    said = f"{len(chosen.kept)} finding{'s' if len(chosen.kept) != 1 else ''} annotated"
    if chosen.base:
        said += (f", {chosen.on_changed_lines} on the {chosen.changed_lines} lines this pull "
                 f"request changed (against {markdown_code(chosen.base[:12])})")
    lines += [said + ".", ""]
    if chosen.note:
        lines += [f"⚠️ {_cell(chosen.note[:1].upper() + chosen.note[1:])}.", ""]
    left = chosen.left_out
    if not left:
        return lines
    counts = severity_counts(left)
    new = sum(1 for f in left if f.baseline == "new")
    lines += [f"{len(left)} more did not fit: GitHub shows {chosen.per_kind} annotations of "
              f"each kind (error, warning, notice) per step and 50 per job, and this step "
              f"writes at most {chosen.limit}. Not annotated: "
              + ", ".join(f"{n} {label}" for label, n in counts.items() if n)
              + (f" ({new} new)" if new else "") + ".", ""]
    lines += _table(list(chosen.listed), report)
    lines += _more(len(left) - len(chosen.listed))
    lines.append("")
    return lines

_STATE = {"rendered": "rendered", "followed": "followed", "not-checked": "⚠️ not checked"}


def coverage_section(report: Report) -> list[str]:
    """``### Inputs``: what the load rendered, followed and did not check (and why).

    Not-checked entries come first; at most the ``coverage`` cap of rows, the rest counted.
    """
    if not report.coverage:
        return []
    entries = sorted(report.coverage, key=lambda c: (c.state != "not-checked", c))
    lines = ["### Inputs", "", f"{coverage_summary(report.coverage)}.", "",
             "| State | Kind | Input | Where | Objects, source or reason |",
             "| --- | --- | --- | --- | --- |"]
    cap = _cap(report, "coverage")
    for c in entries[:cap]:
        where = markdown_code(f"{c.path}:{c.line}")
        if report.link_base:
            where = markdown_link(f"{c.path}:{c.line}", report.link_base, c.path, c.line)
        outcome = str(c.produced) if c.state == "rendered" else _cell(c.reason)
        lines.append(f"| {_STATE.get(c.state, c.state)} | {_cell(c.kind)} | {_cell(c.what)} | "
                     f"{where} | {outcome} |")
    lines += _more(len(entries) - cap, "inputs")
    lines.append("")
    return lines


def _code(text: str) -> str:
    return markdown_code(text)


LIST_MAX = 20  # names listed in one cell; the rest are counted


def _listed(names: list[str]) -> str:
    more = len(names) - LIST_MAX
    return ", ".join(_code(n) for n in names[:LIST_MAX]) + (f" and {more} more" if more > 0
                                                            else "")


def exemptions_section(report: Report) -> list[str]:
    """``### Exempt namespaces``: which namespaces which policies skipped, set where."""
    groups = exemption_groups(report.exemptions)
    if not groups:
        return []
    named = any(g["cluster"] for g in groups)
    head = "| Cluster | Namespaces | Policies | Objects skipped | Set by |" if named else (
        "| Namespaces | Policies | Objects skipped | Set by |")
    lines = ["### Exempt namespaces", "",
             "These namespaces are not checked by the policies listed (Constraint "
             "`excludedNamespaces`; override with `excludedNamespaces` in "
             "`.gitops-checker.yaml`).", "", head,
             "| --- | --- | --- | ---: | --- |" if named else "| --- | --- | ---: | --- |"]
    cap = _cap(report, "exemptions")
    for g in groups[:cap]:
        cells = [_listed(g["namespaces"]), f"{len(g['policies'])}: " + _listed(g["policies"]),
                 str(g["skipped"]), _cell(g["source"])]
        if named:
            cells.insert(0, _cell(g["cluster"] or "(default)"))
        lines.append("| " + " | ".join(cells) + " |")
    lines += _more(len(groups) - cap, "exemption groups")
    lines.append("")
    return lines


def _value(value: object) -> str:
    if value is None:
        return "_absent_"
    text = json.dumps(value, sort_keys=True, default=str)
    return _code(text if len(text) <= 80 else text[:77] + "...")


def drift_section(report: Report, active: tuple[Finding, ...] | None = None) -> list[str]:
    """``### Drift``: coverage, then one row per drifted field with its Git and live value.

    Reads only the report: ``details`` before/after (Secret values are already masked) and
    the optional ``drift_summary`` of a drift report (``active``: the report's, when the
    caller has it already).
    """
    findings = report.active if active is None else active
    drifts = ([f for f in findings if f.category == "drift"]
              if "drift" in set(map(attrgetter("category"), findings)) else [])
    summary = report.drift_summary
    if not drifts and not summary:
        return []
    lines = ["### Drift", ""]
    if summary:
        unchecked = int(summary.get("notCompared", 0) or 0)
        total = int(summary.get("managed", 0) or 0) + unchecked
        lines += [f"{summary.get('inSync', 0)} of {total} managed objects "
                  f"in sync ({summary.get('coverage', 100.0)}% coverage)."
                  + (f" {unchecked} not checked: their kind was not read." if unchecked
                     else ""), ""]
        if summary.get("secretValuesCompared") is False:
            lines += ["Secret values were hashed with a key this run does not hold: only "
                      "Secret key names were compared.", ""]
        if summary.get("notSearched"):
            lines += [f"Not searched for unmanaged objects (no access): "
                      f"{_cell(', '.join(summary['notSearched']))}.", ""]
    if not drifts:
        return [*lines, "No drift.", ""]
    lines += ["| Resource | Field | Git | Cluster | Where |", "| --- | --- | --- | --- | --- |"]
    (shown,) = _parts(report, "markdown-drift")
    for f in shown.kept:
        change = str(f.details.get("change", ""))
        before, after = _value(f.details.get("before")), _value(f.details.get("after"))
        field_name = _code(str(f.details.get('field') or '(object)'))
        if change == "missing":
            before = "declared"
        elif change == "unmanaged":
            after = "exists"
        elif change == "policy-violation":
            policy = f"policy {_code(str(f.details.get('policy', '')))}"
            if "after" in f.details:
                field_name = f"{field_name}, violates {policy}"
            else:
                field_name, before, after = policy, "complies", _cell(f.message)
        elif f.details.get("field") is None:
            before, after = "", _cell(f.message)
        lines.append(f"| {_cell(f.resource)} | {field_name} | {before} | {after} | "
                     f"{_where(f, report)} |")
    lines += _more(shown.total - len(shown.kept), "drifted fields")
    lines.append("")
    return lines
