"""Evidence per change: a record of one scan that an auditor can sample.

``collect`` gathers what the report does not hold (the repository, commit and base, each
pack's digest); ``record`` builds the JSON object (``schemas/evidence.schema.json``) from the
report and that provenance; ``render`` and ``render_statement`` are pure: the same inputs give
byte-identical output, and no clock is read (the date acceptances were judged against is
passed in).

The in-toto Statement v1 carries the record as its predicate (``PREDICATE_TYPE``) with the
scanned commit as its subject, so a workflow can sign it (GitHub's artifact attestation,
``cosign attest-blob``, any in-toto signer). See ``docs/evidence.md``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

from checker.config import Config
from checker.errors import InputError
from checker.model import Finding, Report
from checker.report.common import exemption_groups, fingerprint

SCHEMA_VERSION = "1"
PREDICATE_TYPE = "https://gitops-checker.io/evidence/v1"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SCHEMA_FILE = "schemas/evidence.schema.json"
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_GIT_SECONDS = 30


@dataclass(frozen=True)
class Provenance:
    """Where and against what the scan ran; every field may be unknown (empty)."""

    repository: str = ""        # https://github.com/owner/name, or the origin URL
    commit: str = ""            # the commit that was scanned
    ref: str = ""               # GITHUB_REF when known
    base: str = ""              # --accept-base REF
    base_commit: str = ""       # what REF resolved to
    source: str = ""            # "github" (workflow environment), "git" or ""
    today: str = ""             # the date acceptances expired against (YYYY-MM-DD)
    packs: Mapping[str, str] = field(default_factory=dict)  # pack -> sha256 of its files
    notes: tuple[str, ...] = ()  # what could not be established, and why


def _git(root: Path, *args: str) -> str:
    """One read-only git command in ``root``; "" when git fails or is absent."""
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                              timeout=_GIT_SECONDS, check=False,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.decode("utf-8", "replace").strip() if proc.returncode == 0 else ""


def _without_credentials(url: str) -> str:
    """A remote URL without user and password (``https://token@host/x`` -> ``https://host/x``)."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", url.strip())


def pack_digest(folder: Path) -> str:
    """``sha256:`` over every file of a pack folder (relative path and bytes, sorted)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix().encode("utf-8")
        digest.update(len(rel).to_bytes(4, "big") + rel)
        data = path.read_bytes()
        digest.update(len(data).to_bytes(8, "big") + data)
    return "sha256:" + digest.hexdigest()


def collect(root: Path, report: Report, today: dt.date | None, accept_base: str = "",
            environ: Mapping[str, str] | None = None) -> Provenance:
    """The provenance of a scan of ``root``.

    In a GitHub workflow (``GITHUB_REPOSITORY`` and ``GITHUB_SHA`` set) the repository and
    commit come from the runner's environment, which the pull request cannot change;
    elsewhere from ``git`` in ``root`` (an origin URL loses any credentials it holds). A base
    ref is resolved with git.
    """
    from checker.policy.packs import packs_dir

    env = os.environ if environ is None else environ
    notes: list[str] = []
    repository = commit = ref = source = ""
    if env.get("GITHUB_REPOSITORY") and env.get("GITHUB_SHA"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        repository = f"{server}/{env['GITHUB_REPOSITORY']}"
        commit, ref, source = env["GITHUB_SHA"], env.get("GITHUB_REF", ""), "github"
    else:
        commit = _git(root, "rev-parse", "--verify", "HEAD^{commit}")
        if commit:
            source = "git"
            repository = _without_credentials(_git(root, "config", "--get", "remote.origin.url"))
            if _git(root, "status", "--porcelain", "--untracked-files=normal", "--", "."):
                notes.append("the working tree differs from the commit (uncommitted or "
                             "untracked files): what was scanned is not exactly the commit")
        else:
            notes.append("the commit is unknown: not a GitHub workflow and no git repository "
                         "at the root")
    if commit and not _SHA.match(commit):
        notes.append(f"the commit {commit[:80]!r} is not a git object id; not recorded")
        commit = ""
    base_commit = ""
    if accept_base:
        base_commit = _git(root, "rev-parse", "--verify", "--end-of-options",
                           f"{accept_base}^{{commit}}")
        if not _SHA.match(base_commit):
            notes.append(f"the base {accept_base!r} does not resolve to a commit")
            base_commit = ""
    packs: dict[str, str] = {}
    if report.packs:
        folder = packs_dir()
        for name in report.packs:
            if (folder / name).is_dir():
                packs[name] = pack_digest(folder / name)
        if (folder / "lib").is_dir():
            packs["lib"] = pack_digest(folder / "lib")
    return Provenance(repository=repository, commit=commit, ref=ref, base=accept_base,
                      base_commit=base_commit, source=source,
                      today=today.isoformat() if today else "", packs=packs,
                      notes=tuple(notes))


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule_id, "category": f.category, "severity": f.severity.label,
        "cluster": f.cluster, "resource": f.resource, "message": f.message,
        "location": {"path": f.location.path, "line": f.location.line},
        "controls": [{"standard": c.standard, "id": c.id} for c in f.controls],
        "fingerprint": fingerprint(f),
        # the delta against the base: "new" or "unchanged"; null when no base was evaluated
        "delta": f.baseline or None,
    }


def _acceptances(report: Report) -> list[dict[str, Any]]:
    by_source: dict[str, dict[str, Any]] = {}
    for f in report.suppressed:
        s = f.suppression
        assert s is not None
        entry = by_source.setdefault(s.source, {
            "source": s.source, "kind": s.kind, "owner": s.owner or None,
            "approver": s.approver or None, "ticket": s.ticket or None,
            "expires": s.expires or None, "justification": s.justification,
            "findings": []})
        entry["findings"].append(fingerprint(f))
    return [{**e, "findings": sorted(e["findings"])} for _, e in sorted(by_source.items())]


def record(report: Report, provenance: Provenance, config: Config | None,
           exit_code: int) -> dict[str, Any]:
    """The evidence record (a JSON object; see ``schemas/evidence.schema.json``)."""
    environments = {c.name: c.environment for c in config.clusters} if config else {}
    names = report.clusters or ("",)
    policies = [{"cluster": r.cluster, "policy": r.policy, "source": r.source,
                 "constraint": r.constraint, "enforcementAction": r.enforcement,
                 "severity": r.severity, "digest": r.digest,
                 "location": r.location or None}
                for r in report.policy_records]
    packs = [{"name": name, "version": report.tool_version, "digest": digest}
             for name, digest in sorted(provenance.packs.items())]
    not_checked = [{"kind": c.kind, "what": c.what, "path": c.path, "line": c.line,
                    "reason": c.reason} for c in report.coverage if c.state == "not-checked"]
    return {
        "schemaVersion": SCHEMA_VERSION,
        "tool": {"name": "gitops-checker", "version": report.tool_version},
        "repository": {"url": provenance.repository or None,
                       "commit": provenance.commit or None, "ref": provenance.ref or None,
                       "source": provenance.source or None},
        "base": ({"ref": provenance.base, "commit": provenance.base_commit or None}
                 if provenance.base else None),
        "acceptanceDate": provenance.today or None,
        "engines": list(report.engines),
        "packs": packs,
        "clusters": [{"name": n, "environment": environments.get(n, "")} for n in names],
        "policies": policies,
        "result": {"exitCode": exit_code,
                   "verdict": {0: "pass", 1: "fail"}.get(exit_code, "error"),
                   "failOn": report.fail_on.label if report.fail_on else "never",
                   "bySeverity": report.counts(), "accepted": len(report.suppressed),
                   "resources": report.resources_checked, "files": report.files_checked},
        "findings": [_finding(f) for f in report.active],
        "acceptances": _acceptances(report),
        "notChecked": {"inputs": not_checked,
                       "exemptions": exemption_groups(report.exemptions),
                       "errors": list(report.errors),
                       "provenance": list(provenance.notes)},
        "delta": _delta(report),
    }


def _delta(report: Report) -> dict[str, Any]:
    """Whether findings carry their state against an evaluated base, and its summary."""
    if not report.base:
        return {"available": False,
                "note": "no base was evaluated (scan --base, the Action's pull-request runs): "
                        "each finding's delta is null"}
    fixed = [f for f in report.fixed if f.suppression is None]
    return {"available": True,
            "note": "each finding is new or unchanged against the base commit; fixed lists "
                    "the fingerprints of the base's findings the change removes",
            "base": report.base,
            "counts": {"new": len(report.new), "unchanged": len(report.unchanged),
                       "fixed": len(fixed)},
            "fixed": sorted(fingerprint(f) for f in fixed)}


def render(data: Mapping[str, Any]) -> str:
    """The record as JSON: sorted keys, two-space indent, a final newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def statement(data: Mapping[str, Any]) -> dict[str, Any]:
    """An in-toto Statement v1 with the record as predicate and the commit as subject.

    Raises InputError when the commit is unknown: a statement must name what it is about.
    """
    repo = data["repository"]
    if not repo.get("commit"):
        raise InputError("cannot write an evidence statement: the scanned commit is unknown "
                         "(run in a git repository or a GitHub workflow)")
    name = f"{repo['url'] or 'repository'}@{repo['commit']}"
    return {"_type": STATEMENT_TYPE,
            "subject": [{"name": name, "digest": {"gitCommit": repo["commit"]}}],
            "predicateType": PREDICATE_TYPE, "predicate": dict(data)}


def schema() -> dict[str, Any]:
    """The published JSON Schema of the evidence record."""
    text = importlib_resources.files("checker").joinpath(SCHEMA_FILE).read_text(
        encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def write_all(report: Report, root: Path, config: Config | None, exit_code: int,
              today: dt.date | None, accept_base: str, evidence: Path | None,
              statement_file: Path | None, environ: Mapping[str, str] | None = None,
              ) -> dict[str, str]:
    """Collect, build and write the record and/or the statement; return kind -> text."""
    data = record(report, collect(root, report, today, accept_base, environ), config,
                  exit_code)
    out: dict[str, str] = {}
    if evidence is not None:
        out["evidence"] = render(data)
    if statement_file is not None:
        out["statement"] = render(statement(data))
    return out


__all__: Sequence[str] = ("PREDICATE_TYPE", "Provenance", "collect", "record", "render",
                          "schema", "statement", "write_all")
