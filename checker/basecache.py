"""Base results by content digest: the base side of a delta, evaluated once per base tree.

A delta evaluates the base in full (``checker.pipeline.evaluate_base``). The base of a pull
request is a commit of the default branch that many runs share, so its findings are kept in
a cache folder (``--cache-dir``; the Action's ``cache-dir`` input, which a workflow keeps
with ``actions/cache``) under a key that is a digest of everything the result depends on:

- the git **tree id** of the root at the base commit (a digest of every file's content, the
  config and the repository's policies included: git computed it from the objects, and the
  working tree of the pull request does not enter it);
- this build of the tool: its version and a digest of its code and built-in packs, and the
  versions of the engines and renderers it drives (OPA, CEL, Helm SDK, kubectl);
- the run's settings: paths, packs, policy folders, operation, grouping, evaluation limits,
  the date acceptances expire against, and a config file from outside the repository (by its
  content).

Why a pull request cannot poison the base entry: the entry is computed only from git objects
of the base commit, never from files the pull request wrote; the key says which objects; the
folder must be outside the repository (a committed folder of forged entries is refused, not
read); an entry is read only when the key recorded in it is the key asked for and its schema
is this one, anything else is ignored and recomputed. On GitHub, caches a pull-request run
saves are visible to that pull request's runs only; the default branch's entry is saved by
its own push runs (see docs/github-action.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from checker import __version__
from checker.errors import ConfigError
from checker.model import (
    Control,
    Finding,
    ObjectRef,
    Report,
    Rule,
    Severity,
    SourceLocation,
    Suppression,
)

SCHEMA = 1
# Packages whose version changes what an evaluation finds or how manifests render.
ENGINE_PACKAGES = ("opa-golib-python-bindings", "regorus", "cel-expr-python", "helm-python-sdk",
                   "PyYAML", "ruamel.yaml")
_BUILD: str | None = None


def build_digest() -> str:
    """A digest of this build: version, code, built-in packs, engine versions, kubectl."""
    global _BUILD
    if _BUILD is None:
        from checker.policy.packs import packs_dir

        h = hashlib.sha256(f"gitops-checker {__version__}\n".encode())
        package = Path(__file__).resolve().parent
        folders = [package]
        with contextlib.suppress(ConfigError):
            folders.append(packs_dir())
        for folder in folders:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    h.update(path.relative_to(folder).as_posix().encode() + b"\0")
                    h.update(hashlib.sha256(path.read_bytes()).digest())
        for name in ENGINE_PACKAGES:
            try:
                version = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                version = "-"
            h.update(f"{name}={version}\n".encode())
        kubectl = shutil.which("kubectl")
        if kubectl:
            st = os.stat(kubectl)
            h.update(f"kubectl {kubectl} {st.st_size} {st.st_mtime_ns}\n".encode())
        _BUILD = h.hexdigest()
    return _BUILD


def cache_key(tree: str, settings: Mapping[str, Any]) -> str:
    """The key of a base result: the base tree, this build, the run's settings."""
    text = json.dumps({"schema": SCHEMA, "tree": tree, "build": build_digest(),
                       "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _finding_data(f: Finding) -> dict[str, Any]:
    loc = f.location
    s = f.suppression
    ref = f.ref
    return {
        "rule": f.rule_id, "category": f.category, "severity": f.severity.label,
        "message": f.message,
        "location": [loc.path, loc.line, loc.column, loc.end_line, loc.end_column],
        "resource": f.resource, "field_path": list(f.field_path),
        "controls": [[c.standard, c.id, c.title] for c in f.controls], "pack": f.pack,
        "cluster": f.cluster,
        "suppression": None if s is None else [s.kind, s.justification, s.owner, s.expires,
                                               s.source, s.approver, s.ticket],
        "details": dict(f.details),
        "ref": None if ref is None else [ref.cluster, ref.group, ref.version, ref.kind,
                                         ref.namespace, ref.name],
    }


_SEVERITY = {s.label: s for s in Severity}
# Every field of a Finding with its default, so an entry fills what it does not hold.
_FINDING_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(Finding)
    if f.default is not dataclasses.MISSING}


class _Reader:
    """Findings of an entry, built fast: the parts many findings share (controls, rules'
    texts) are built once, and each Finding is filled without its constructor's checks."""

    def __init__(self) -> None:
        self.controls: dict[str, tuple[Control, ...]] = {}

    def finding(self, d: Mapping[str, Any]) -> Finding:
        path, line, column, end_line, end_column = d["location"]
        s, r = d["suppression"], d["ref"]
        key = json.dumps(d["controls"])
        controls = self.controls.get(key)
        if controls is None:
            controls = self.controls[key] = tuple(Control(*c) for c in d["controls"])
        out = object.__new__(Finding)
        out.__dict__.update(_FINDING_DEFAULTS)
        out.__dict__.update(
            rule_id=d["rule"], category=d["category"], severity=_SEVERITY[d["severity"]],
            message=d["message"],
            location=SourceLocation(path, line, column, end_line, end_column),
            resource=d["resource"], field_path=tuple(d["field_path"]), controls=controls,
            pack=d["pack"], cluster=d["cluster"],
            suppression=None if s is None else Suppression(*s), details=d["details"],
            ref=None if r is None else ObjectRef(*r))
        return out


def _rule_data(r: Rule) -> dict[str, Any]:
    return {"id": r.id, "title": r.title, "severity": r.severity.label,
            "description": r.description, "help": r.help, "pack": r.pack,
            "controls": [[c.standard, c.id, c.title] for c in r.controls],
            "help_uri": r.help_uri}


def _rule(d: Mapping[str, Any]) -> Rule:
    return Rule(id=d["id"], title=d["title"], severity=Severity.parse(d["severity"]),
                description=d["description"], help=d["help"], pack=d["pack"],
                controls=tuple(Control(*c) for c in d["controls"]), help_uri=d["help_uri"])


def dump(report: Report, key: str) -> str:
    """The cache entry of a base ``report`` (what a delta reads of the base)."""
    return json.dumps({
        "schema": SCHEMA, "key": key, "tool_version": report.tool_version,
        "findings": [_finding_data(f) for f in report.findings],
        "rules": [_rule_data(r) for r in report.rules.values()],
        "resources_checked": report.resources_checked, "files_checked": report.files_checked,
        "packs": list(report.packs), "clusters": list(report.clusters),
        "errors": list(report.errors), "engines": list(report.engines),
    }, sort_keys=True, default=str, separators=(",", ":"))


def load(text: str, key: str) -> Report | None:
    """The base report of an entry, or None when it is not an entry of ``key``."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("key") != key:
            return None
        rules = [_rule(r) for r in data["rules"]]
        return Report(
            findings=tuple(map(_Reader().finding, data["findings"])),
            rules={r.id: r for r in rules}, resources_checked=int(data["resources_checked"]),
            files_checked=int(data["files_checked"]), packs=tuple(data["packs"]),
            clusters=tuple(data["clusters"]), tool_version=str(data["tool_version"]),
            errors=tuple(data["errors"]), engines=tuple(data["engines"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class BaseCache:
    """A folder of base results, one file per key (``base-<key>.json``)."""

    def __init__(self, folder: Path, root: Path) -> None:
        folder = folder.resolve()
        for inside in {root.resolve(), _git_top(root)}:
            if inside is not None and (folder == inside or inside in folder.parents):
                raise ConfigError(
                    f"--cache-dir {folder} is inside the repository {inside}: a pull request "
                    "could commit entries there; keep the cache outside the checkout (e.g. "
                    "${{ runner.temp }}/gitops-checker-cache)")
        self.folder = folder
        self.hits = self.misses = 0

    def _path(self, key: str) -> Path:
        return self.folder / f"base-{key}.json"

    def get(self, key: str) -> Report | None:
        """The base report stored under ``key``, or None (absent, unreadable, not this key)."""
        path = self._path(key)
        try:
            if path.is_symlink() or not path.is_file():
                self.misses += 1
                return None
            report = load(path.read_text(encoding="utf-8"), key)
        except (OSError, UnicodeDecodeError):
            report = None
        if report is None:
            self.misses += 1
        else:
            self.hits += 1
        return report

    def put(self, key: str, report: Report) -> None:
        """Store ``report`` under ``key`` (atomically: a reader sees all of it or nothing).
        A base with tool errors is not stored: it is evaluated again next time."""
        if report.errors:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".base-", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(dump(report, key))
            os.replace(tmp, self._path(key))
        except OSError as err:
            Path(tmp).unlink(missing_ok=True)
            raise ConfigError(f"cannot write the base cache {self.folder}: {err.strerror}"
                              ) from None


def _git_top(root: Path) -> Path | None:
    from checker.errors import InputError
    from checker.overview.git import Git

    try:
        with Git(root) as git:
            return git.top.resolve()
    except InputError:
        return None
