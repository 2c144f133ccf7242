"""Renderers of the audit trail: pure ``render(trail) -> str`` for Markdown and JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from checker.overview.audit import AuditTrail, Commit, ObjectChange
from checker.overview.guardrails import violations


def _change_json(change: ObjectChange) -> dict[str, Any]:
    return {"change": change.change, "apiVersion": change.api_version, "kind": change.kind,
            "namespace": change.namespace, "name": change.name, "path": change.path,
            "oldPath": change.old_path, "fields": list(change.fields)}


def _commit_json(commit: Commit) -> dict[str, Any]:
    return {
        "sha": commit.sha, "parents": list(commit.parents),
        "author": {"name": commit.author_name, "email": commit.author_email,
                   "date": commit.author_date},
        "committer": {"name": commit.committer_name, "email": commit.committer_email,
                      "date": commit.committer_date},
        "signature": {"status": commit.signature, "signer": commit.signer},
        "subject": commit.subject, "message": commit.message,
        "changes": [_change_json(c) for c in commit.changes],
    }


def summary(trail: AuditTrail) -> dict[str, int]:
    """Counts of commits and of object changes by type."""
    out = {"commits": len(trail.commits), "added": 0, "modified": 0, "removed": 0,
           "unreadable": 0}
    for commit in trail.commits:
        for change in commit.changes:
            out[change.change] += 1
    return out


def render_json(trail: AuditTrail) -> str:
    """The audit trail as JSON with sorted keys."""
    f = trail.filters
    data = {
        "revision": trail.revision, "paths": list(trail.paths),
        "firstParent": trail.first_parent,
        "filters": {"kinds": list(f.kinds), "namespaces": list(f.namespaces),
                    "names": list(f.names), "changes": list(f.changes),
                    "authors": list(f.authors), "since": f.since, "until": f.until},
        "commits": [_commit_json(c) for c in trail.commits],
        "summary": summary(trail),
        "guardrails": dict(trail.guardrails),
        "violations": violations(trail),
        "problems": list(trail.problems),
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _unreadable(counts: dict[str, int]) -> str:
    n = counts["unreadable"]
    return f", {n} file version{'' if n == 1 else 's'} unreadable" if n else ""


def render_markdown(trail: AuditTrail) -> str:
    """The audit trail as a Markdown report: one section per commit, newest first."""
    counts = summary(trail)
    out = ["# Audit trail", "",
           f"{counts['commits']} {'commit' if counts['commits'] == 1 else 'commits'} changed "
           f"Kubernetes objects in `{trail.revision}`: "
           f"{counts['added']} added, {counts['modified']} modified, {counts['removed']} "
           f"removed{_unreadable(counts)}.", ""]
    out += [f"> **Incomplete:** {_md(problem)}" for problem in trail.problems]
    out += [""] if trail.problems else []
    for commit in trail.commits:
        out += [f"## `{commit.sha[:12]}` {_md(commit.subject)}", "",
                f"- Author: {_md(commit.author_name)} <{commit.author_email}>, "
                f"{commit.author_date}",
                f"- Committer: {_md(commit.committer_name)} <{commit.committer_email}>, "
                f"{commit.committer_date}",
                f"- Signature: {commit.signature}"
                f"{' (' + _md(commit.signer) + ')' if commit.signer else ''}", "",
                "| Change | Kind | Namespace | Name | File | Fields |",
                "|---|---|---|---|---|---|"]
        for change in commit.changes:
            where = (f"{change.old_path} → {change.path}" if change.old_path else change.path)
            fields = ", ".join(f"`{x}`" for x in change.fields) or "-"
            out.append(f"| {change.change} | {change.kind or '-'} | {change.namespace or '-'} | "
                       f"{_md(change.name)} | `{_md(where)}` | {_md(fields)} |")
        out.append("")
    if trail.guardrails:
        out += ["## Guardrails", ""]
        failures = violations(trail)
        out += [f"- ❌ {_md(x)}" for x in failures] or ["- ✅ all checked guardrails hold"]
        g = trail.guardrails
        for item in (g.get("signatures") or {}).get("unsigned", []):
            out.append(f"  - `{item['sha'][:12]}` {item['signature']}: {_md(item['author'])} "
                       f"— {_md(item['subject'])}")
        for item in (g.get("codeowners") or {}).get("uncovered", []):
            out.append(f"  - `{item['path']}` has no code owner")
        out.append("")
    return "\n".join(out)


AUDIT_RENDERERS: dict[str, Callable[[AuditTrail], str]] = {
    "markdown": render_markdown,
    "json": render_json,
}
