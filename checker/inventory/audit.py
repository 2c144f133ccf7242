"""Audit trail: who changed which Kubernetes object when, read from git history.

For each commit the YAML files it touched are parsed before and after the commit, and their
objects compared by identity (API group, kind, namespace, name), not by file: an object moved
to another file unchanged is not a change; moved and edited, it is ``modified``. Only field
paths of modifications are reported, never values, so Secret data cannot leak.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from checker.errors import InputError
from checker.inventory.git import Git
from checker.load.objects import YAML_SUFFIXES, is_k8s_object
from checker.load.yamlfile import Document, YamlProblem, decode, parse_documents

MAX_FIELDS = 20
BUILD_ONLY_GROUP = "kustomize.config.k8s.io/"  # kustomization files are never applied
CHANGE_TYPES = ("added", "modified", "removed")
SIGNATURES = {
    "G": "good", "B": "bad", "U": "good-untrusted-key", "X": "good-expired-signature",
    "Y": "good-expired-key", "R": "good-revoked-key", "E": "unverifiable", "N": "unsigned",
}
_FORMAT = "%x1f".join(("%H", "%P", "%an", "%ae", "%aI", "%cn", "%ce", "%cI", "%G?", "%GS",
                       "%B"))
_SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")  # SHA-1 or SHA-256


@dataclass(frozen=True)
class ObjectChange:
    """One object added, modified or removed by a commit."""

    change: str
    api_version: str
    kind: str
    namespace: str
    name: str
    path: str
    old_path: str = ""
    fields: tuple[str, ...] = ()

    def sort_key(self) -> tuple[str, ...]:
        """Deterministic order: kind, namespace, name, file."""
        return (self.kind, self.namespace, self.name, self.path, self.change)


@dataclass(frozen=True)
class Commit:
    """A commit with its metadata and the object changes it made."""

    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    author_date: str
    committer_name: str
    committer_email: str
    committer_date: str
    signature: str
    signer: str
    message: str
    changes: tuple[ObjectChange, ...] = ()

    @property
    def subject(self) -> str:
        """First line of the message."""
        return self.message.split("\n", 1)[0]


@dataclass(frozen=True)
class AuditFilter:
    """Which changes to keep. Empty tuples keep everything; names and authors are globs/text."""

    kinds: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    since: str = ""
    until: str = ""

    def keeps(self, change: ObjectChange) -> bool:
        """Whether an object change passes the kind, namespace, name and type filters."""
        if self.kinds and change.kind.lower() not in {k.lower() for k in self.kinds}:
            return False
        if self.namespaces and change.namespace not in self.namespaces:
            return False
        if self.names and not any(fnmatch.fnmatchcase(change.name, n) for n in self.names):
            return False
        return not self.changes or change.change in self.changes

    def keeps_author(self, commit: Commit) -> bool:
        """Author filter: case-insensitive text in the author's name or e-mail."""
        if not self.authors:
            return True
        who = f"{commit.author_name} <{commit.author_email}>".lower()
        return any(a.lower() in who for a in self.authors)


@dataclass(frozen=True)
class AuditOptions:
    """Where and what to audit."""

    repo: Path
    paths: tuple[Path, ...] = ()
    revision: str = "HEAD"
    first_parent: bool = False
    filters: AuditFilter = field(default_factory=AuditFilter)


# --- object state of files ------------------------------------------------------------------

ObjectKey = tuple[str, str, str, str]  # group, kind, namespace, name


def manifest_objects(text: bytes | None) -> list[dict[str, Any]]:
    """Kubernetes objects in a file's bytes (``List`` items expanded); unreadable: none."""
    if text is None:
        return []
    try:
        decoded = decode(text)
    except YamlProblem:
        return []
    out: list[dict[str, Any]] = []
    for item in parse_documents(decoded):
        if isinstance(item, YamlProblem) or not isinstance(item, Document):
            continue
        data = item.data
        if not is_k8s_object(data) or str(data["apiVersion"]).startswith(BUILD_ONLY_GROUP):
            continue
        if str(data["kind"]).endswith("List") and isinstance(data.get("items"), list):
            out.extend(i for i in data["items"] if is_k8s_object(i))
        else:
            out.append(data)
    return out


def object_key(data: Mapping[str, Any]) -> ObjectKey:
    """(API group, kind, namespace, name) of an object."""
    api = str(data.get("apiVersion", ""))
    meta = data.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return (api.rpartition("/")[0] if "/" in api else "", str(data.get("kind", "")),
            str(meta.get("namespace") or ""), str(meta.get("name") or
                                                  meta.get("generateName") or ""))


def changed_fields(old: Any, new: Any, path: str = "", out: list[str] | None = None
                   ) -> list[str]:
    """Paths (``spec.template.spec.containers[0].image``) where two values differ."""
    out = [] if out is None else out
    if len(out) > MAX_FIELDS:
        return out
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            child = f"{path}.{key}" if path else str(key)
            if key not in old or key not in new:
                out.append(child)
            elif old[key] != new[key]:
                changed_fields(old[key], new[key], child, out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b:
                changed_fields(a, b, f"{path}[{index}]", out)
    elif old != new:
        out.append(path or "(document)")
    return out


def _fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    found = changed_fields(old, new)
    if len(found) > MAX_FIELDS:
        found = [*found[:MAX_FIELDS], f"... ({len(found) - MAX_FIELDS}+ more)"]
    return tuple(found)


def diff_objects(before: Mapping[str, list[dict[str, Any]]],
                 after: Mapping[str, list[dict[str, Any]]]) -> list[ObjectChange]:
    """Object changes between the objects of changed files before and after a commit."""
    old: dict[ObjectKey, list[tuple[str, dict[str, Any]]]] = {}
    new: dict[ObjectKey, list[tuple[str, dict[str, Any]]]] = {}
    for path, objects in sorted(before.items()):
        for data in objects:
            old.setdefault(object_key(data), []).append((path, data))
    for path, objects in sorted(after.items()):
        for data in objects:
            new.setdefault(object_key(data), []).append((path, data))
    out: list[ObjectChange] = []
    for key in sorted(set(old) | set(new)):
        olds, news = list(old.get(key, [])), list(new.get(key, []))
        pairs: list[tuple[tuple[str, dict[str, Any]] | None, tuple[str, dict[str, Any]] | None]]
        pairs = []
        for item in list(news):  # same object in the same file first
            match = next((o for o in olds if o[0] == item[0]), None)
            if match is not None:
                olds.remove(match)
                news.remove(item)
                pairs.append((match, item))
        for item in list(news):  # then an object that moved between files
            match = next((o for o in olds if o[1] == item[1]), olds[0] if olds else None)
            if match is not None:
                olds.remove(match)
                news.remove(item)
                pairs.append((match, item))
        pairs += [(o, None) for o in olds] + [(None, n) for n in news]
        for before_item, after_item in pairs:
            if before_item and after_item:
                if before_item[1] == after_item[1]:
                    continue
                data, path = after_item[1], after_item[0]
                out.append(ObjectChange(
                    "modified", str(data["apiVersion"]), key[1], key[2], key[3], path,
                    before_item[0] if before_item[0] != path else "",
                    _fields(before_item[1], after_item[1])))
            elif after_item:
                out.append(ObjectChange("added", str(after_item[1]["apiVersion"]), key[1],
                                        key[2], key[3], after_item[0]))
            elif before_item:
                out.append(ObjectChange("removed", str(before_item[1]["apiVersion"]), key[1],
                                        key[2], key[3], before_item[0]))
    return sorted(out, key=ObjectChange.sort_key)


# --- history --------------------------------------------------------------------------------

def pathspecs(git: Git, paths: Iterable[Path]) -> list[str]:
    """PATHS given on the command line as pathspecs relative to the repository top."""
    out = []
    top = git.top.resolve()
    for path in paths:
        resolved = path.resolve()
        try:
            rel = resolved.relative_to(top)
        except ValueError:
            raise InputError(f"{path} is outside the git repository {top}") from None
        out.append(rel.as_posix() or ".")
    return out


def _signed(git: Git, sha: str) -> bool:
    raw = git.read(sha) or b""
    head = raw.split(b"\n\n", 1)[0]
    return any(line.startswith((b"gpgsig ", b"gpgsig-sha256 ")) for line in head.split(b"\n"))


def read_commits(git: Git, revision: str, *, first_parent: bool = False,
                 since: str = "", until: str = "", specs: Sequence[str] = ()) -> list[Commit]:
    """Commits reachable from ``revision`` (a ref or ``A..B``), newest first, no changes yet."""
    args = ["log", "-z", f"--format={_FORMAT}"]
    if first_parent:
        args.append("--first-parent")
    if since:
        args.append(f"--since={since}")
    if until:
        args.append(f"--until={until}")
    if revision.startswith("-"):
        raise InputError(f"invalid revision {revision!r}")
    args += [revision, "--", *specs]
    out = []
    for record in git.run(*args).split("\0"):
        if not record.strip():
            continue
        parts = record.split("\x1f", 10)
        if len(parts) != 11 or not _SHA.match(parts[0].strip()):
            continue
        sha = parts[0].strip()
        status = parts[8] or "N"
        if status == "N" and _signed(git, sha):
            status = "E"  # signed, but git cannot verify it here (no key / allowed signers)
        out.append(Commit(
            sha=sha, parents=tuple(parts[1].split()), author_name=parts[2],
            author_email=parts[3], author_date=parts[4], committer_name=parts[5],
            committer_email=parts[6], committer_date=parts[7],
            signature=SIGNATURES.get(status, "unverifiable"), signer=parts[9],
            message=parts[10].rstrip("\n"),
        ))
    return out


def is_manifest(path: str) -> bool:
    """A file name the loader reads as YAML or JSON."""
    return PurePosixPath(path).suffix in YAML_SUFFIXES


def _is_zero(sha: str) -> bool:
    return not sha.strip("0")


def changes_by_commit(git: Git, commits: Sequence[Commit], first_parent: bool,
                      specs: Sequence[str]) -> dict[str, list[ObjectChange]]:
    """Object changes of each commit, from one ``git diff-tree --stdin`` run.

    A commit is compared with its first parent (a root commit with the empty tree). Merges are
    compared only with ``--first-parent``; otherwise their changes are the merged commits'.
    """
    lines = []
    for commit in commits:
        if len(commit.parents) > 1 and not first_parent:
            continue
        lines.append(f"{commit.sha} {commit.parents[0]}" if commit.parents else commit.sha)
    if not lines:
        return {}
    proc = git.call_input("\n".join(lines) + "\n", "diff-tree", "--stdin", "--always", "-r",
                          "-z", "--raw", "--no-renames", "--root", "--", *specs)
    files: dict[str, list[tuple[str, str, str, str, str]]] = {}
    current = ""
    tokens = proc.split("\0")
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.startswith(":") and index < len(tokens):
            path = tokens[index]
            index += 1
            parts = token[1:].split()
            if current and len(parts) >= 5 and is_manifest(path):
                files.setdefault(current, []).append((parts[0], parts[1], parts[2], parts[3],
                                                      path))
        elif _SHA.match(token.strip()):
            current = token.strip()
            files.setdefault(current, [])
    wanted = [oid for entries in files.values() for old_mode, new_mode, old_sha, new_sha, _
              in entries for mode, oid in ((old_mode, old_sha), (new_mode, new_sha))
              if not _is_zero(oid) and not mode.startswith("16")]
    blobs = git.read_many(wanted)
    parsed: dict[str, list[dict[str, Any]]] = {}

    def objects(oid: str) -> list[dict[str, Any]]:
        if oid not in parsed:
            parsed[oid] = manifest_objects(blobs.get(oid))
        return parsed[oid]

    out: dict[str, list[ObjectChange]] = {}
    for sha, entries in files.items():
        before: dict[str, list[dict[str, Any]]] = {}
        after: dict[str, list[dict[str, Any]]] = {}
        for old_mode, new_mode, old_sha, new_sha, path in entries:
            if not _is_zero(old_sha) and not old_mode.startswith("16"):
                before[path] = objects(old_sha)
            if not _is_zero(new_sha) and not new_mode.startswith("16"):
                after[path] = objects(new_sha)
        out[sha] = diff_objects(before, after)
    return out


@dataclass(frozen=True)
class AuditTrail:
    """The audit result renderers read."""

    revision: str
    commits: tuple[Commit, ...]
    filters: AuditFilter
    paths: tuple[str, ...]
    first_parent: bool = False
    guardrails: Mapping[str, Any] = field(default_factory=dict)


def audit(options: AuditOptions, git: Git | None = None) -> AuditTrail:
    """Read the history and keep the commits with object changes that pass the filters."""
    own = git is None
    git = git or Git(options.repo)
    try:
        # Without PATHS, a --repo below the top of the work tree limits the trail to itself.
        specs = pathspecs(git, options.paths or (options.repo,))
        specs = [] if specs == ["."] else specs
        flt = options.filters
        kept = []
        commits = [c for c in read_commits(git, options.revision,
                                           first_parent=options.first_parent, since=flt.since,
                                           until=flt.until, specs=specs)
                   if flt.keeps_author(c)]
        found = changes_by_commit(git, commits, options.first_parent, specs)
        for commit in commits:
            changes = [c for c in found.get(commit.sha, []) if flt.keeps(c)]
            if changes:
                kept.append(replace(commit, changes=tuple(changes)))
    finally:
        if own:
            git.close()
    return AuditTrail(options.revision, tuple(kept), options.filters, tuple(specs),
                      options.first_parent)
