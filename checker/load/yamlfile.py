"""Parse YAML into plain data plus a map of field path -> source position.

PyYAML's composer gives every node a start and end mark; we build the Python values ourselves
so that duplicate keys, alias bombs and runaway nesting become clear input errors with a line
number instead of silent data loss, a crash or unbounded memory.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from checker.load import godecode
from checker.model import FieldPath, SourceLocation

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_NODES_PER_DOCUMENT = 1_000_000
MAX_DEPTH = 200
# Alias expansion: values built beyond what a file spells out (at most one value per
# character, so an alias-free file never spends any), per file and per run. Without the file
# budget a 7.8 KB file of 30 near-limit documents builds 30 million values (> 4 GB).
MAX_EXPANSION_PER_FILE = 1_000_000
MAX_EXPANSION_PER_RUN = 4_000_000

Span = tuple[int, int, int, int]

_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_BINARY = "tag:yaml.org,2002:binary"
_MERGE = "tag:yaml.org,2002:merge"
_AS_TEXT = frozenset({_STR, _TIMESTAMP})
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

_ScalarNode = yaml.ScalarNode
_SequenceNode = yaml.SequenceNode
_MappingNode = yaml.MappingNode

# Tags of plain scalars seen before. Kubernetes manifests repeat the same few thousand keys
# and values, and PyYAML resolves each scalar by trying regular expressions in Python, once
# per occurrence. Bounded: cleared when full; long values are never kept.
_RESOLVED: dict[str, str] = {}
_RESOLVED_MAX = 65_536
_RESOLVED_MAX_LENGTH = 128
_base_resolve: Any = yaml.resolver.BaseResolver.resolve


class _MemoResolver:
    """``resolve`` with a memo for plain scalars; the same tags as PyYAML's safe loader.

    Without path resolvers (none are registered for the safe loader) the tag of a plain
    scalar depends only on its text, every other scalar is a string, and collections get
    the default tags, so the memo cannot change a result. The composer of libyaml also
    calls ``descend_resolver``/``ascend_resolver`` around every node only to maintain path
    resolvers; those calls are made no-ops here.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        """The tag of a node: memoized implicit resolution of plain scalars."""
        if kind is _ScalarNode:
            if implicit[0]:
                tag = _RESOLVED.get(value)
                if tag is None:
                    tag = _base_resolve(self, kind, value, implicit)
                    if len(value) <= _RESOLVED_MAX_LENGTH:
                        if len(_RESOLVED) >= _RESOLVED_MAX:
                            _RESOLVED.clear()
                        _RESOLVED[value] = tag
                return tag
            return _STR
        return _MAP if kind is _MappingNode else _SEQ

    # Nothing to track without path resolvers. libyaml's composer calls these twice per node,
    # so they are C callables that ignore their arguments rather than Python functions
    # (1.7% fewer instructions per load): slice(parent, index) makes a throw-away slice,
    # tuple() returns ().
    descend_resolver = slice
    ascend_resolver = tuple


def _loader_class() -> type[Any]:
    base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is much faster
    if base.yaml_path_resolvers:  # pragma: no cover - only if someone registered one
        return base
    return type("_Loader", (_MemoResolver, base), {})


_Loader = _loader_class()

# Tags of plain scalars under the Kubernetes decoder's rules (``checker.load.godecode``).
_GO_RESOLVED: dict[str, str] = {}


class _GoResolver(_MemoResolver):
    """Plain scalars resolved as go-yaml v2 resolves them (what kubectl and Flux apply)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        """The tag of a node under the Kubernetes decoder's rules; memoized like the base."""
        if kind is _ScalarNode:
            if implicit[0]:
                tag = _GO_RESOLVED.get(value)
                if tag is None:
                    tag = godecode.tag_of(value)
                    if len(value) <= _RESOLVED_MAX_LENGTH:
                        if len(_GO_RESOLVED) >= _RESOLVED_MAX:
                            _GO_RESOLVED.clear()
                        _GO_RESOLVED[value] = tag
                return tag
            return _STR
        return _MAP if kind is _MappingNode else _SEQ


def _k8s_loader_class() -> type[Any]:
    base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return type("_K8sLoader", (_GoResolver, base), {})


_K8sLoader = _k8s_loader_class()

# Scalars of the bool, int, float and null tags become immutable values; repeated texts
# (ports, replicas, true/false) reuse the value built the first time. Bounded like _RESOLVED.
_VALUES: dict[tuple[str, str], Any] = {}
_MISSING = object()


class YamlProblem(Exception):
    """A document could not be turned into data; carries the 1-based line."""

    def __init__(self, message: str, line: int, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


NOTE_DUPLICATE_KEY = "duplicate-key"
NOTE_INVALID_TEXT = "invalid-text"
Note = tuple[str, str, int, int]
"""Something read as the API server reads it, but worth saying: (kind, message, line, column),
kind ``duplicate-key`` or ``invalid-text``."""


@dataclass(frozen=True)
class Document:
    """One YAML document: its value, the span of each field and its first line.

    ``notes`` are what was decoded the way the API server decodes it but deserves a finding
    (a repeated key: the last value wins; a lone surrogate in JSON: U+FFFD).
    """

    data: Any
    spans: Mapping[FieldPath, Span]
    line: int
    end_line: int
    notes: tuple[Note, ...] = ()

    def location(self, path: str, field: FieldPath = ()) -> SourceLocation:
        """SourceLocation of ``field`` (or of the whole document)."""
        span = self.spans.get(field)
        if span is None:
            return SourceLocation(path, self.line, 1, self.end_line, 1)
        return SourceLocation(path, span[0], span[1], span[2], span[3])


def _span(node: yaml.Node) -> Span:
    start, end = node.start_mark, node.end_mark
    return (start.line + 1, start.column + 1, end.line + 1, end.column + 1)


class ExpansionBudget:
    """Values that aliases may still add in this run (see ``MAX_EXPANSION_PER_RUN``).

    ``checker.load.load_paths`` opens one per call unless a caller (a whole scan) opened one
    around several calls with ``run_budget``.
    """

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


_RUN: list[ExpansionBudget] = []


@contextlib.contextmanager
def run_budget(limit: int | None = None) -> Iterator[ExpansionBudget]:
    """Share one expansion budget between every parse inside the block (nested: the outer)."""
    if _RUN:
        yield _RUN[-1]
        return
    budget = ExpansionBudget(MAX_EXPANSION_PER_RUN if limit is None else limit)
    _RUN.append(budget)
    try:
        yield budget
    finally:
        _RUN.remove(budget)


def run_budget_now() -> ExpansionBudget:
    """The budget of the current run (a fresh one outside ``run_budget``)."""
    return _RUN[-1] if _RUN else ExpansionBudget(MAX_EXPANSION_PER_RUN)


_budget = run_budget_now


class _TooMany(Exception):
    """Raised by the builder at its node limit; ``parse_documents`` says which limit."""

    def __init__(self, node: yaml.Node) -> None:
        super().__init__()
        self.line = node.start_mark.line + 1


def _too_many(node: yaml.Node) -> _TooMany:
    return _TooMany(node)


class _Builder:
    """Python values and the span of every field path, from a composed node tree.

    The hot loops handle the common case inline (string keys, scalar values); everything
    else goes through ``build`` and ``_scalar``. Nodes are counted in document order, so
    the limits report the same node whichever path counted it.
    """

    __slots__ = ("limit", "nodes", "notes", "spans")

    def __init__(self, nodes: int = 0, limit: int = MAX_NODES_PER_DOCUMENT) -> None:
        self.nodes = nodes
        self.limit = limit
        self.spans: dict[FieldPath, Span] = {}
        self.notes: list[Note] = []

    def build(self, node: yaml.Node, path: FieldPath, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > self.limit:
            raise _too_many(node)
        if depth > MAX_DEPTH:
            raise YamlProblem(
                f"document is nested more than {MAX_DEPTH} levels deep",
                node.start_mark.line + 1,
            )
        if isinstance(node, _MappingNode):
            return self._mapping(node, path, depth + 1)
        if isinstance(node, _SequenceNode):
            return self._sequence(node, path, depth + 1)
        return _scalar(node)

    def _mapping(self, node: yaml.MappingNode, path: FieldPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        spans = self.spans
        inline = depth <= MAX_DEPTH  # scalar children pass the depth check
        merged: set[str] | None = None  # keys that came from a merge ('<<') so far
        for key_node, value_node in node.value:
            if key_node.tag == _STR and key_node.__class__ is _ScalarNode:
                key = key_node.value
            elif key_node.tag == _MERGE and key_node.__class__ is _ScalarNode and (
                    key_node.value == "<<"):
                merged = self._merge(out, value_node, path, depth, merged)
                continue
            else:
                key = _key(key_node)
            if key in out:  # (keys from a merge are always in out: only then can they be)
                if merged is None or key not in merged:
                    self._duplicate(key, key_node, path)
                elif merged is not None:
                    merged.discard(key)
                self._drop(out, path, key)
            child = path + (key,)  # noqa: RUF005 - half the cost of (*path, key)
            start, end = key_node.start_mark, value_node.end_mark
            spans[child] = (start.line + 1, start.column + 1, end.line + 1, end.column + 1)
            if inline and value_node.__class__ is _ScalarNode:
                self.nodes += 1
                if self.nodes > self.limit:
                    raise _too_many(value_node)
                out[key] = value_node.value if value_node.tag == _STR else _scalar(value_node)
            else:
                out[key] = self.build(value_node, child, depth)
        return out

    def _duplicate(self, key: str, key_node: yaml.Node, path: FieldPath) -> None:
        where = ".".join(str(p) for p in (*path, key))
        self.notes.append((NOTE_DUPLICATE_KEY, f"duplicate key {where!r}: the Kubernetes "
                           "decoder keeps the last value, so that is what was checked",
                           key_node.start_mark.line + 1, key_node.start_mark.column + 1))

    def _drop(self, out: dict[str, Any], path: FieldPath, key: str) -> None:
        """Forget ``out[key]`` and the spans below it (it is set again, at the end)."""
        child = path + (key,)  # noqa: RUF005 - as above
        self.spans.pop(child, None)
        stack = [(child, out.pop(key))]
        while stack:
            at, value = stack.pop()
            if isinstance(value, dict | list):
                for sub, item in (value.items() if isinstance(value, dict)
                                  else enumerate(value)):
                    below = at + (sub,)  # noqa: RUF005 - as above
                    self.spans.pop(below, None)
                    stack.append((below, item))

    def _merge(self, out: dict[str, Any], value_node: yaml.Node, path: FieldPath, depth: int,
               merged: set[str] | None) -> set[str]:
        """``<<: *base`` or ``<<: [*a, *b]`` as go-yaml v2 applies it: in document order, the
        merged mappings set their keys (earlier ones in a list win), and keys written after
        the merge override them. Spans point at where the merged values are written."""
        if isinstance(value_node, _MappingNode):
            sources = [value_node]
        elif isinstance(value_node, _SequenceNode) and all(
                isinstance(item, _MappingNode) for item in value_node.value):
            sources = list(reversed(value_node.value))
        else:
            raise YamlProblem("map merge requires map or sequence of maps as the value",
                              value_node.start_mark.line + 1, value_node.start_mark.column + 1)
        merged = set() if merged is None else merged
        for source in sources:
            self.nodes += 1
            if self.nodes > self.limit:
                raise _too_many(source)
            if depth > MAX_DEPTH:
                raise YamlProblem(f"document is nested more than {MAX_DEPTH} levels deep",
                                  source.start_mark.line + 1)
            outer = self.spans
            self.spans = {}
            try:
                values = self._mapping(source, path, depth)
            finally:
                inner, self.spans = self.spans, outer
            for key in values:
                if key in out:
                    self._drop(out, path, key)
            out.update(values)
            outer.update(inner)
            merged.update(values)
        return merged

    def _sequence(self, node: yaml.SequenceNode, path: FieldPath, depth: int) -> list[Any]:
        items: list[Any] = []
        spans = self.spans
        inline = depth <= MAX_DEPTH
        for index, item in enumerate(node.value):
            child = path + (index,)  # noqa: RUF005 - as above
            start, end = item.start_mark, item.end_mark
            spans[child] = (start.line + 1, start.column + 1, end.line + 1, end.column + 1)
            if inline and item.__class__ is _ScalarNode:
                self.nodes += 1
                if self.nodes > self.limit:
                    raise _too_many(item)
                items.append(item.value if item.tag == _STR else _scalar(item))
            else:
                items.append(self.build(item, child, depth))
        return items


_GO_TAGS = frozenset({godecode.BOOL, godecode.INT, godecode.FLOAT, godecode.NULL})


def _key(node: yaml.Node) -> str:
    """The JSON key of a mapping key that is not a plain string (``1``, ``y``, ``1.5``)."""
    if not isinstance(node, _ScalarNode):
        raise YamlProblem(
            "mapping keys must be scalars", node.start_mark.line + 1,
            node.start_mark.column + 1,
        )
    tag = node.tag
    if tag in _GO_TAGS:
        try:
            return godecode.key_text(tag, _resolved_value(node))
        except godecode.Unrepresentable as err:
            raise YamlProblem(f"{err}: kubectl cannot convert this document to JSON",
                              node.start_mark.line + 1, node.start_mark.column + 1) from err
    key = _scalar(node)
    return key if isinstance(key, str) else _scalar_text(key)


def _resolved_value(node: yaml.Node) -> Any:
    """The go-yaml value of a bool/int/float/null scalar, before the JSON conversion."""
    try:
        return godecode.explicit(node.tag, node.value)
    except ValueError as err:  # e.g. '!!int abc'
        raise YamlProblem(
            f"{node.value!r} is not a valid {node.tag.rsplit(':', 1)[-1]}",
            node.start_mark.line + 1, node.start_mark.column + 1,
        ) from err


def _scalar(node: yaml.Node) -> Any:
    """The value of a scalar node as the API server receives it (``checker.load.godecode``):
    timestamps stay text, ``!!binary`` is decoded, as kubectl does."""
    tag = node.tag
    if tag == _BINARY and isinstance(node, _ScalarNode):
        try:
            return godecode.binary(str(node.value))
        except ValueError as err:
            raise YamlProblem(f"{err}: kubectl rejects the document",
                              node.start_mark.line + 1, node.start_mark.column + 1) from err
    if tag in _AS_TEXT or not isinstance(node, _ScalarNode) or tag == _MERGE:
        return str(node.value)
    if tag not in _GO_TAGS:  # collections tags on a scalar, application tags: PyYAML decides
        try:
            return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as err:
            raise YamlProblem(str(err.problem), node.start_mark.line + 1) from err
    key = (tag, node.value)
    value = _VALUES.get(key, _MISSING)
    if value is _MISSING:
        try:
            value = godecode.to_json(_resolved_value(node))
        except godecode.Unrepresentable as err:
            raise YamlProblem(
                f"{node.value!r} is not a number JSON can hold; kubectl rejects the document",
                node.start_mark.line + 1, node.start_mark.column + 1) from err
        if len(node.value) <= _RESOLVED_MAX_LENGTH:
            if len(_VALUES) >= _RESOLVED_MAX:
                _VALUES.clear()
            _VALUES[key] = value
    return value


def _scalar_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def decode(raw: bytes) -> str:
    """Decode file bytes as UTF-8 (BOM allowed); raise YamlProblem naming the line."""
    if len(raw) > MAX_FILE_BYTES:
        raise YamlProblem(f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB", 1)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise YamlProblem(f"file is not valid UTF-8 (byte 0x{raw[err.start]:02x})", line) from err


def parse_documents(text: str) -> Iterator[Document | YamlProblem]:
    """Yield each document, or a YamlProblem for one that cannot be read.

    After a syntax error the rest of the stream cannot be trusted, so parsing stops there.
    Values are budgeted: ``MAX_NODES_PER_DOCUMENT`` per document, and what aliases add beyond
    the file's own length per file (``MAX_EXPANSION_PER_FILE``) and per run (the current
    ``run_budget``); past a file or run budget the rest of the file is not read.
    """
    first = _LEADING_SPACE.match(text).end()  # type: ignore[union-attr]
    if text[first:first + 1] == "{":  # kubectl reads such a file as a stream of JSON objects
        json_items = _json_documents(text)
        if json_items is not None:
            yield from json_items
            return
    budget = _budget()
    spelled = len(text)
    file_limit = spelled + min(MAX_EXPANSION_PER_FILE, max(budget.left, 0))
    nodes = 0
    loader = _K8sLoader(text)
    try:
        while True:
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
            except yaml.MarkedYAMLError as err:
                mark = err.problem_mark or err.context_mark
                line = mark.line + 1 if mark is not None else 1
                column = mark.column + 1 if mark is not None else 1
                yield YamlProblem(f"invalid YAML: {err.problem or err.context}", line, column)
                return
            except yaml.YAMLError as err:
                yield YamlProblem(f"invalid YAML: {err}", 1)
                return
            except RecursionError:
                yield YamlProblem(f"document is nested more than {MAX_DEPTH} levels deep", 1)
                return
            if node is None:
                continue
            document_limit = nodes + MAX_NODES_PER_DOCUMENT
            builder = _Builder(nodes, min(document_limit, file_limit))
            try:
                data = builder.build(node, (), 0)
            except _TooMany as stop:
                if builder.limit == document_limit:
                    nodes = document_limit
                    yield YamlProblem(
                        f"document expands to more than {MAX_NODES_PER_DOCUMENT} values "
                        "(an alias bomb or an unreasonably large document)", stop.line)
                    continue
                nodes = file_limit
                which = ("file" if file_limit - spelled >= MAX_EXPANSION_PER_FILE
                         else "run (all files together)")
                yield YamlProblem(
                    f"aliases expand this file beyond the expansion budget of the {which} "
                    f"(an alias bomb); the rest of the file was not read", stop.line)
                return
            except YamlProblem as problem:
                nodes = builder.nodes
                yield problem
                continue
            nodes = builder.nodes
            builder.spans[()] = _span(node)
            yield Document(data, builder.spans, node.start_mark.line + 1, node.end_mark.line + 1,
                           tuple(builder.notes))
    finally:
        budget.left -= max(0, nodes - spelled)
        loader.dispose()


_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")
_LEADING_SPACE = re.compile(r"\s*")  # kubectl's sniff trims unicode.IsSpace
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_int(text: str) -> Any:
    return godecode.to_json(int(text))


def _json_float(text: str) -> Any:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text} is out of range")
    return godecode.to_json(value)


def _json_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return dict(pairs)  # the last of repeated keys wins, as in Go's encoding/json


_JSON = json.JSONDecoder(object_pairs_hook=_json_object, parse_int=_json_int,
                         parse_float=_json_float, parse_constant=_json_constant)


def _json_documents(text: str) -> list[Document | YamlProblem] | None:
    """A stream of JSON objects, decoded as kubectl decodes a file that starts with ``{``.

    Repeated keys: the last wins, plus a note; a lone surrogate escape becomes U+FFFD, plus a
    note; numbers as the API server reads them. Positions come from composing each object as
    YAML (JSON is YAML's flow style) where that works, else only the object's own lines.
    ``None`` when not even the first object is JSON: the caller reads the file as YAML, as
    Kustomize and Flux would.
    """
    out: list[Document | YamlProblem] = []
    at = _JSON_WHITESPACE.match(text).end()  # type: ignore[union-attr]
    while at < len(text):
        try:
            data, end = _JSON.raw_decode(text, at)
        except (ValueError, RecursionError) as err:
            if not out:
                return None
            line = text.count("\n", 0, at) + 1
            detail = err.msg if isinstance(err, json.JSONDecodeError) else str(err)
            out.append(YamlProblem(f"invalid JSON: {detail}", line))
            return out
        out.append(_json_document(text, at, end, data))
        at = _JSON_WHITESPACE.match(text, end).end()  # type: ignore[union-attr]
    return out


def _json_document(text: str, start: int, end: int, data: Any) -> Document:
    line = text.count("\n", 0, start)
    column = start - (text.rfind("\n", 0, start) + 1)
    source = text[start:end]
    spans: dict[FieldPath, Span] = {}  # the root first: not in the parser's order, not packed
    spans[()] = (line + 1, column + 1, line + source.count("\n") + 1,
                 end - (text.rfind("\n", 0, end) + 1) + 1)
    notes: list[Note] = []
    try:  # surrogate escapes are 6 characters like U+FFFD's: positions do not move
        node = yaml.compose(_SURROGATE_ESCAPE.sub("\\\\ufffd", source)
                            if "\\u" in source else source, Loader=_K8sLoader)
    except (yaml.YAMLError, RecursionError):
        node = None
    if node is not None:
        _json_spans(node, data, (), spans, notes, line, column)
    if _SURROGATE_ESCAPE.search(source):
        data = _replace_surrogates(data, (), spans, notes, line + 1)
    return Document(data, spans, line + 1, spans[()][2], tuple(notes))


def _json_spans(node: yaml.Node, data: Any, path: FieldPath, spans: dict[FieldPath, Span],
                notes: list[Note], line: int, column: int) -> None:
    """Spans of ``data``'s fields from the composed node tree of the same JSON text."""
    def span(first: yaml.Node, last: yaml.Node) -> Span:
        a, b = first.start_mark, last.end_mark
        return (a.line + line + 1, a.column + 1 + (column if a.line == 0 else 0),
                b.line + line + 1, b.column + 1 + (column if b.line == 0 else 0))

    stack = [(node, data, path)]
    while stack:
        current, value, at = stack.pop()
        if isinstance(current, _MappingNode) and isinstance(value, dict):
            last: dict[str, tuple[yaml.Node, yaml.Node]] = {}
            for key_node, value_node in current.value:
                key = key_node.value if isinstance(key_node, _ScalarNode) else None
                if not isinstance(key, str):
                    continue
                if key in last:
                    where = ".".join(str(p) for p in (*at, key))
                    notes.append((NOTE_DUPLICATE_KEY, f"duplicate key {where!r}: the "
                                  "Kubernetes decoder keeps the last value, so that is what "
                                  "was checked", key_node.start_mark.line + line + 1,
                                  key_node.start_mark.column + 1))
                last[key] = (key_node, value_node)
            for key, (key_node, value_node) in last.items():
                if key in value:
                    child = (*at, key)
                    spans[child] = span(key_node, value_node)
                    stack.append((value_node, value[key], child))
        elif isinstance(current, _SequenceNode) and isinstance(value, list) and len(
                current.value) == len(value):
            for index, (item_node, item) in enumerate(zip(current.value, value, strict=True)):
                child = (*at, index)
                spans[child] = span(item_node, item_node)
                stack.append((item_node, item, child))


def _replace_surrogates(value: Any, path: FieldPath, spans: Mapping[FieldPath, Span],
                        notes: list[Note], line: int) -> Any:
    """``value`` with lone surrogates replaced by U+FFFD (Go's JSON decoder does so)."""
    if isinstance(value, str):
        if _SURROGATE.search(value) is None:
            return value
        where = ".".join(str(p) for p in path) or "(top level)"
        at = spans.get(path)
        notes.append((NOTE_INVALID_TEXT, f"{where} holds a lone UTF-16 surrogate escape; the "
                      "API server receives U+FFFD (the replacement character) instead",
                      at[0] if at else line, at[1] if at else 1))
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            fixed = _replace_surrogates(key, (*path, key), spans, notes, line)
            out[fixed] = _replace_surrogates(item, (*path, key), spans, notes, line)
        return out
    if isinstance(value, list):
        return [_replace_surrogates(item, (*path, i), spans, notes, line)
                for i, item in enumerate(value)]
    return value


SAFE_LOADER: type[Any] = _Loader
"""The loader for plain reads (pack catalogs, Kustomize metadata): PyYAML's safe loader on
libyaml when PyYAML was built with it, with the memoized resolver above (same tags)."""
