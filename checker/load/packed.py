"""Parsed YAML documents in a form that crosses a process boundary cheaply.

Loading splits the files of a large repository between processes. Pickling a parsed document
(its data and one span per field: hundreds of thousands of small tuples for a large
repository) cost more than parsing it; a ``PackedDocument`` is the data as JSON text and the
spans as a flat array of integers, in the order the parser records them: every mapping entry
and sequence item, depth first, in document order, then the document itself. On the other side
the data is decoded at once and the spans only when a position is first looked up.
"""

from __future__ import annotations

import itertools
import json
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from checker.load.yamlfile import Document, Span
from checker.model import FieldPath


def _fill(value: Any, path: FieldPath, numbers: array[int], at: int,
          spans: dict[FieldPath, Span]) -> int:
    """Spans of the fields below ``value`` from ``numbers[at:]``; returns where the next
    field's numbers start. The order is the parser's: every mapping entry and sequence item,
    depth first, in document order."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, sub in items:
        child = (*path, key)
        spans[child] = (numbers[at], numbers[at + 1], numbers[at + 2], numbers[at + 3])
        at += 4
        if sub and isinstance(sub, (dict, list)):
            at = _fill(sub, child, numbers, at, spans)
    return at


class PackedSpans(Mapping[FieldPath, Span]):
    """A document's spans, rebuilt from its JSON text and flat array on first lookup."""

    __slots__ = ("_flat", "_root", "_spans", "_text")

    def __init__(self, text: str, flat: bytes, root: Span) -> None:
        self._text = text
        self._flat = flat
        self._root = root
        self._spans: dict[FieldPath, Span] | None = None

    def _all(self) -> dict[FieldPath, Span]:
        if self._spans is None:
            numbers = array("i")
            numbers.frombytes(self._flat)
            spans: dict[FieldPath, Span] = {}
            try:
                end = _fill(json.loads(self._text), (), numbers, 0, spans)
            except IndexError:
                end = -1
            if end != len(numbers):  # one span per field, so this cannot happen
                raise RuntimeError(f"packed spans do not fit the data ({len(spans)} fields, "
                                   f"{len(numbers) // 4} spans)")
            spans[()] = self._root
            self._spans = spans
        return self._spans

    def __getitem__(self, key: FieldPath) -> Span:
        if not key:
            return self._root
        return self._all()[key]

    def __iter__(self) -> Iterator[FieldPath]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


@dataclass(frozen=True)
class PackedDocument:
    """A Document as JSON text and flat spans."""

    text: str
    flat: bytes
    root: Span
    line: int
    end_line: int

    def unpack(self) -> Document:
        """The document, with its spans decoded on first use."""
        return Document(json.loads(self.text), PackedSpans(self.text, self.flat, self.root),
                        self.line, self.end_line)


def pack(doc: Document) -> PackedDocument | Document:
    """``doc`` packed, or as it is when its data is not JSON or its spans are not a parser's.

    The parser records one span per mapping entry and sequence item (scalar nodes never
    become collections; collection nodes always do), so the spans line up with ``_fill``.
    """
    spans = doc.spans
    if not isinstance(spans, dict) or not spans or next(reversed(spans)) != ():
        return doc
    try:
        text = json.dumps(doc.data)
    except (TypeError, ValueError):
        return doc
    values = list(spans.values())
    flat = array("i", itertools.chain.from_iterable(values[:-1])).tobytes()
    return PackedDocument(text, flat, values[-1], doc.line, doc.end_line)
