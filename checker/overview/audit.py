"""Audit trail: who changed which Kubernetes object when, read from git history.

For each commit the YAML files it touched are parsed before and after the commit, and their
objects compared by identity (API group, kind, namespace, name), not by file: an object moved
to another file unchanged is not a change; moved and edited, it is ``modified``. Only field
paths of modifications are reported, never values, so Secret data cannot leak.
"""

from __future__ import annotations

import codecs
import fnmatch
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from checker.errors import InputError
from checker.load.objects import YAML_SUFFIXES, is_k8s_object
from checker.load.yamlfile import YamlProblem, decode, parse_documents
from checker.overview.git import Git

MAX_FIELDS = 20
BUILD_ONLY_GROUP = "kustomize.config.k8s.io/"  # kustomization files are never applied
CHANGE_TYPES = ("added", "modified", "removed", "unreadable")
SIGNATURES = {
    "G": "good", "B": "bad", "U": "good-untrusted-key", "X": "good-expired-signature",
    "Y": "good-expired-key", "R": "good-revoked-key", "E": "unverifiable", "N": "unsigned",
}
# Only fields git writes itself (hashes, the one-letter signature status, the signer git
# verified), NUL-separated: nothing a commit's author controls can shift a field. Names,
# e-mails, dates and messages are read from the commit objects (length-prefixed by cat-file).
_FORMAT = "%H%x00%P%x00%G?%x00%GS"
_SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")  # SHA-1 or SHA-256
_IDENT = re.compile(rb"^(.*) <([^<>]*)> (\d+) ([+-]\d{4})$")
CHUNK_COMMITS = 200  # commits whose files are read and diffed at once (bounds memory)
PARSED_CACHE_BYTES = 32 * 1024 * 1024  # source bytes of parsed versions kept between chunks


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
        """Whether an object change passes the kind, namespace, name and type filters.

        An ``unreadable`` file version may hold any object, so only the type filter applies.
        """
        if change.change == "unreadable":
            return not self.changes or "unreadable" in self.changes
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


@dataclass(frozen=True)
class Parsed:
    """The Kubernetes objects of one file version, or why it could not be read."""

    objects: tuple[dict[str, Any], ...]
    problem: str = ""


def parse_manifest(text: bytes | None) -> Parsed:
    """Kubernetes objects in a file's bytes (``List`` items expanded).

    A file that is not UTF-8, or any document of it that cannot be parsed, makes the whole
    version unreadable (``problem`` says why, with the line): its objects are unknown, not
    absent.
    """
    if text is None:
        return Parsed((), "the blob is missing from the repository")
    try:
        decoded = decode(text)
    except YamlProblem as err:
        return Parsed((), f"line {err.line}: {err.message}")
    out: list[dict[str, Any]] = []
    for item in parse_documents(decoded):
        if isinstance(item, YamlProblem):
            return Parsed((), f"line {item.line}: {item.message}")
        data = item.data
        if not is_k8s_object(data) or str(data["apiVersion"]).startswith(BUILD_ONLY_GROUP):
            continue
        if str(data["kind"]).endswith("List") and isinstance(data.get("items"), list):
            out.extend(i for i in data["items"] if is_k8s_object(i))
        else:
            out.append(data)
    return Parsed(tuple(out))


def manifest_objects(text: bytes | None) -> list[dict[str, Any]]:
    """Kubernetes objects in a file's bytes; an unreadable file has none."""
    return list(parse_manifest(text).objects)


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


@dataclass(frozen=True)
class CommitObject:
    """The parts of a raw commit object the trail shows."""

    author: tuple[str, str, str]  # name, e-mail, ISO date
    committer: tuple[str, str, str]
    signed: bool
    message: str


def _iso_date(seconds: bytes, zone: bytes) -> str:
    """A git ``<seconds> <+hhmm>`` timestamp as ISO 8601 with its offset (as ``%aI``)."""
    try:
        sign = -1 if zone.startswith(b"-") else 1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) * sign
        return datetime.fromtimestamp(int(seconds), timezone(offset)).isoformat()
    except (ValueError, OverflowError, OSError):
        return f"{seconds.decode('ascii', 'replace')} {zone.decode('ascii', 'replace')}"


def _ident(value: bytes, encoding: str) -> tuple[str, str, str]:
    match = _IDENT.match(value)
    if match is None:
        return value.decode(encoding, "replace"), "", ""
    return (match.group(1).decode(encoding, "replace"), match.group(2).decode(encoding, "replace"),
            _iso_date(match.group(3), match.group(4)))


def parse_commit_object(raw: bytes) -> CommitObject:
    """Author, committer, whether it carries a signature, and the message of a commit object.

    The object comes length-prefixed from ``git cat-file --batch``, so no byte of a name or a
    message can be mistaken for a separator; header lines are split at the first space.
    """
    head, _, body = raw.partition(b"\n\n")
    headers: dict[bytes, bytes] = {}
    key = b""
    for line in head.split(b"\n"):
        if line.startswith(b" ") and key:  # continuation of a multi-line header (gpgsig)
            continue
        key, _, value = line.partition(b" ")
        headers.setdefault(key, value)
    encoding = headers.get(b"encoding", b"utf-8").decode("ascii", "replace").strip() or "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        encoding = "utf-8"
    return CommitObject(
        author=_ident(headers.get(b"author", b""), encoding),
        committer=_ident(headers.get(b"committer", b""), encoding),
        signed=b"gpgsig" in headers or b"gpgsig-sha256" in headers,
        message=body.decode(encoding, "replace").rstrip("\n"),
    )


def _log_records(git: Git, revision: str, *, first_parent: bool, since: str, until: str,
                 specs: Sequence[str]) -> list[tuple[str, tuple[str, ...], str, str]]:
    """(sha, parents, %G?, signer) of each commit, newest first, from git's own fields."""
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
    text = git.run(*args)
    tokens = text.split("\0")
    if tokens[-1] == "":
        tokens.pop()  # each record ends with NUL
    if len(tokens) % 4:
        raise InputError(f"git log printed {len(tokens)} fields for {revision!r}, not records "
                         "of four: refusing to guess who signed what")
    out = []
    for index in range(0, len(tokens), 4):
        sha, parents, status, signer = tokens[index:index + 4]
        parent_list = tuple(parents.split())
        if (not _SHA.match(sha) or not all(_SHA.match(x) for x in parent_list)
                or status not in SIGNATURES):
            raise InputError(f"git log printed an unexpected record for {revision!r} "
                             f"({sha[:40]!r}): refusing to guess who signed what")
        out.append((sha, parent_list, status, signer))
    return out


def iter_commits(git: Git, revision: str, *, first_parent: bool = False, since: str = "",
                 until: str = "", specs: Sequence[str] = (),
                 chunk: int = CHUNK_COMMITS) -> Iterator[list[Commit]]:
    """Commits reachable from ``revision`` (a ref or ``A..B``), newest first, in chunks.

    The signature status is git's own ``%G?``; a commit git calls unsigned that does carry a
    signature header is ``unverifiable`` (no key, or no ``gpg.ssh.allowedSignersFile``).
    """
    records = _log_records(git, revision, first_parent=first_parent, since=since,
                           until=until, specs=specs)
    for start in range(0, len(records), chunk):
        yield _commits(git, records[start:start + chunk])


def _commits(git: Git, part: Sequence[tuple[str, tuple[str, ...], str, str]]) -> list[Commit]:
    """Commits of ``git log`` records, their metadata read from the commit objects."""
    raws = git.read_many([sha for sha, *_ in part])
    commits = []
    for sha, parents, status, signer in part:
        raw = raws.get(sha)
        if raw is None:
            raise InputError(f"commit {sha} listed by git log cannot be read")
        obj = parse_commit_object(raw)
        if status == "N" and obj.signed:
            status = "E"  # signed, but git cannot verify it here
        commits.append(Commit(
            sha=sha, parents=parents, author_name=obj.author[0],
            author_email=obj.author[1], author_date=obj.author[2],
            committer_name=obj.committer[0], committer_email=obj.committer[1],
            committer_date=obj.committer[2], signature=SIGNATURES[status], signer=signer,
            message=obj.message,
        ))
    return commits


def read_commits(git: Git, revision: str, *, first_parent: bool = False,
                 since: str = "", until: str = "", specs: Sequence[str] = ()) -> list[Commit]:
    """Commits reachable from ``revision`` (a ref or ``A..B``), newest first, no changes yet."""
    return [c for part in iter_commits(git, revision, first_parent=first_parent, since=since,
                                       until=until, specs=specs) for c in part]


def is_manifest(path: str) -> bool:
    """A file name the loader reads as YAML or JSON."""
    return PurePosixPath(path).suffix in YAML_SUFFIXES


def _is_zero(sha: str) -> bool:
    return not sha.strip("0")


class _ParsedCache:
    """Parsed file versions by blob id; the least recently used go beyond ``limit`` bytes.

    The weight of an entry is the size of the file it was parsed from, so a few huge files
    (generated CRDs) cannot hold more memory than many small ones.
    """

    def __init__(self, limit: int = PARSED_CACHE_BYTES) -> None:
        self.limit = limit
        self.total = 0
        self.items: OrderedDict[str, tuple[Parsed, int]] = OrderedDict()

    def get(self, oid: str) -> Parsed | None:
        found = self.items.get(oid)
        if found is None:
            return None
        self.items.move_to_end(oid)
        return found[0]

    def put(self, oid: str, parsed: Parsed, weight: int) -> None:
        if oid in self.items:
            return
        self.items[oid] = (parsed, weight)
        self.total += weight
        while self.total > self.limit and len(self.items) > 1:
            _, (_, dropped) = self.items.popitem(last=False)
            self.total -= dropped


def _problem_text(problem: str) -> str:
    return problem if len(problem) <= 200 else problem[:197] + "..."


def changes_by_commit(git: Git, commits: Sequence[Commit], first_parent: bool,
                      specs: Sequence[str], cache: _ParsedCache | None = None,
                      ) -> dict[str, list[ObjectChange]]:
    """Object changes of each commit, from one ``git diff-tree --stdin`` run.

    A commit is compared with its first parent (a root commit with the empty tree). Merges are
    compared only with ``--first-parent``; otherwise their changes are the merged commits'.
    A file version that cannot be parsed is an ``unreadable`` change of that file: its objects
    are unknown, so they are neither ``removed`` nor ``added``.
    """
    cache = cache or _ParsedCache()
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
    del tokens, proc
    wanted = [oid for entries in files.values() for old_mode, new_mode, old_sha, new_sha, _
              in entries for mode, oid in ((old_mode, old_sha), (new_mode, new_sha))
              if not _is_zero(oid) and not mode.startswith("16") and cache.get(oid) is None]
    fresh: dict[str, Parsed] = {}
    for oid, blob in git.read_many(wanted).items():
        fresh[oid] = parse_manifest(blob)
        cache.put(oid, fresh[oid], len(blob or b""))

    def objects(oid: str) -> Parsed:
        found = fresh.get(oid) or cache.get(oid)
        return found if found is not None else parse_manifest(git.read(oid))

    out: dict[str, list[ObjectChange]] = {}
    for sha, entries in files.items():
        before: dict[str, list[dict[str, Any]]] = {}
        after: dict[str, list[dict[str, Any]]] = {}
        unreadable: list[ObjectChange] = []
        for old_mode, new_mode, old_sha, new_sha, path in entries:
            old = (objects(old_sha) if not _is_zero(old_sha) and not old_mode.startswith("16")
                   else None)
            new = (objects(new_sha) if not _is_zero(new_sha) and not new_mode.startswith("16")
                   else None)
            problems = tuple(f"{side} this commit: {_problem_text(p.problem)}"
                             for side, p in (("before", old), ("after", new))
                             if p is not None and p.problem)
            if problems:
                unreadable.append(ObjectChange("unreadable", "", "", "", "", path,
                                               fields=problems))
                continue
            if old is not None:
                before[path] = list(old.objects)
            if new is not None:
                after[path] = list(new.objects)
        out[sha] = sorted([*diff_objects(before, after), *unreadable],
                          key=ObjectChange.sort_key)
    return out


@dataclass(frozen=True)
class AuditTrail:
    """The audit result renderers read.

    ``problems`` says why the trail is incomplete (a shallow clone); each makes the command
    fail, because a trail that credits the first fetched commit with everything is wrong.
    """

    revision: str
    commits: tuple[Commit, ...]
    filters: AuditFilter
    paths: tuple[str, ...]
    first_parent: bool = False
    guardrails: Mapping[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def shallow_problem(git: Git, revision: str) -> tuple[str, set[str]]:
    """A message when history reachable from ``revision`` was cut by a shallow clone.

    Returns the message (empty when complete) and the boundary commits: their parents are
    missing here, so git shows them as root commits that added every file.
    """
    if git.run("rev-parse", "--is-shallow-repository").strip() != "true":
        return "", set()
    boundary = git.shallow_commits()
    if revision.startswith("-"):
        raise InputError(f"invalid revision {revision!r}")
    reachable = set(git.run("rev-list", revision, "--").split())
    cut = boundary & reachable
    if not cut:
        return "", set()
    first = sorted(cut)[0]
    return (f"shallow clone: history before {first[:12]}"
            f"{f' and {len(cut) - 1} other commit(s)' if len(cut) > 1 else ''} was not "
            "fetched, so the oldest commits present would be credited with adding every "
            "object; their changes are left out. Fetch the full history (actions/checkout "
            "with fetch-depth: 0, or git fetch --unshallow)"), cut


Progress = Callable[[int, int], None]


def audit(options: AuditOptions, git: Git | None = None,
          progress: Progress | None = None) -> AuditTrail:
    """Read the history and keep the commits with object changes that pass the filters.

    Commits are read and diffed ``CHUNK_COMMITS`` at a time, with a bounded cache of parsed
    file versions (by source bytes), so memory depends on the largest chunk, not on the length
    of the history.
    ``progress(done, total)`` is called after each chunk.
    """
    own = git is None
    git = git or Git(options.repo)
    try:
        # Without PATHS, a --repo below the top of the work tree limits the trail to itself.
        specs = pathspecs(git, options.paths or (options.repo,))
        specs = [] if specs == ["."] else specs
        flt = options.filters
        problem, boundary = shallow_problem(git, options.revision)
        kept = []
        cache = _ParsedCache()
        records = _log_records(git, options.revision, first_parent=options.first_parent,
                               since=flt.since, until=flt.until, specs=specs)
        total = len(records)
        for start in range(0, total, CHUNK_COMMITS):
            part = _commits(git, records[start:start + CHUNK_COMMITS])
            done = start + len(part)
            commits = [c for c in part if flt.keeps_author(c) and c.sha not in boundary]
            found = changes_by_commit(git, commits, options.first_parent, specs, cache)
            for commit in commits:
                changes = [c for c in found.get(commit.sha, []) if flt.keeps(c)]
                if changes:
                    kept.append(replace(commit, changes=tuple(changes)))
            if progress is not None:
                progress(done, total)
    finally:
        if own:
            git.close()
    return AuditTrail(options.revision, tuple(kept), options.filters, tuple(specs),
                      options.first_parent, problems=(problem,) if problem else ())
