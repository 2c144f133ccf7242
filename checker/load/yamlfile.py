"""Parse YAML into plain data plus a map of field path -> source position.

PyYAML's composer gives every node a start and end mark; we build the Python values ourselves
so that duplicate keys, alias bombs and runaway nesting become clear input errors with a line
number instead of silent data loss, a crash or unbounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from checker.model import FieldPath, SourceLocation

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_NODES_PER_DOCUMENT = 1_000_000
MAX_DEPTH = 200

Span = tuple[int, int, int, int]

_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_BINARY = "tag:yaml.org,2002:binary"
_MERGE = "tag:yaml.org,2002:merge"
_AS_TEXT = frozenset({_STR, _TIMESTAMP, _BINARY})
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

# Scalars of these tags become immutable values (bool, int, float, None); repeated texts
# (ports, replicas, true/false) reuse the value built the first time. Bounded like _RESOLVED.
_SCALAR_CONSTRUCTORS: dict[str, Any] = {
    tag: yaml.constructor.SafeConstructor.yaml_constructors[tag]
    for tag in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
                "tag:yaml.org,2002:float", "tag:yaml.org,2002:null")
}
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_VALUES: dict[tuple[str, str], Any] = {}
_MISSING = object()


class YamlProblem(Exception):
    """A document could not be turned into data; carries the 1-based line."""

    def __init__(self, message: str, line: int, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Document:
    """One YAML document: its value, the span of each field and its first line."""

    data: Any
    spans: Mapping[FieldPath, Span]
    line: int
    end_line: int

    def location(self, path: str, field: FieldPath = ()) -> SourceLocation:
        """SourceLocation of ``field`` (or of the whole document)."""
        span = self.spans.get(field)
        if span is None:
            return SourceLocation(path, self.line, 1, self.end_line, 1)
        return SourceLocation(path, span[0], span[1], span[2], span[3])


def _span(node: yaml.Node) -> Span:
    start, end = node.start_mark, node.end_mark
    return (start.line + 1, start.column + 1, end.line + 1, end.column + 1)


def _too_many(node: yaml.Node) -> YamlProblem:
    return YamlProblem(
        f"document expands to more than {MAX_NODES_PER_DOCUMENT} values "
        "(an alias bomb or an unreasonably large document)",
        node.start_mark.line + 1,
    )


class _Builder:
    """Python values and the span of every field path, from a composed node tree.

    The hot loops handle the common case inline (string keys, scalar values); everything
    else goes through ``build`` and ``_scalar``. Nodes are counted in document order, so
    the limits report the same node whichever path counted it.
    """

    __slots__ = ("nodes", "spans")

    def __init__(self) -> None:
        self.nodes = 0
        self.spans: dict[FieldPath, Span] = {}

    def build(self, node: yaml.Node, path: FieldPath, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES_PER_DOCUMENT:
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
        for key_node, value_node in node.value:
            if key_node.tag == _STR and key_node.__class__ is _ScalarNode:
                key = key_node.value
            else:
                key = _key(key_node)
            if key in out:
                raise YamlProblem(
                    f"duplicate key {key!r}", key_node.start_mark.line + 1,
                    key_node.start_mark.column + 1,
                )
            child = path + (key,)  # noqa: RUF005 - half the cost of (*path, key)
            start, end = key_node.start_mark, value_node.end_mark
            spans[child] = (start.line + 1, start.column + 1, end.line + 1, end.column + 1)
            if inline and value_node.__class__ is _ScalarNode:
                self.nodes += 1
                if self.nodes > MAX_NODES_PER_DOCUMENT:
                    raise _too_many(value_node)
                out[key] = value_node.value if value_node.tag == _STR else _scalar(value_node)
            else:
                out[key] = self.build(value_node, child, depth)
        return out

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
                if self.nodes > MAX_NODES_PER_DOCUMENT:
                    raise _too_many(item)
                items.append(item.value if item.tag == _STR else _scalar(item))
            else:
                items.append(self.build(item, child, depth))
        return items


def _key(node: yaml.Node) -> str:
    """The text of a mapping key that is not a plain string (``1``, ``true``, ``null``)."""
    if not isinstance(node, _ScalarNode):
        raise YamlProblem(
            "mapping keys must be scalars", node.start_mark.line + 1,
            node.start_mark.column + 1,
        )
    if node.tag == _MERGE:
        raise YamlProblem(
            "YAML merge keys ('<<') are not supported by Kubernetes",
            node.start_mark.line + 1, node.start_mark.column + 1,
        )
    key = _scalar(node)
    return key if isinstance(key, str) else _scalar_text(key)


def _scalar(node: yaml.Node) -> Any:
    """The value of a scalar node; timestamps and binary stay text, as Kubernetes reads them."""
    tag = node.tag
    if tag in _AS_TEXT or not isinstance(node, _ScalarNode):
        return str(node.value)
    construct = _SCALAR_CONSTRUCTORS.get(tag)
    if construct is None:  # collections tags on a scalar, application tags: PyYAML decides
        try:
            return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as err:
            raise YamlProblem(str(err.problem), node.start_mark.line + 1) from err
    key = (tag, node.value)
    value = _VALUES.get(key, _MISSING)
    if value is _MISSING:
        try:
            value = construct(_CONSTRUCTOR, node)
        except (ValueError, KeyError, IndexError) as err:  # e.g. '!!int abc'
            raise YamlProblem(
                f"{node.value!r} is not a valid {tag.rsplit(':', 1)[-1]}",
                node.start_mark.line + 1, node.start_mark.column + 1,
            ) from err
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
    """
    loader = _Loader(text)
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
            builder = _Builder()
            try:
                data = builder.build(node, (), 0)
            except YamlProblem as problem:
                yield problem
                continue
            builder.spans[()] = _span(node)
            yield Document(data, builder.spans, node.start_mark.line + 1, node.end_mark.line + 1)
    finally:
        loader.dispose()


SAFE_LOADER: type[Any] = _Loader
"""The loader for plain reads (pack catalogs, Kustomize metadata): PyYAML's safe loader on
libyaml when PyYAML was built with it, with the memoized resolver above (same tags)."""
