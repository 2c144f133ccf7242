"""What the catalog says about its policies, as text and Markdown: ``policies list``/``show``
and the generated ``docs/policies/`` pages. Pure functions of the catalog.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from checker.policy.export import to_yaml
from checker.policy.packs import DEFAULT_PACKS, Catalog, PolicyDef, read_single_object

DOCS_DIR = Path("docs/policies")

def policy_standards(pdef: PolicyDef) -> list[str]:
    """Standards (control ``standard`` keys) a policy maps to, in first-seen order."""
    return list(dict.fromkeys(c.standard for c in pdef.rule.controls))


def policy_info(catalog: Catalog, pid: str) -> dict[str, Any]:
    """Everything about one policy as plain data (the JSON of ``policies show``)."""
    pdef = catalog.policies[pid]
    rule = pdef.rule
    constraint = read_single_object(pdef.constraint_path).body
    spec = constraint.get("spec") or {}
    root = pdef.home.parent
    return {
        "id": rule.id,
        "title": rule.title,
        "severity": rule.severity.label,
        "enabled_by_default": pdef.enabled,
        "home_pack": rule.pack,
        "packs": catalog.packs_of(pid),
        "controls": [{"standard": c.standard, "id": c.id, "title": c.title}
                     for c in rule.controls],
        "rationale": pdef.rationale,
        "remediation": pdef.remediation,
        "example": pdef.example,
        "parameters": pdef.parameters_doc,
        "default_parameters": spec.get("parameters") or {},
        "match": spec.get("match") or {},
        "constraint_kind": constraint.get("kind", ""),
        "referential": _referential(pdef),
        "template": pdef.template_path.relative_to(root).as_posix(),
        "constraint": pdef.constraint_path.relative_to(root).as_posix(),
        "tests": pdef.tests_path.relative_to(root).as_posix() if pdef.tests_path else "",
        "docs": f"docs/policies/{rule.id}.md",
    }


def _referential(pdef: PolicyDef) -> bool:
    return "data.inventory" in pdef.template_path.read_text(encoding="utf-8")


def selected_policies(catalog: Catalog, packs: Sequence[str], standard: str) -> list[str]:
    """Policy ids of the packs (all packs when none), optionally only those of one standard
    (an unknown standard is ``invalid config`` naming the known ones)."""
    if standard and catalog.standards:
        catalog.standard(standard)
    names = list(packs) or sorted(catalog.packs)
    ids = catalog.resolve(names)
    if standard:
        ids = [p for p in ids if standard in policy_standards(catalog.policies[p])]
    return ids


def render_list(catalog: Catalog, packs: Sequence[str], standard: str) -> str:
    """Text of ``policies list``: packs, then policies with severity and controls."""
    lines: list[str] = []
    names = list(packs) or sorted(catalog.packs)
    for name in names:
        pack = catalog.packs[name]
        ids = selected_policies(catalog, [name], standard)
        if standard and not ids:
            continue
        default = " [default]" if name in DEFAULT_PACKS else ""
        include = f", includes {', '.join(pack.includes)}" if pack.includes else ""
        lines.append(f"{name}{default}: {pack.title} ({pack.standard}; "
                     f"{len(ids)} policies{include})")
        for pid in ids:
            pdef = catalog.policies[pid]
            controls = [c for c in pdef.rule.controls if not standard or c.standard == standard]
            off = " (off by default)" if not pdef.enabled else ""
            lines.append(f"  {pid:<34} {pdef.rule.severity.label:<8} {pdef.rule.title}{off}")
            for c in controls:
                lines.append(f"  {'':<34} {'':<8} - {c.standard} {c.id}")
        lines.append("")
    return "\n".join(lines)


def render_list_json(catalog: Catalog, packs: Sequence[str], standard: str) -> str:
    """JSON of ``policies list --format json``: the packs, then every selected policy."""
    data = {
        "packs": [{"name": n, "title": catalog.packs[n].title,
                   "standard": catalog.packs[n].standard, "default": n in DEFAULT_PACKS,
                   "includes": catalog.packs[n].includes,
                   "policies": selected_policies(catalog, [n], standard)}
                  for n in (list(packs) or sorted(catalog.packs))],
        "policies": [policy_info(catalog, p) for p in selected_policies(catalog, packs, standard)],
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def render_show(info: Mapping[str, Any]) -> str:
    """Text of ``policies show``."""
    out = [f"{info['id']}: {info['title']}",
           f"severity:   {info['severity']}"
           + ("" if info["enabled_by_default"] else " (off by default)"),
           f"packs:      {', '.join(info['packs'])} (defined in {info['home_pack']})",
           "controls:"]
    out += [f"  - {c['standard']} {c['id']}" + (f": {c['title']}" if c["title"] else "")
            for c in info["controls"]]
    out += ["", "Why:", f"  {info['rationale']}", "", "Fix:", f"  {info['remediation']}"]
    if info["example"]:
        out += ["", "Example:"] + [f"  {line}" for line in info["example"].splitlines()]
    if info["parameters"]:
        out += ["", "Parameters:", f"  {info['parameters']}"]
    out += ["", f"Default parameters: {json.dumps(info['default_parameters'], sort_keys=True)}",
            f"Constraint kind:    {info['constraint_kind']}",
            "Referential data:   "
            + ("yes (needs the synced inventory)" if info["referential"] else "no"),
            f"Template:           {info['template']}",
            f"Constraint:         {info['constraint']}",
            f"Tests:              {info['tests']}",
            f"Docs:               {info['docs']}", ""]
    return "\n".join(out)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _kinds(match: Mapping[str, Any]) -> str:
    kinds = []
    for entry in match.get("kinds") or []:
        groups = entry.get("apiGroups") or ["*"]
        for group in groups:
            for kind in entry.get("kinds") or ["*"]:
                kinds.append(f"{group}/{kind}" if group else kind)
    return ", ".join(f"`{k}`" for k in kinds) or "all"


def render_policy_page(info: Mapping[str, Any]) -> str:
    """Markdown page of one policy, generated from its metadata."""
    out = [f"# {info['id']}: {info['title']}", "",
           "<!-- Generated by `gitops-checker policies docs` from policy-packs/*/pack.yaml. "
           "Do not edit. -->", "",
           "| | |", "|---|---|",
           f"| Severity | {info['severity']} |",
           f"| Enabled by default | {'yes' if info['enabled_by_default'] else 'no'} |",
           f"| Packs | {', '.join(f'`{p}`' for p in info['packs'])} |",
           f"| Constraint kind | `{info['constraint_kind']}` |",
           f"| Applies to | {_kinds(info['match'])} |"]
    excluded = info["match"].get("excludedNamespaces") or []
    if excluded:
        out.append(f"| Excluded namespaces | {', '.join(f'`{n}`' for n in excluded)} |")
    out.append(f"| Referential data | {'yes' if info['referential'] else 'no'} |")
    out += ["", "## Controls", "", "| Standard | Control | Title |", "|---|---|---|"]
    out += [f"| {c['standard']} | {_md_escape(c['id'])} | {_md_escape(c['title'])} |"
            for c in info["controls"]]
    out += ["", "## Why", "", info["rationale"], "", "## How to fix", "", info["remediation"]]
    if info["example"]:
        out += ["", "```yaml", info["example"], "```"]
    out += ["", "## Parameters", ""]
    out.append(info["parameters"] or "None.")
    out += ["", "Default parameters:", "", "```yaml",
            to_yaml(info["default_parameters"]).rstrip() if info["default_parameters"] else "{}",
            "```"]
    if info["referential"]:
        out += ["", "This policy reads other objects (`data.inventory`). A scan uses the scanned "
                "manifests; in a cluster, Gatekeeper must sync the kinds listed in the "
                "`sync/syncset.yaml` that `policies export` writes."]
    out += ["", "## Files", "",
            f"- Template: `policy-packs/{info['template']}`",
            f"- Constraint: `policy-packs/{info['constraint']}`",
            f"- Tests: `policy-packs/{info['tests']}`", ""]
    return "\n".join(out)


CHECK_LABELS = {"manifests": "checked", "partly": "partly checked",
                "outside": "not decidable from manifests"}


def standard_rows(catalog: Catalog, key: str) -> list[dict[str, Any]]:
    """The requirements of a standard with the policies mapped to each, in the standard's order.

    An enumerated standard gives every requirement in scope, with its ``checks`` state; for the
    others the rows are the control ids the policies name (``checks`` is ``mapped``).
    """
    std = catalog.standard(key)
    if std.enumerated:
        return [{"id": r.id, "title": r.title, "level": r.level, "checks": r.checks,
                 "note": r.note + (f" Id unverified: {r.unverified}" if r.unverified else "")
                 + (f" Id checked: {r.source}" if r.source else ""),
                 "policies": catalog.serving(key, r.id)}
                for r in std.requirements]
    seen: dict[str, dict[str, Any]] = {}
    for pid, pdef in catalog.policies.items():
        for c in pdef.rule.controls:
            if c.standard == key:
                row = seen.setdefault(c.id, {"id": c.id, "title": c.title, "level": "",
                                             "checks": "mapped", "note": "", "policies": []})
                row["title"] = row["title"] or c.title
                if pid not in row["policies"]:
                    row["policies"].append(pid)
    return sorted(seen.values(), key=lambda row: natural_order(str(row["id"])))


def natural_order(text: str) -> list[tuple[int, str]]:
    """Sort key that puts 5.1.2 before 5.1.10 and A2 before A10."""
    return [(int(part), "") if part.isdigit() else (-1, part)
            for part in re.split(r"(\d+)", text)]


def render_standard_page(catalog: Catalog, key: str) -> str:
    """Markdown page of one standard: edition, scope, each requirement and its policies."""
    std = catalog.standard(key)
    out = [f"# {std.title}", "",
           "<!-- Generated by `gitops-checker policies docs` from policy-packs/standards/. "
           "Do not edit. -->", "",
           f"- Key: `{key}` (`policies list --standard {key}`, `scan --group-by {key}`"
           + (f", `--pack {key}`" if key in catalog.packs else "") + ")",
           f"- Edition: {std.edition}"]
    if std.url:
        out.append(f"- Source: <{std.url}>")
    out += ["", std.scope, ""]
    rows = standard_rows(catalog, key)
    if std.enumerated:
        counts = {c: sum(1 for r in rows if r["checks"] == c) for c in CHECK_LABELS}
        out += [f"{len(rows)} requirements: {counts['manifests']} checked, {counts['partly']} "
                f"partly checked, {counts['outside']} not decidable from manifests. Titles and "
                "notes are ours, not the standard's text; read the standard for the requirement "
                "itself.", "",
                "| Requirement | Title | Level | Checked | Policies "
                "| What is checked, or why not |",
                "|---|---|---|---|---|---|"]
        for r in rows:
            policies = ", ".join(f"[{p}]({p}.md)" for p in r["policies"]) or "none"
            out.append(f"| {_md_escape(r['id'])} | {_md_escape(r['title'])} | "
                       f"{r['level'] or ''} | {CHECK_LABELS[r['checks']]} | {policies} | "
                       f"{_md_escape(r['note'])} |")
    else:
        out += ["The controls below are the ones the policies name; the standard's own list is "
                "not enumerated here.", "", "| Control | Title | Policies |", "|---|---|---|"]
        for r in rows:
            policies = ", ".join(f"[{p}]({p}.md)" for p in r["policies"])
            out.append(f"| {_md_escape(r['id'])} | {_md_escape(r['title'])} | {policies} |")
    out.append("")
    return "\n".join(out)


def render_docs(catalog: Catalog) -> dict[str, str]:
    """File name -> Markdown for ``docs/policies/``: one page per policy and a README index."""
    pages: dict[str, str] = {}
    index = ["# Built-in policies", "",
             "<!-- Generated by `gitops-checker policies docs`. Do not edit. -->", "",
             "See [../packs.md](../packs.md) for how packs are selected, configured and exported.",
             ""]
    for name in sorted(catalog.packs):
        pack = catalog.packs[name]
        default = " (default)" if name in DEFAULT_PACKS else ""
        index += [f"## {name}{default}: {pack.title}", "", pack.description, ""]
        if pack.includes:
            index += [f"Includes: {', '.join(f'`{i}`' for i in pack.includes)}.", ""]
        index += ["| Policy | Severity | Default | Controls |", "|---|---|---|---|"]
        for pid in catalog.resolve([name]):
            pdef = catalog.policies[pid]
            controls = "; ".join(f"{c.standard} {c.id}" for c in pdef.rule.controls)
            index.append(f"| [{pid}]({pid}.md) {_md_escape(pdef.rule.title)} | "
                         f"{pdef.rule.severity.label} | {'on' if pdef.enabled else 'off'} | "
                         f"{_md_escape(controls)} |")
        index.append("")
    if catalog.standards:
        index += ["## Standards", "",
                  "| Standard | Edition | Page |", "|---|---|---|"]
        index += [f"| {_md_escape(std.title)} | {_md_escape(std.edition)} | "
                  f"[standard-{key}.md](standard-{key}.md) |"
                  for key, std in sorted(catalog.standards.items())]
        index.append("")
    pages["README.md"] = "\n".join(index)
    for key in sorted(catalog.standards):
        pages[f"standard-{key}.md"] = render_standard_page(catalog, key)
    for pid in sorted(catalog.policies):
        pages[f"{pid}.md"] = render_policy_page(policy_info(catalog, pid))
    return pages


def out_of_date(pages: Mapping[str, str], out: Path) -> tuple[list[str], list[str]]:
    """Pages in ``out`` that differ from ``pages`` (or are missing), and pages not generated."""
    stale = [name for name, text in pages.items()
             if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text]
    extra = sorted(p.name for p in out.glob("*.md") if p.name not in pages) \
        if out.is_dir() else []
    return stale, extra


def write_pages(pages: Mapping[str, str], out: Path, root: Path = Path(".")) -> None:
    """Write ``pages`` to ``out``; earlier pages no longer generated are removed.

    Inside ``root`` nothing is written or removed through a symlink that leads out of it
    (``workspace.Refused``).
    """
    from checker.load import workspace

    for name in pages:
        workspace.output_path(out / name, root)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.md"):
        if old.name not in pages and not old.is_symlink():
            old.unlink()
    for name, text in pages.items():
        workspace.write_text(out / name, text, root)
