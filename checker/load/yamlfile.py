"""Parse YAML into plain data plus a map of field path -> source position.

PyYAML's composer gives every node a start and end mark; we build the Python values ourselves
so that duplicate keys, alias bombs and runaway nesting become clear input errors with a line
number instead of silent data loss, a crash or unbounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from checker.model import FieldPath, SourceLocation

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_NODES_PER_DOCUMENT = 1_000_000
MAX_DEPTH = 200

Span = tuple[int, int, int, int]

try:  # libyaml is much faster; fall back to the pure-Python loader.
    _Loader: type[Any] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_BINARY = "tag:yaml.org,2002:binary"


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
    spans: dict[FieldPath, Span]
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


class _Builder:
    def __init__(self) -> None:
        self.nodes = 0
        self.spans: dict[FieldPath, Span] = {}

    def build(self, node: yaml.Node, path: FieldPath, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES_PER_DOCUMENT:
            raise YamlProblem(
                f"document expands to more than {MAX_NODES_PER_DOCUMENT} values "
                "(an alias bomb or an unreasonably large document)",
                node.start_mark.line + 1,
            )
        if depth > MAX_DEPTH:
            raise YamlProblem(
                f"document is nested more than {MAX_DEPTH} levels deep",
                node.start_mark.line + 1,
            )
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YamlProblem(
                        "mapping keys must be scalars", key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                    )
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise YamlProblem(
                        "YAML merge keys ('<<') are not supported by Kubernetes",
                        key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                    )
                key = self._scalar(key_node)
                skey = key if isinstance(key, str) else _scalar_text(key)
                if skey in out:
                    raise YamlProblem(
                        f"duplicate key {skey!r}", key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                    )
                child = (*path, skey)
                ks, vs = key_node.start_mark, value_node.end_mark
                self.spans[child] = (ks.line + 1, ks.column + 1, vs.line + 1, vs.column + 1)
                out[skey] = self.build(value_node, child, depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            items: list[Any] = []
            for index, item in enumerate(node.value):
                child = (*path, index)
                self.spans[child] = _span(item)
                items.append(self.build(item, child, depth + 1))
            return items
        return self._scalar(node)

    @staticmethod
    def _scalar(node: yaml.Node) -> Any:
        if node.tag in (_STR, _TIMESTAMP, _BINARY) or not isinstance(node, yaml.ScalarNode):
            return str(node.value)
        try:
            return _CONSTRUCTOR.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as err:
            raise YamlProblem(str(err.problem), node.start_mark.line + 1) from err


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
"""PyYAML's safe loader, the libyaml one when PyYAML was built with it (for plain reads)."""
