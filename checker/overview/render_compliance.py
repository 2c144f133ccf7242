"""Renderers of the compliance matrix: pure ``render(matrix) -> str`` per format."""

from __future__ import annotations

import json
from collections.abc import Callable

from checker.overview.compliance import Cell, Matrix, as_json
from checker.report.common import exemption_groups

SYMBOL = {"deny": "deny", "warn": "warn", "dryrun": "DRYRUN", "missing": "MISSING"}


def cell_text(cell: Cell) -> str:
    """``deny 2/1`` (violations/accepted), plus ``live=...`` with a snapshot."""
    out = SYMBOL[cell.status]
    if cell.status != "missing":
        out += f" {cell.violations}/{cell.accepted}"
    if cell.live:
        out += f" live={cell.live}"
    return out


def _title(cluster: str, matrix: Matrix) -> str:
    env = matrix.environments.get(cluster, "")
    name = cluster or "(default)"
    return f"{name} ({env})" if env and env != cluster else name


def render_text(matrix: Matrix) -> str:
    """An aligned table: one line per pack policy, one column per cluster."""
    head = ["PACK", "POLICY", *(_title(c, matrix) for c in matrix.clusters), "FLAGS"]
    rows = [head]
    for row in matrix.rows:
        rows.append([row.pack, row.policy, *(cell_text(row.cells[c]) for c in matrix.clusters),
                     "; ".join(row.flags) or "-"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.append("")
    for pack in matrix.packs():
        cells = ", ".join(f"{_title(c, matrix)} {pack['cells'][c]['status']} "
                          f"({pack['cells'][c]['enforcing']}/{pack['policies']})"
                          for c in matrix.clusters)
        lines.append(f"pack {pack['pack']}: {cells}")
    lines.append("")
    for std in matrix.standards():
        lines.append(f"standard {std['standard']}: " + standard_summary(std, matrix))
    lines += ["", "Cells: enforcement action, violations/accepted risks"
              + (", live enforcement from the snapshot" if matrix.snapshots else "") + "."]
    totals = matrix.totals()
    for cluster in matrix.clusters:
        t = totals[cluster]
        lines.append(f"{_title(cluster, matrix)}: {t['active']} deny, {t['warn']} warn, "
                     f"{t['dryrun']} dryrun, {t['missing']} missing; {t['violations']} "
                     f"violations, {t['accepted']} accepted")
    lines.append(f"{len(matrix.gaps())} policies with gaps")
    for g in exemption_groups(matrix.exemptions):
        lines.append(f"{_title(g['cluster'], matrix)}: namespaces {', '.join(g['namespaces'])} "
                     f"exempt from {len(g['policies'])} policies ({g['skipped']} objects "
                     f"skipped; set by {g['source']}): {', '.join(g['policies'])}")
    lines += [f"error: {e}" for e in matrix.errors]
    return "\n".join(lines) + "\n"


def standard_summary(std: dict[str, object], matrix: Matrix) -> str:
    """``prod 5/8 enforced (2 partly), ...; 13 of 21 not decidable from manifests``."""
    cells = std["cells"]
    assert isinstance(cells, dict)
    decidable = int(str(std["requirements"])) - int(str(std["outside"]))
    parts = []
    for c in matrix.clusters:
        slot = cells[c]
        covered = slot["complete"] + slot["partial"]
        parts.append(f"{_title(c, matrix)} {covered}/{decidable} enforced"
                     + (f" ({slot['partial']} partly)" if slot["partial"] else ""))
    tail = (f"; {std['outside']} of {std['requirements']} not decidable from manifests"
            if std["enumerated"] else "; controls as mapped (the standard is not enumerated)")
    return ", ".join(parts) + tail


REQUIREMENT_CELL = {"complete": "✅", "partial": "⚠️ some", "missing": "❌ MISSING",
                    "outside": "not decidable"}


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(matrix: Matrix) -> str:
    """A Markdown matrix grouped by standard, with a per-cluster summary."""
    names = [_title(c, matrix) for c in matrix.clusters]
    out = ["# Compliance matrix", "",
           "Cells: enforcement action (`deny`, `warn`, `DRYRUN`, `MISSING`), then "
           "violations/accepted risks" + ("; `live=` the enforcement action of the live "
                                          "Constraint, or `absent`" if matrix.snapshots else "")
           + ".", ""]
    out += ["| Cluster | Deny | Warn | Dryrun | Missing | Violations | Accepted |",
            "|---|---|---|---|---|---|---|"]
    totals = matrix.totals()
    for cluster, name in zip(matrix.clusters, names, strict=True):
        t = totals[cluster]
        out.append(f"| {_md(name)} | {t['active']} | {t['warn']} | {t['dryrun']} | "
                   f"{t['missing']} | {t['violations']} | {t['accepted']} |")
    out += ["", "## Packs", "",
            "| Standard | Pack | " + " | ".join(_md(n) for n in names) + " |",
            "|---|---|" + "---|" * len(names)]
    for pack in matrix.packs():
        summary = [f"{pack['cells'][c]['status']} ({pack['cells'][c]['enforcing']}/"
                   f"{pack['policies']})" for c in matrix.clusters]
        out.append(f"| {_md(pack['standard'])} | `{pack['pack']}` | " + " | ".join(summary)
                   + " |")
    standard = None
    for row in matrix.rows:
        if (row.standard, row.pack) != standard:
            standard = (row.standard, row.pack)
            out += ["", f"## {_md(row.standard)} — `{row.pack}`", "",
                    "| Policy | " + " | ".join(_md(n) for n in names) + " | Flags |",
                    "|---|" + "---|" * len(names) + "---|"]
        cells = " | ".join(_md(cell_text(row.cells[c])) for c in matrix.clusters)
        flags = "⚠️ " + _md("; ".join(row.flags)) if row.flags else "-"
        out.append(f"| `{_md(row.policy)}` {_md(row.title)} | {cells} | {flags} |")
    out += _md_standards(matrix, names)
    groups = exemption_groups(matrix.exemptions)
    if groups:
        out += ["", "## Exempt namespaces", "",
                "| Cluster | Namespaces | Policies | Objects skipped | Set by |",
                "|---|---|---|---|---|"]
        out += [f"| {_md(_title(g['cluster'], matrix))} | "
                + ", ".join(f"`{_md(n)}`" for n in g["namespaces"])
                + f" | {len(g['policies'])}: " + ", ".join(f"`{_md(p)}`" for p in g["policies"])
                + f" | {g['skipped']} | {_md(g['source'])} |" for g in groups]
    if matrix.errors:
        out += ["", "## Errors", ""] + [f"- {_md(e)}" for e in matrix.errors]
    return "\n".join(out) + "\n"


def _md_standards(matrix: Matrix, names: list[str]) -> list[str]:
    """``## Coverage per standard``: a summary, then every requirement of each enumerated
    standard with its policies and, per cluster, whether they enforce it."""
    summaries = matrix.standards()
    if not summaries:
        return []
    out = ["", "## Coverage per standard", "",
           "A requirement is enforced in a cluster when the policies serving it run there with "
           "deny or warn (✅ all of them, ⚠️ some, then violations/accepted risks). \"Checked\" "
           "says how far manifests decide the requirement; those they cannot decide are never "
           "counted as covered.", "",
           "| Standard | " + " | ".join(_md(n) for n in names) + " | Not decidable |",
           "|---|" + "---|" * len(names) + "---|"]
    for std in summaries:
        cells = std["cells"]
        decidable = std["requirements"] - std["outside"]
        row = [f"{cells[c]['complete'] + cells[c]['partial']}/{decidable}"
               + (f" ({cells[c]['partial']} partly)" if cells[c]["partial"] else "")
               for c in matrix.clusters]
        outside = (f"{std['outside']} of {std['requirements']}" if std["enumerated"]
                   else "not enumerated")
        out.append(f"| `{_md(std['standard'])}` | " + " | ".join(row) + f" | {outside} |")
    for std in summaries:
        if not std["enumerated"]:
            continue
        out += ["", f"### `{_md(std['standard'])}`", "",
                "| Requirement | Checked | Policies | " + " | ".join(_md(n) for n in names)
                + " |", "|---|---|---|" + "---|" * len(names)]
        for req in matrix.requirements:
            if req.standard != std["standard"]:
                continue
            cells = " | ".join(
                REQUIREMENT_CELL[req.cells[c].status]
                + (f" {req.cells[c].violations}/{req.cells[c].accepted}"
                   if req.cells[c].status in ("complete", "partial") else "")
                for c in matrix.clusters)
            policies = ", ".join(f"`{p}`" for p in req.policies) or "-"
            out.append(f"| {_md(req.id)} {_md(req.title)} | {req.checks} | {policies} | "
                       f"{cells} |")
    return out


def render_json(matrix: Matrix) -> str:
    """The matrix as JSON with sorted keys."""
    return json.dumps(as_json(matrix), indent=2, sort_keys=True) + "\n"


COMPLIANCE_RENDERERS: dict[str, Callable[[Matrix], str]] = {
    "text": render_text,
    "markdown": render_markdown,
    "json": render_json,
}
