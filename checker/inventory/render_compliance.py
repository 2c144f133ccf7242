"""Renderers of the compliance matrix: pure ``render(matrix) -> str`` per format."""

from __future__ import annotations

import json
from collections.abc import Callable

from checker.inventory.compliance import Cell, Matrix, as_json

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
    lines += ["", "Cells: enforcement action, violations/accepted risks"
              + (", live enforcement from the snapshot" if matrix.snapshots else "") + "."]
    totals = matrix.totals()
    for cluster in matrix.clusters:
        t = totals[cluster]
        lines.append(f"{_title(cluster, matrix)}: {t['active']} deny, {t['warn']} warn, "
                     f"{t['dryrun']} dryrun, {t['missing']} missing; {t['violations']} "
                     f"violations, {t['accepted']} accepted")
    lines.append(f"{len(matrix.gaps())} policies with gaps")
    lines += [f"error: {e}" for e in matrix.errors]
    return "\n".join(lines) + "\n"


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
    if matrix.errors:
        out += ["", "## Errors", ""] + [f"- {_md(e)}" for e in matrix.errors]
    return "\n".join(out) + "\n"


def render_json(matrix: Matrix) -> str:
    """The matrix as JSON with sorted keys."""
    return json.dumps(as_json(matrix), indent=2, sort_keys=True) + "\n"


COMPLIANCE_RENDERERS: dict[str, Callable[[Matrix], str]] = {
    "text": render_text,
    "markdown": render_markdown,
    "json": render_json,
}
