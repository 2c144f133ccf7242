"""Where live objects come from: the ``SnapshotSource`` interface and the file source.

A file may be our own snapshot (``kind: ClusterSnapshot``, written by ``gitops-checker
snapshot``), the output of ``kubectl get ... -o yaml`` (a ``List``), or multi-document YAML.
Secret values are replaced by keyed hashes as soon as they are read (see ``secrets``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from checker.drift.applied import evidence
from checker.drift.secrets import (
    SECRET_KINDS,
    SecretHasher,
    hash_secret_values,
    protect_annotations,
)
from checker.errors import InputError

SNAPSHOT_API_VERSION = "gitops-checker.io/v1alpha1"
SNAPSHOT_KIND = "ClusterSnapshot"

try:  # libyaml is much faster on large exports
    _Loader: type[Any] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


def group_of(api_version: str) -> str:
    """API group of an apiVersion ('' for the core group)."""
    return api_version.rpartition("/")[0] if "/" in api_version else ""


@dataclass(frozen=True, order=True)
class KindRef:
    """A kind within its API group; versions do not matter for identity."""

    group: str
    kind: str

    def __str__(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


@dataclass(frozen=True, order=True)
class Unreadable:
    """A kind that could not be read, and why (its objects are never called missing)."""

    group: str
    kind: str
    reason: str

    @property
    def ref(self) -> KindRef:
        """The kind this is about."""
        return KindRef(self.group, self.kind)


@dataclass
class Snapshot:
    """Live objects plus what is known about their completeness.

    ``read_kinds`` lists the kinds read completely; an object of another kind in the desired
    state is not compared (it is reported as not covered, never as missing).
    ``not_searched`` lists kinds outside the desired state that could not be searched for
    GitOps-owned (unmanaged) objects. ``key_id`` identifies the key Secret values were hashed
    with. ``scopes`` holds what discovery said of each kind: True when namespaced.
    """

    objects: list[dict[str, Any]] = field(default_factory=list)
    read_kinds: set[KindRef] = field(default_factory=set)
    unreadable: list[Unreadable] = field(default_factory=list)
    not_searched: list[Unreadable] = field(default_factory=list)
    key_id: str = ""
    source: str = ""
    context: str = ""
    scopes: dict[KindRef, bool] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        """The snapshot file's content, in a deterministic order."""
        return {
            "apiVersion": SNAPSHOT_API_VERSION,
            "kind": SNAPSHOT_KIND,
            "context": self.context,
            "secretHashKeyId": self.key_id,
            "kinds": [{"group": k.group, "kind": k.kind} for k in sorted(self.read_kinds)],
            "unreadable": [{"group": u.group, "kind": u.kind, "reason": u.reason}
                           for u in sorted(set(self.unreadable))],
            "notSearched": [{"group": u.group, "kind": u.kind, "reason": u.reason}
                            for u in sorted(set(self.not_searched))],
            "items": sorted(self.objects, key=object_sort_key),
            "scopes": [{"group": k.group, "kind": k.kind, "namespaced": v}
                       for k, v in sorted(self.scopes.items())],
        }


def object_sort_key(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """Order objects by group, kind, namespace, name."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    return (group_of(str(obj.get("apiVersion", ""))), str(obj.get("kind", "")),
            str(meta.get("namespace", "") or ""), str(meta.get("name", "") or ""))


class SnapshotSource(Protocol):
    """Anything that yields a ``Snapshot``: a file, or a live cluster read."""

    def read(self) -> Snapshot:
        """Read the live objects. Raises ``CheckerError`` subclasses on failure."""
        ...


def protect(obj: Mapping[str, Any], hasher: SecretHasher) -> dict[str, Any]:
    """A live object as a snapshot may hold it: Secret values hashed, field sets value-free.

    ``managedFields`` and the last-applied annotation are reduced to value-free field sets
    (``applied.evidence``), which show fields the GitOps tool applied and Git no longer has.

    Annotations that copy an object (``last-applied-configuration``, kapp's ``original`` and
    ``original-diff``) are dropped from every object, and any other annotation whose value
    holds object data (a ``data``/``stringData`` key, a Secret, a patch of ``/data``) is
    replaced by its keyed hash: a copy of a Secret must not ride along in an annotation.
    """
    secret = obj.get("kind") in SECRET_KINDS
    original = obj.get("metadata")
    applied = evidence(original, secret=secret) if isinstance(original, Mapping) else []
    out = hash_secret_values(obj, hasher) if secret else dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, Mapping):
        meta = {k: v for k, v in meta.items() if k != "managedFields"}
        if applied:  # value-free: what the tools applied, for fields Git no longer declares
            meta["managedFields"] = applied
        out["metadata"] = protect_annotations(meta, hasher, secret=secret)
    return out


def write_snapshot(snapshot: Snapshot, path: Path) -> None:
    """Write a snapshot as JSON (a YAML subset), sorted, without timestamps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(snapshot.to_data(), indent=1, sort_keys=True) + "\n",
                    encoding="utf-8")


def _documents(text: str, name: str) -> list[Any]:
    try:
        return [json.loads(text)]
    except ValueError:
        pass
    try:
        return list(yaml.load_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise InputError(f"{name}:{line}: cannot parse snapshot: {err.problem}") from err
    except yaml.YAMLError as err:
        raise InputError(f"{name}: cannot parse snapshot: {err}") from err


def _is_list(doc: Mapping[str, Any]) -> bool:
    return str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list)


def _objects(docs: Iterable[Any]) -> Iterable[dict[str, Any]]:
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        if _is_list(doc):
            yield from _objects(doc["items"])
        elif isinstance(doc.get("apiVersion"), str) and isinstance(doc.get("kind"), str):
            yield doc


def parse_kind(text: str) -> KindRef:
    """``Deployment.apps`` (or ``Service``) as a kind; ``kind.group`` as ``--kind`` takes it."""
    kind, _, group = text.strip().partition(".")
    if not kind:
        raise InputError(f"{text!r} is not a kind (expected Kind or Kind.group)")
    return KindRef(group, kind)


class FileSource:
    """A snapshot file: ours, ``kubectl get -o yaml`` output, or multi-document YAML."""

    def __init__(self, path: Path, hasher: SecretHasher, display: str | None = None,
                 kinds: Iterable[KindRef] = ()) -> None:
        self.path = path
        self.hasher = hasher
        self.display = display or str(path)
        self.kinds = frozenset(kinds)  # kinds a foreign file was exported with, if known

    def read(self) -> Snapshot:
        """Parse the file; Secret values of foreign formats are hashed on read."""
        try:
            raw = self.path.read_bytes()
        except OSError as err:
            raise InputError(f"{self.display}: cannot read snapshot: {err.strerror}") from err
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise InputError(f"{self.display}: snapshot is not UTF-8") from err
        docs = _documents(text, self.display)
        first = docs[0] if docs else None
        if isinstance(first, dict) and first.get("kind") == SNAPSHOT_KIND:
            return self._ours(first)
        objects = [protect(o, self.hasher) for o in _objects(docs)]
        lists = any(isinstance(d, dict) and _is_list(d) for d in docs)
        if not objects and not lists:
            raise InputError(f"{self.display}: no Kubernetes objects in snapshot")
        # A kubectl export does not say which kinds it was made from: a kind that occurs was
        # read; one that does not may have been deleted, or never asked for, so it is not
        # compared unless declared with ``kinds``. An empty List is a valid export.
        kinds = {KindRef(group_of(o["apiVersion"]), o["kind"]) for o in objects} | self.kinds
        return Snapshot(objects=objects, read_kinds=kinds, key_id=self.hasher.key_id,
                        source=self.display)

    def _ours(self, data: dict[str, Any]) -> Snapshot:
        if data.get("apiVersion") != SNAPSHOT_API_VERSION:
            raise InputError(f"{self.display}: unsupported snapshot apiVersion "
                             f"{data.get('apiVersion')!r} (expected {SNAPSHOT_API_VERSION})")
        try:
            kinds = {KindRef(str(k["group"]), str(k["kind"])) for k in data.get("kinds") or []}
            unreadable = [Unreadable(str(u["group"]), str(u["kind"]), str(u["reason"]))
                          for u in data.get("unreadable") or []]
            not_searched = [Unreadable(str(u["group"]), str(u["kind"]), str(u["reason"]))
                            for u in data.get("notSearched") or []]
            scopes = {KindRef(str(k["group"]), str(k["kind"])): bool(k["namespaced"])
                      for k in data.get("scopes") or []}
        except (KeyError, TypeError) as err:
            raise InputError(f"{self.display}: malformed snapshot header: {err}") from err
        key_id = str(data.get("secretHashKeyId") or "")
        items = [o for o in _objects(data.get("items") or [])]
        # Values in our format are hashed already; anything unhashed is hashed now.
        objects = [protect(o, self.hasher) for o in items]
        return Snapshot(objects=objects, read_kinds=kinds, unreadable=unreadable,
                        not_searched=not_searched, key_id=key_id, source=self.display,
                        context=str(data.get("context", "")), scopes=scopes)
