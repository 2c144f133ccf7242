"""Four eyes: an acceptance counts only when the base ref already has it as it is now."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from checker.accept.model import (
    _TEMPLATE_PATHS,
    OWN_EXPIRES,
    OWN_OWNER,
    Acceptance,
    Selector,
    _annotations,
)
from checker.load.yamlfile import Document


class BaseApproval:
    """Whether an acceptance is on the base ref exactly as it is now (four eyes).

    ``base`` is the branch the change will be merged into (a pull request's base commit),
    read through git; paths are relative to ``root``, a folder of the repository. A file
    acceptance is approved when the same file at ``base`` has an entry with the same id and the
    same policy, resources, justification, owner, expiry, approver and ticket. An annotation
    is approved when, in the same file at ``base``, an object of the same kind and name carries
    the same annotation with the same text (and the same owner and expiry annotations). A
    file or a commit git cannot read approves nothing.
    """

    def __init__(self, root: Path, base: str) -> None:
        from checker.errors import InputError
        from checker.overview.git import Git

        if not base or base.startswith("-"):
            raise InputError(f"invalid acceptance base {base!r}")
        self.base = base
        self._git = Git(root)
        try:
            commit = self._git.run("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}",
                                   ok=(0, 1)).strip()
            if not commit:
                raise InputError(
                    f"acceptance base {base}: no such commit here; fetch it (actions/checkout "
                    "with fetch-depth: 0, or 2 for a pull request's merge commit)")
            self.commit = commit
            top = self._git.top.resolve()
            rel = root.resolve().relative_to(top)
            self.prefix = "" if str(rel) == "." else rel.as_posix() + "/"
        finally:
            self._git.close()
        self._files: dict[str, bytes | None] = {}
        self._cache: dict[tuple[str, int, str], bool] = {}

    def blob(self, path: str) -> bytes | None:
        """The bytes of ``path`` (relative to the root) at the base commit, or None."""
        return self._blob(path)

    def folder(self, path: str) -> dict[str, bytes]:
        """The regular files directly in folder ``path`` (relative to the root) at the base
        commit, by name (empty when the folder is not there)."""
        proc = self._git.call("ls-tree", "-z", f"{self.commit}:{self.prefix}{path}")
        if proc.returncode != 0:
            return {}
        out: dict[str, bytes] = {}
        for entry in proc.stdout.split(b"\0"):
            meta, _, name = entry.partition(b"\t")
            if meta.split(b" ")[:2] == [b"100644", b"blob"] or meta.startswith(b"100755 blob"):
                text = name.decode("utf-8", "replace")
                blob = self._blob(f"{path}/{text}")
                if blob is not None:
                    out[text] = blob
        return out

    def _blob(self, path: str) -> bytes | None:
        if path not in self._files:
            proc = self._git.call("cat-file", "blob", f"{self.commit}:{self.prefix}{path}")
            self._files[path] = proc.stdout if proc.returncode == 0 else None
        return self._files[path]

    def __call__(self, a: Acceptance) -> bool:
        key = (a.location.path, a.location.line, a.id)
        if key not in self._cache:
            self._cache[key] = (self._file_approved(a) if a.kind == "file"
                                else self._annotation_approved(a))
        return self._cache[key]

    def _documents(self, path: str) -> list[Any]:
        from checker.load.yamlfile import YamlProblem, decode, parse_documents

        blob = self._blob(path)
        if blob is None:
            return []
        try:
            return [d.data for d in parse_documents(decode(blob)) if isinstance(d, Document)]
        except YamlProblem:
            return []

    def _file_approved(self, a: Acceptance) -> bool:
        for doc in self._documents(a.location.path):
            entries = doc.get("acceptances") if isinstance(doc, dict) else None
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and entry.get("id") == a.id:
                    return _same_entry(entry, a)
        return False

    def _annotation_approved(self, a: Acceptance) -> bool:
        kind, name = a.holder
        for doc in self._documents(a.location.path):
            if not isinstance(doc, dict) or doc.get("kind") != kind:
                continue
            meta = doc.get("metadata")
            if not isinstance(meta, dict) or str(meta.get("name", "")) != name:
                continue
            for path in _TEMPLATE_PATHS:
                notes = _annotations(doc, path)
                if a.id not in notes:
                    continue
                reason = " ".join(notes[a.id].split()) or "(no reason given)"
                if (reason == a.justification and notes.get(OWN_OWNER, "") == a.owner
                        and _date(notes.get(OWN_EXPIRES)) == a.expires):
                    return True
        return False


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _same_entry(entry: Mapping[str, Any], a: Acceptance) -> bool:
    """An acceptance file entry of the base ref equals the acceptance as loaded now."""
    try:
        expires = dt.date.fromisoformat(str(entry.get("expires")))
        selectors = tuple(Selector(
            cluster=str(s.get("cluster", "*")), namespace=str(s.get("namespace", "*")),
            kind=str(s.get("kind", "*")), name=str(s.get("name", "*")),
            labels={str(k): str(v) for k, v in (s.get("labels") or {}).items()},
        ) for s in entry.get("resources") or [])
    except (ValueError, TypeError, AttributeError):
        return False
    return (str(entry.get("policy")) == a.policy and expires == a.expires
            and selectors == a.selectors
            and [dict(s.labels) for s in selectors] == [dict(s.labels) for s in a.selectors]
            and " ".join(str(entry.get("justification", "")).split()) == a.justification
            and str(entry.get("owner")) == a.owner
            and str(entry.get("approver", "")) == a.approver
            and str(entry.get("ticket", "")) == a.ticket)
