"""Field marks of rendered objects that Kustomize patches changed.

A Kustomize build reorders and edits lists (a strategic-merge patch puts its new ``env`` entries
first, a JSON 6902 ``add`` inserts at an index), so the index paths of a rendered object are
not those of its base file. For an object that a patch transformer acted on (Kustomize says so
in ``alpha.config.kubernetes.io/transformations``, with ``buildMetadata:
[transformerAnnotations]``), the marks are rebuilt from the rendered object itself:

* every rendered field is paired with the base file's field by list identity (a ``name``,
  ``mountPath``, ``containerPort`` ... key, else equal values, else the same position in a list
  of the same length), never by index alone, and points at the base's line;
* then the patches of the kustomizations that acted on it, in the order Kustomize ran them:
  a scalar a patch sets to the rendered value points at the patch's line, and so does a
  mapping or list item that only a patch has; a JSON 6902 ``add``/``replace`` value points at
  its op.

A patch is only used on an object its target (or, for a strategic-merge patch without one,
its kind and name) selects, and only where its value is the rendered one, so a patch that a
later one overrode, or one of a sibling object, leaves the marks alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from checker.load import workspace
from checker.load.objects import read_documents, relpath
from checker.load.yamlfile import SAFE_LOADER, Document, YamlProblem, parse_documents
from checker.model import FieldPath, SourceLocation

TRANSFORMATIONS = "alpha.config.kubernetes.io/transformations"
PATCH_TRANSFORMERS = frozenset({"PatchTransformer", "PatchStrategicMergeTransformer",
                                "PatchJson6902Transformer"})
# Keys that identify an item of a list (the strategic-merge keys of the built-in kinds).
IDENTITY_KEYS = ("name", "mountPath", "devicePath", "containerPort", "port", "ip")
# Items compared to pair two lists without an identity key, at most (a longer list that a patch
# changed is paired by position, if its length is unchanged, else not at all).
MAX_PAIRING = 40_000
# An untargeted strategic-merge patch names its object with these; they set nothing.
_SELECTOR_FIELDS = frozenset({("apiVersion",), ("kind",), ("metadata", "name"),
                              ("metadata", "namespace")})

# a line whose value is a block scalar (``patch: |-``, ``- |``): the text starts on the next line
_BLOCK = re.compile(r"(?:^|:|-)\s*[|>][-+1-9]*\s*(?:#.*)?$")

Span = tuple[int, int, int, int]
Where = tuple[str, Span]


@dataclass(frozen=True)
class Patch:
    """One patch document of a kustomization, with the spans of its file."""

    rel: str                           # repository path of the file holding it
    data: Any                          # a strategic-merge object, or a JSON 6902 op list
    spans: Mapping[FieldPath, Span]
    target: Mapping[str, Any]          # the entry's target ({} when it has none)
    shift: tuple[int, int] = (0, 0)    # lines and columns of inline patch text in its file
    whole: Span | None = None          # inline text that is not a block scalar: its span

    @property
    def json6902(self) -> bool:
        """A list of operations (Kustomize reads such a patch as JSON 6902)."""
        return isinstance(self.data, list)

    def where(self, path: FieldPath) -> Where | None:
        """File and span of a field of the patch."""
        if self.whole is not None:
            return self.rel, self.whole
        span = self.spans.get(path)
        if span is None:
            return None
        lines, cols = self.shift
        return self.rel, (span[0] + lines, span[1] + cols, span[2] + lines, span[3] + cols)


class RenderedMarks(Mapping[FieldPath, SourceLocation]):
    """Field path of a rendered object -> where in the repository it was set."""

    __slots__ = ("_where",)

    def __init__(self, where: Mapping[FieldPath, Where]) -> None:
        self._where = where

    def __getitem__(self, key: FieldPath) -> SourceLocation:
        rel, s = self._where[tuple(key)]
        return SourceLocation(rel, s[0], s[1], s[2], s[3])

    def __iter__(self) -> Iterator[FieldPath]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


def strip_transformations(data: dict[str, Any]) -> list[str]:
    """Remove Kustomize's transformations annotation; the ``configuredIn`` of its patch
    transformers, first appearance first (the order Kustomize ran them)."""
    meta = data.get("metadata")
    notes = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(notes, dict) or TRANSFORMATIONS not in notes:
        return []
    raw = notes.pop(TRANSFORMATIONS)
    if not notes and isinstance(meta, dict):
        del meta["annotations"]
    try:
        entries = yaml.load(raw, Loader=SAFE_LOADER) if isinstance(raw, str) else None
    except yaml.YAMLError:
        return []
    out: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        by = entry.get("configuredBy")
        where = entry.get("configuredIn")
        if (isinstance(by, dict) and by.get("kind") in PATCH_TRANSFORMERS
                and isinstance(where, str) and "://" not in where and where not in out):
            out.append(where)
    return out


class PatchIndex:
    """The patches of kustomization files, read once per build."""

    def __init__(self, root: Path, copies: Mapping[Path, Path] | None = None) -> None:
        self.root = root
        self.copies = copies or {}
        self._cache: dict[Path, list[Patch]] = {}

    def _original(self, path: Path) -> Path:
        return self.copies.get(path, path)

    def patches(self, kfile: Path) -> list[Patch]:
        """Every patch of one kustomization file: ``patches``, ``patchesStrategicMerge``,
        ``patchesJson6902``, each entry's documents in order."""
        if kfile not in self._cache:
            self._cache[kfile] = self._read(kfile)
        return self._cache[kfile]

    def _read(self, kfile: Path) -> list[Patch]:
        original = self._original(kfile)
        if not workspace.resolves_inside(original, self.root):
            return []  # the checker's own wrapper (Flux's and Argo CD's patches are theirs)
        rel = relpath(original, self.root)
        docs, _ = read_documents(kfile, rel, None)
        doc = docs[0] if docs else None
        if doc is None or not isinstance(doc.data, dict):
            return []
        try:
            lines = kfile.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        out: list[Patch] = []
        for field in ("patches", "patchesStrategicMerge", "patchesJson6902"):
            entries = doc.data.get(field)
            for index, entry in enumerate(entries if isinstance(entries, list) else []):
                at: FieldPath = (field, index)
                target: Mapping[str, Any] = {}
                if isinstance(entry, dict):
                    selector = entry.get("target")
                    target = selector if isinstance(selector, dict) else {}
                    if isinstance(entry.get("path"), str):
                        out += self._file(kfile.parent / entry["path"], target)
                    elif isinstance(entry.get("patch"), str):
                        out += _inline(entry["patch"], doc, (*at, "patch"), rel, lines, target)
                elif isinstance(entry, str):
                    if "\n" in entry or entry.lstrip().startswith(("{", "[")):
                        out += _inline(entry, doc, at, rel, lines, target)
                    else:
                        out += self._file(kfile.parent / entry, target)
        return out

    def _file(self, file: Path, target: Mapping[str, Any]) -> list[Patch]:
        file = Path(os.path.normpath(file))
        original = self._original(file)
        if not workspace.resolves_inside(original, self.root):
            return []
        docs, _ = read_documents(file, relpath(original, self.root), self.root)
        return [Patch(relpath(original, self.root), d.data, d.spans, target) for d in docs]


def _inline(text: str, doc: Document, at: FieldPath, rel: str, lines: Sequence[str],
            target: Mapping[str, Any]) -> list[Patch]:
    span = doc.spans.get(at)
    if span is None:
        return []
    line = lines[span[0] - 1] if 0 < span[0] <= len(lines) else ""
    block = _BLOCK.search(line) is not None
    shift, whole = (0, 0), None
    if block:  # content starts on the next line, at the first content line's indentation
        following = next((x for x in lines[span[0]:] if x.strip()), "")
        shift = (span[0], len(following) - len(following.lstrip(" ")))
    else:
        whole = span
    out = []
    for item in parse_documents(text):
        if isinstance(item, YamlProblem):
            break  # Kustomize fails on it and the build reports that
        out.append(Patch(rel, item.data, item.spans, target, shift, whole))
    return out


def _identity(*lists: Sequence[Any]) -> str | None:
    """The key that identifies every item of these lists, unique within each."""
    for key in IDENTITY_KEYS:
        ok = True
        for items in lists:
            values = [i.get(key) if isinstance(i, dict) else None for i in items]
            if any(v is None or isinstance(v, (dict, list)) for v in values) or (
                    len(set(map(str, values))) != len(values)):
                ok = False
                break
        if ok and all(lists):
            return key
    return None


def _pairs(rendered: Sequence[Any], source: Sequence[Any]) -> tuple[list[tuple[int, int]],
                                                                    str | None]:
    """(rendered index, source index) of the items that are the same item, and the key."""
    if len(rendered) == len(source) and rendered == source:
        return [(i, i) for i in range(len(source))], None  # untouched: the usual case
    key = _identity(rendered, source)
    if key is not None:
        by_key = {str(item[key]): i for i, item in enumerate(rendered)}
        return [(by_key[str(item[key])], j) for j, item in enumerate(source)
                if str(item[key]) in by_key], key
    pairs: list[tuple[int, int]] = []
    used: set[int] = set()
    if len(rendered) * len(source) <= MAX_PAIRING:
        for j, item in enumerate(source):
            i = next((i for i, r in enumerate(rendered) if i not in used and r == item), None)
            if i is not None:
                used.add(i)
                pairs.append((i, j))
    if len(rendered) == len(source):
        taken = {j for _, j in pairs}
        pairs += [(j, j) for j in range(len(source)) if j not in taken and j not in used]
    return pairs, None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return bool(a == b)
    return a == b or (a is not None and b is not None and str(a) == str(b)
                      and not isinstance(a, bool) and not isinstance(b, bool))


def _base(rendered: Any, source: Any, rpath: FieldPath, spath: FieldPath, rel: str,
          spans: Mapping[FieldPath, Span], out: dict[FieldPath, Where]) -> None:
    span = spans.get(spath)
    if span is not None:
        out[rpath] = (rel, span)
    if isinstance(rendered, dict) and isinstance(source, dict):
        for key, value in rendered.items():
            if key in source:
                _base(value, source[key], (*rpath, key), (*spath, key), rel, spans, out)
    elif isinstance(rendered, list) and isinstance(source, list):
        for i, j in _pairs(rendered, source)[0]:
            _base(rendered[i], source[j], (*rpath, i), (*spath, j), rel, spans, out)


def _overlay(rendered: Any, value: Any, rpath: FieldPath, ppath: FieldPath, patch: Patch,
             out: dict[FieldPath, Where], replace: bool, skip: str | None = None) -> None:
    """Marks of the fields ``value`` (part of a patch) set in ``rendered``."""
    if isinstance(rendered, dict) and isinstance(value, dict):
        if value.get("$patch") == "delete":
            return
        for key, item in value.items():
            if not isinstance(key, str) or key.startswith("$") or key == skip or (
                    (*rpath, key) in _SELECTOR_FIELDS and not patch.json6902) or (
                    key not in rendered):
                continue
            _node(rendered[key], item, (*rpath, key), (*ppath, key), patch, out, replace)
    elif isinstance(rendered, list) and isinstance(value, list):
        kept = [n for n, v in enumerate(value) if not (isinstance(v, dict) and "$patch" in v)]
        pairs, key = _pairs(rendered, [value[n] for n in kept])
        for i, j in pairs:
            known = (*rpath, i) in out and not replace
            _node(rendered[i], value[kept[j]], (*rpath, i), (*ppath, kept[j]), patch, out,
                  replace, key if known else None)


def _node(rendered: Any, value: Any, rpath: FieldPath, ppath: FieldPath, patch: Patch,
          out: dict[FieldPath, Where], replace: bool, skip: str | None = None) -> None:
    where = patch.where(ppath)
    if isinstance(value, (dict, list)):
        if where is not None and (replace or rpath not in out):
            out[rpath] = where  # a mapping or item only the patch has (or an op's value)
        _overlay(rendered, value, rpath, ppath, patch, out, replace, skip)
    elif where is not None and _same(rendered, value):
        out[rpath] = where


def _json_path(body: Any, pointer: str, value: Any) -> FieldPath | None:
    """The rendered path a JSON 6902 ``add``/``replace`` wrote ``value`` to, if it is there."""
    if not pointer.startswith("/"):
        return None
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]
    node: Any = body
    path: list[str | int] = []
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        if isinstance(node, dict):
            if part not in node:
                return None
            path.append(part)
            node = node[part]
        elif isinstance(node, list):
            index = int(part) if part.isdigit() else None
            # the last step: later patches may have moved it, so the item with this value
            if last and (index is None or index >= len(node)
                         or not _same(node[index], value)):
                index = next((i for i in range(len(node) - 1, -1, -1)
                              if _same(node[i], value)), None)
            if index is None or index >= len(node):
                return None
            path.append(index)
            node = node[index]
        else:
            return None
    return tuple(path) if _same(node, value) else None


def _selects(patch: Patch, body: Mapping[str, Any], source_name: str) -> bool:
    meta = body.get("metadata") if isinstance(body.get("metadata"), Mapping) else {}
    names = {str(meta.get("name", "")), source_name} if isinstance(meta, Mapping) else set()
    if patch.target:
        api = str(body.get("apiVersion", ""))
        group, _, version = api.rpartition("/")
        actual = {"kind": str(body.get("kind", "")), "group": group, "version": version,
                  "namespace": str(meta.get("namespace", "")) if isinstance(meta, Mapping)
                  else ""}
        for key in ("kind", "group", "version"):
            want = patch.target.get(key)
            if isinstance(want, str) and want and want != actual[key]:
                return False
        for key, candidates in (("name", names), ("namespace", {actual["namespace"]})):
            want = patch.target.get(key)
            if isinstance(want, str) and want and not any(
                    _matches(want, c) for c in candidates):
                return False
        return True
    if patch.json6902 or not isinstance(patch.data, dict):
        return False
    pmeta = patch.data.get("metadata")
    name = pmeta.get("name") if isinstance(pmeta, dict) else None
    return patch.data.get("kind") == body.get("kind") and isinstance(name, str) and (
        name in names or any(name in n for n in names if n))


def _matches(pattern: str, text: str) -> bool:
    try:
        return re.fullmatch(pattern, text) is not None
    except re.error:
        return pattern == text


def rendered_marks(body: Mapping[str, Any], base: tuple[str, Document] | None,
                   patches: Sequence[Patch]) -> RenderedMarks:
    """Marks of a rendered object: base fields by identity, then what each patch set."""
    out: dict[FieldPath, Where] = {}
    source_name = ""
    if base is not None:
        rel, doc = base
        _base(body, doc.data, (), (), rel, doc.spans, out)
        meta = doc.data.get("metadata") if isinstance(doc.data, dict) else None
        source_name = str(meta.get("name", "")) if isinstance(meta, dict) else ""
    for patch in patches:
        if not _selects(patch, body, source_name):
            continue
        if not patch.json6902:
            _overlay(body, patch.data, (), (), patch, out, replace=False)
            continue
        for n, op in enumerate(patch.data):
            if not isinstance(op, dict) or op.get("op") not in ("add", "replace") or (
                    "value" not in op or not isinstance(op.get("path"), str)):
                continue
            path = _json_path(body, op["path"], op["value"])
            if path is None:
                continue
            node: Any = body
            for part in path:
                node = node[part]
            _node(node, op["value"], path, (n, "value"), patch, out, replace=True)
    return RenderedMarks(out)
