"""Repository guardrails a regulated setup needs, checked from the repository itself.

* signed commits: every commit in ``base..head`` carries a good signature (``%G?`` = ``G``);
* immutable history: ``base`` is still an ancestor of ``head`` (nothing was force-pushed away);
* CODEOWNERS coverage: every manifest file has an owner, with GitHub's CODEOWNERS semantics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from checker.errors import EXIT_FINDINGS, EXIT_OK, InputError
from checker.overview.audit import (
    AuditOptions,
    AuditTrail,
    Progress,
    audit,
    is_manifest,
    parse_manifest,
    read_commits,
)
from checker.overview.git import Git

CODEOWNERS_LOCATIONS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")


def unsigned_commits(git: Git, base: str, head: str) -> list[dict[str, str]]:
    """Commits in ``base..head`` (or all of ``head``) without a good signature."""
    revision = f"{base}..{head}" if base else head
    return [
        {"sha": c.sha, "author": f"{c.author_name} <{c.author_email}>", "date": c.author_date,
         "signature": c.signature, "subject": c.subject}
        for c in read_commits(git, revision) if c.signature != "good"
    ]


def history_check(git: Git, base: str, head: str) -> dict[str, Any]:
    """Whether ``head`` still contains ``base`` (history was not rewritten)."""
    exists = git.call("cat-file", "-e", f"{base}^{{commit}}").returncode == 0
    if not exists:
        return {"base": base, "head": head, "rewritten": True,
                "reason": f"base commit {base} is not in the repository (rewritten away, or "
                          "not fetched: fetch full history)"}
    head_sha = git.run("rev-parse", "--verify", f"{head}^{{commit}}").strip()
    base_sha = git.run("rev-parse", "--verify", f"{base}^{{commit}}").strip()
    code = git.call("merge-base", "--is-ancestor", base_sha, head_sha).returncode
    if code not in (0, 1):
        raise InputError(f"git merge-base --is-ancestor {base} {head} failed")
    return {"base": base_sha, "head": head_sha, "rewritten": code == 1,
            "reason": "" if code == 0 else f"{base_sha[:12]} is not an ancestor of "
                                             f"{head_sha[:12]}: history was rewritten"}


# --- CODEOWNERS -----------------------------------------------------------------------------

@dataclass(frozen=True)
class OwnerRule:
    """One CODEOWNERS line: a pattern, its owners (possibly none) and its line number."""

    pattern: str
    owners: tuple[str, ...]
    line: int
    regex: re.Pattern[str]


def _translate(pattern: str) -> re.Pattern[str]:
    """A CODEOWNERS pattern as a regex over repository-relative paths.

    gitignore rules as GitHub applies them: a leading ``/`` or a ``/`` inside the pattern
    anchors it at the root, otherwise it matches at any depth; a trailing ``/`` (or a directory
    match) covers everything below; ``*`` and ``?`` stay within one path segment; ``**``
    spans segments. ``!`` negation and ``[ ]`` ranges are not supported by GitHub.
    """
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    out = []
    i = 0
    while i < len(body):
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif body.startswith("/**", i) and i + 3 == len(body):
            out.append("/.*")
            i += 3
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif body[i] == "*":
            out.append("[^/]*")
            i += 1
        elif body[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(body[i]))
            i += 1
    prefix = "^" if anchored else "^(?:.*/)?"
    # A match may be the file itself or a directory containing it, except that a final
    # single-star segment (``docs/*``) matches only direct children, as GitHub documents.
    last = body.rsplit("/", 1)[-1]
    below = "" if last.endswith("*") and not last.endswith("**") else "(?:/.*)?"
    return re.compile(prefix + "".join(out) + below + "$")


def parse_codeowners(text: str) -> list[OwnerRule]:
    """Rules in file order (the last matching rule wins)."""
    rules = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split("#", 1)[0].split() if " #" in line else line.split()
        if not parts:
            continue
        pattern, owners = parts[0], tuple(parts[1:])
        if pattern.startswith("!") or "[" in pattern:
            continue  # GitHub ignores these: treat as matching nothing
        rules.append(OwnerRule(pattern, owners, number, _translate(pattern)))
    return rules


def owners_of(path: str, rules: list[OwnerRule]) -> tuple[OwnerRule | None, tuple[str, ...]]:
    """The last rule matching ``path`` and its owners (empty: explicitly unowned)."""
    found: OwnerRule | None = None
    for rule in rules:
        if rule.regex.match(path):
            found = rule
    return found, found.owners if found else ()


def codeowners_check(git: Git, head: str, specs: list[str]) -> dict[str, Any]:
    """Manifest files at ``head`` (files holding Kubernetes objects) without an owner."""
    file = ""
    text: bytes | None = None
    for candidate in CODEOWNERS_LOCATIONS:
        if git.call("cat-file", "-e", f"{head}:{candidate}").returncode == 0:
            file = candidate
            blob = git.run("rev-parse", f"{head}:{candidate}").strip()
            text = git.read(blob)
            break
    rules = parse_codeowners(text.decode("utf-8", "replace")) if text else []
    listing = git.run("ls-tree", "-r", "-z", "--full-tree", head, "--", *specs)
    manifests = []
    for entry in listing.split("\0"):
        meta, _, path = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob" and is_manifest(path):
            parsed = parse_manifest(git.read(parts[2]))
            if parsed.objects or parsed.problem:  # an unreadable file may hold objects
                manifests.append(path)
    uncovered = []
    for path in sorted(manifests):
        rule, owners = owners_of(path, rules)
        if not owners:
            uncovered.append({"path": path, "rule": rule.pattern if rule else "",
                              "line": rule.line if rule else 0})
    return {"file": file, "checked": len(manifests), "uncovered": uncovered}



# --- the audit with its guardrails ------------------------------------------------------------


@dataclass(frozen=True)
class GuardrailOptions:
    """Which guardrails ``audit`` checks (``--base``, ``--head``, ``--require-*``)."""

    base: str = ""              # the last trusted commit; history and signatures from there
    head: str = "HEAD"          # the commit under review
    require_signed: bool = False
    require_codeowners: bool = False


def required_by_repository(repo: Path, options: GuardrailOptions) -> GuardrailOptions:
    """``options`` plus the guardrails ``.gitops-checker.yaml`` in ``repo`` requires of itself
    (``guardrails.requireSignedCommits``, ``guardrails.requireCodeowners``)."""
    from checker.config import find_config, load_config

    if find_config(repo) is None:
        return options
    config = load_config(repo)
    return replace(options, require_signed=options.require_signed or config.require_signed,
                   require_codeowners=options.require_codeowners or config.require_codeowners)


def check(git: Git, options: GuardrailOptions, manifest_specs: list[str]) -> dict[str, Any]:
    """The guardrails section of an audit trail: history, signatures, CODEOWNERS coverage."""
    base, head = options.base, options.head
    guardrails: dict[str, Any] = {}
    if base:
        guardrails["history"] = history_check(git, base, head)
    if options.require_signed or base:
        found = git.call("cat-file", "-e", f"{base}^{{commit}}").returncode == 0
        signatures: dict[str, object] = {
            "required": options.require_signed, "range": f"{base}..{head}" if base else head}
        if base and not found:  # the history guardrail reports it
            signatures.update(unsigned=[], skipped="base commit not found")
        else:
            signatures["unsigned"] = unsigned_commits(git, base, head)
        guardrails["signatures"] = signatures
    if options.require_codeowners:
        result = codeowners_check(git, head, manifest_specs)
        guardrails["codeowners"] = {"required": True, **result}
    return guardrails


def audit_with_guardrails(options: AuditOptions, guardrails: GuardrailOptions,
                          progress: Progress | None = None) -> AuditTrail:
    """The audit trail of ``options`` with its guardrails checked (raises CheckerError)."""
    with Git(options.repo) as git:
        trail = audit(options, git, progress=progress)
        return replace(trail, guardrails=check(git, guardrails, list(trail.paths)))


def violations(trail: AuditTrail) -> list[str]:
    """One line per violated guardrail (empty when all checked guardrails hold)."""
    out = list(trail.problems)
    g = trail.guardrails
    signatures = g.get("signatures")
    if signatures and signatures.get("required") and signatures.get("unsigned"):
        out.append(f"{len(signatures['unsigned'])} commit(s) without a good signature in "
                   f"{signatures['range']}")
    history = g.get("history")
    if history and history.get("rewritten"):
        out.append(f"history rewritten: {history['reason']}")
    owners = g.get("codeowners")
    if owners and owners.get("required") and owners.get("uncovered"):
        where = owners.get("file") or "no CODEOWNERS file"
        out.append(f"{len(owners['uncovered'])} manifest file(s) not covered by CODEOWNERS "
                   f"({where})")
    return out


def exit_code(trail: AuditTrail) -> int:
    """1 when a required guardrail is violated or the history is incomplete, else 0."""
    return EXIT_FINDINGS if violations(trail) else EXIT_OK
