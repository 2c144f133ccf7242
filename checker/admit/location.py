"""Gatekeeper's mutation location syntax: ``spec.containers[name: *].securityContext``.

A location is a list of nodes: an object field (``spec``), or a list selected by a key field
(``[name: foo]``, ``[containerPort: 80]``) or every element (``[name: *]``). Field names are
letters, digits, ``_`` and ``-``, or a quoted string (``"kubernetes.io/name"``, ``\\`` escapes
the next character); a list follows its field name without a dot. The grammar is Gatekeeper's
(its ``path/parser`` and ``path/token`` packages), written here from their behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass


class LocationError(ValueError):
    """A location (or a pathTests subPath) that Gatekeeper's parser rejects."""


@dataclass(frozen=True)
class Field:
    """An object field."""

    name: str

    def __str__(self) -> str:
        return _quote(self.name)


@dataclass(frozen=True)
class Keyed:
    """A list: the element whose ``key`` field equals ``value`` (str or int), or every
    element when ``glob``."""

    key: str
    value: str | int | None = None
    glob: bool = False

    def __str__(self) -> str:
        if self.glob:
            return f"[{_quote(self.key)}: *]"
        shown = _quote(self.value) if isinstance(self.value, str) else str(self.value)
        return f"[{_quote(self.key)}: {shown}]"


Node = Field | Keyed


def _quote(text: str) -> str:
    if text and all(_ident(c) for c in text) and not text[0].isdigit():
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ident(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ("0" <= ch <= "9") or ch in "_-"


def render(nodes: tuple[Node, ...]) -> str:
    """A location as Gatekeeper prints it."""
    out = ""
    for i, node in enumerate(nodes):
        out += ("." if i and isinstance(node, Field) else "") + str(node)
    return out


def _tokens(text: str) -> list[tuple[str, str]]:
    """(type, literal) tokens: IDENT, INT, '.', '[', ']', '*', ':' and EOF."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            out.append(("EOF", ""))
            return out
        ch = text[i]
        if ch.isascii() and ch.isdigit():
            start = i
            while i < n and text[i].isascii() and text[i].isdigit():
                i += 1
            out.append(("INT", text[start:i]))
        elif _ident(ch):
            start = i
            while i < n and _ident(text[i]):
                i += 1
            out.append(("IDENT", text[start:i]))
        elif ch in ".[]*:":
            out.append((ch, ch))
            i += 1
        elif ch in "\"'":
            quote, i, buf = ch, i + 1, []
            while True:
                if i >= n:
                    raise LocationError(f"error at position {n}: unterminated string")
                if text[i] == quote:
                    i += 1
                    break
                if text[i] == "\\":
                    i += 1
                    if i >= n:
                        continue
                buf.append(text[i])
                i += 1
            out.append(("IDENT", "".join(buf)))
        else:
            raise LocationError(f"error at position {i}: invalid character {ch!r}")


def parse(text: str) -> tuple[Node, ...]:
    """The nodes of a location; LocationError when Gatekeeper's parser rejects it."""
    toks = _tokens(text)
    pos = 0
    nodes: list[Node] = []

    def peek() -> tuple[str, str]:
        return toks[pos + 1] if pos + 1 < len(toks) else ("EOF", "")

    def expect(kind: str) -> bool:
        nonlocal pos
        if peek()[0] == kind:
            pos += 1
            return True
        return False

    while toks[pos][0] == "IDENT":
        nodes.append(Field(toks[pos][1]))
        if expect("["):
            if not expect("IDENT"):
                raise LocationError(f"expected keyField in listSpec, got: {peek()[1] or 'EOF'}")
            key = toks[pos][1]
            if not expect(":"):
                raise LocationError(f"expected ':' following keyField {key}, got: "
                                    f"{peek()[1] or 'EOF'}")
            if expect("*"):
                node = Keyed(key, None, True)
            elif expect("IDENT"):
                node = Keyed(key, toks[pos][1])
            elif expect("INT"):
                value = int(toks[pos][1])
                if value >= 2 ** 63:
                    raise LocationError(f"overflow in integer string: {toks[pos][1]}")
                node = Keyed(key, value)
            else:
                raise LocationError("expected key value or glob in listSpec, got: "
                                    f"{peek()[1] or 'EOF'}")
            if not expect("]"):
                raise LocationError(f"expected ']' following listSpec, got: {peek()[1] or 'EOF'}")
            nodes.append(node)
        if expect("."):
            if peek()[0] == "EOF":
                raise LocationError("trailing separator")
            pos += 1
        elif expect("EOF"):
            pass
        else:
            raise LocationError(f"expected '.' or eof, got: {peek()[1] or 'EOF'}")
    if toks[pos][0] != "EOF":
        raise LocationError(f"expected field name or eof, got: {toks[pos][1]}")
    return tuple(nodes)  # empty for an empty location, as Gatekeeper's parser returns
