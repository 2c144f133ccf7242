"""Renderers of the image inventory: pure ``render(inventory) -> str`` per format."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

from checker.overview.images import ImageUse, Inventory

CSV_COLUMNS = (
    "cluster", "environment", "registry", "repository", "tag", "digest", "reference",
    "kind", "namespace", "name", "container", "container_type", "path", "line",
    "live_status", "live_image", "live_image_ids", "flags", "newest_in_environment",
    "newest_seen", "newest_in_registry", "behind_of",
)


def _short(digest: str) -> str:
    algo, _, value = digest.partition(":")
    return f"{algo}:{value[:12]}" if value else digest


def _live(use: ImageUse) -> str:
    if use.live is None:
        return ""
    if use.live.status == "different":
        return f"different: {use.live.image}"
    ids = ", ".join(_short(i) for i in use.live.image_ids)
    return f"{use.live.status}{' (' + ids + ')' if ids else ''}"


def _row(use: ImageUse, inv: Inventory) -> list[str]:
    row = [use.cluster or "-", use.environment or "-"] if len(inv.clusters) > 1 or any(
        inv.clusters) else []
    row += [use.image.name if not use.image.error else use.image.raw,
            use.image.tag or "-", _short(use.image.digest) or "-",
            f"{use.location.path}:{use.location.line}", use.resource, use.container or "-"]
    if inv.snapshot:
        row.append(_live(use) or "-")
    row.append(", ".join(use.flags) or "-")
    return row


def _header(inv: Inventory) -> list[str]:
    head = ["CLUSTER", "ENVIRONMENT"] if len(inv.clusters) > 1 or any(inv.clusters) else []
    head += ["IMAGE", "TAG", "DIGEST", "DECLARED AT", "RESOURCE", "CONTAINER"]
    if inv.snapshot:
        head.append("LIVE")
    return [*head, "FLAGS"]


def render_text(inv: Inventory) -> str:
    """An aligned table, the version matrix and the counts."""
    rows = [_header(inv), *(_row(u, inv) for u in inv.uses)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    if len(inv.environments) > 1:
        lines += ["", "Versions by environment:"]
        for row in inv.matrix:
            cells = [f"{env}={'|'.join(row.versions[env])}" for env in inv.environments
                     if env in row.versions]
            note = f"  (behind: {', '.join(row.behind)})" if row.behind else ""
            lines.append(f"  {row.image}: {'  '.join(cells)}{note}")
    counts = inv.counts()
    flagged = ", ".join(f"{counts[k]} {k}" for k in sorted(counts)
                        if k not in ("images", "uses") and counts[k])
    lines += ["", f"{counts['uses']} image uses, {counts['images']} distinct images"
              f"{'; ' + flagged if flagged else ''}"]
    lines += [f"error: {e}" for e in inv.errors]
    lines += [f"{f.location}: {f.severity.label}: {f.message}" for f in inv.input_findings]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(inv: Inventory) -> str:
    """A Markdown report: inventory table, versions by environment, counts."""
    head = _header(inv)
    out = ["# Image inventory", ""]
    counts = inv.counts()
    out += [f"{counts['uses']} image uses, {counts['images']} distinct images.", ""]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for use in inv.uses:
        cells = _row(use, inv)
        out.append("| " + " | ".join(_md(c) for c in cells) + " |")
    if len(inv.environments) > 1:
        out += ["", "## Versions by environment", ""]
        out += ["| Image | " + " | ".join(inv.environments) + " | Behind |",
                "|---|" + "---|" * len(inv.environments) + "---|"]
        for row in inv.matrix:
            cells = [", ".join(row.versions.get(env, ())) or "-" for env in inv.environments]
            out.append(f"| {_md(row.image)} | " + " | ".join(_md(c) for c in cells)
                       + f" | {_md(', '.join(row.behind)) or '-'} |")
    flagged = [(k, v) for k, v in counts.items() if k not in ("images", "uses") and v]
    if flagged:
        out += ["", "## Flags", ""] + [f"- `{k}`: {v}" for k, v in flagged]
    if inv.errors or inv.input_findings:
        out += ["", "## Errors", ""]
        out += [f"- {_md(e)}" for e in inv.errors]
        out += [f"- `{f.location}`: {_md(f.message)}" for f in inv.input_findings]
    return "\n".join(out) + "\n"


def use_json(use: ImageUse) -> dict[str, Any]:
    """The JSON object of one image use."""
    return {
        "cluster": use.cluster, "environment": use.environment,
        "image": {"reference": use.image.raw, "registry": use.image.registry,
                  "repository": use.image.repository, "tag": use.image.tag,
                  "digest": use.image.digest, "error": use.image.error},
        "resource": {"kind": use.kind, "namespace": use.namespace, "name": use.name},
        "container": use.container, "containerType": use.container_type,
        "location": {"path": use.location.path, "line": use.location.line,
                     "column": use.location.column},
        "live": None if use.live is None else {
            "status": use.live.status, "image": use.live.image,
            "imageIDs": list(use.live.image_ids)},
        "flags": list(use.flags),
        "newestInEnvironment": use.newest_in_environment,
        "newestSeen": use.newest_seen,
        "newestInRegistry": use.newest_in_registry,
        "behindOf": list(use.ahead_environments),
    }


def render_json(inv: Inventory) -> str:
    """Machine-readable inventory with sorted keys."""
    data = {
        "clusters": list(inv.clusters),
        "environments": list(inv.environments),
        "allowedRegistries": list(inv.allowed_registries),
        "images": [use_json(u) for u in inv.uses],
        "versions": [{"image": r.image, "versions": {k: list(v) for k, v in r.versions.items()},
                      "newest": r.newest, "behind": list(r.behind)} for r in inv.matrix],
        "registryTags": {k: list(v) for k, v in inv.registry_tags.items()},
        "summary": inv.counts(),
        "errors": list(inv.errors) + [f"{f.location}: {f.message}" for f in inv.input_findings],
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def render_csv(inv: Inventory) -> str:
    """One row per image use, columns in the fixed order of ``CSV_COLUMNS``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for use in inv.uses:
        live = use.live
        writer.writerow([
            use.cluster, use.environment, use.image.registry, use.image.repository,
            use.image.tag, use.image.digest, use.image.raw, use.kind, use.namespace, use.name,
            use.container, use.container_type, use.location.path, use.location.line,
            live.status if live else "", live.image if live else "",
            " ".join(live.image_ids) if live else "", " ".join(use.flags),
            use.newest_in_environment, use.newest_seen, use.newest_in_registry,
            " ".join(use.ahead_environments),
        ])
    return buffer.getvalue()


IMAGE_RENDERERS: dict[str, Callable[[Inventory], str]] = {
    "text": render_text,
    "markdown": render_markdown,
    "json": render_json,
    "csv": render_csv,
}
