"""Rego v0 -> v1 rewriting (``to_v1``), for the engines that parse v1 only.

regorus's compiled VM (``checker.policy.rvm``) and OPA through its Go bindings
(``checker.policy.opa``) read Rego v1; Gatekeeper templates are v0 unless they say v1. The
rewrite is done on regorus's AST spans: ``contains`` in partial set heads, ``if`` before every
body, ``import rego.v1`` for the future keywords. For the VM it also adds a guard ``x == x``
after every ``:=`` (``guards=True``): the VM in gordon-to-regorus 0.13.0 goes on with a value
that prints as ``"<undefined>"`` where an assignment's value is undefined, and the guard, which
the VM does evaluate as undefined, stops the body as Rego requires.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from checker import parallel
from checker.errors import PolicyError
from checker.policy.engine import clean_error


def _ast(source: str, *, rego_v1: bool) -> dict[str, Any]:
    import regorus

    engine = regorus.Engine()
    engine.set_rego_v0(not rego_v1)
    try:
        engine.add_policy("module.rego", source)
    except (RuntimeError, ValueError) as err:
        raise PolicyError(f"Rego does not compile: {clean_error(err)}") from err
    tree: dict[str, Any] = json.loads(engine.get_ast_as_json())[0]["ast"]
    return tree


def _dicts(tree: Any) -> Iterator[dict[str, Any]]:
    """Every object in regorus's AST JSON."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _nodes(tree: Any, kind: str) -> Iterator[dict[str, Any]]:
    """Every node of the given kind (``{"Kind": {...}}``)."""
    return (d[kind] for d in _dicts(tree) if isinstance(d.get(kind), dict))


def _queries(tree: Any) -> Iterator[list[dict[str, Any]]]:
    """The statement lists of every query: rule bodies, comprehensions, ``every``."""
    return (d["stmts"] for d in _dicts(tree) if isinstance(d.get("stmts"), list))


def _end(stmt: dict[str, Any], text: bytes) -> int:
    """Where a statement really ends: regorus's spans leave out a string's closing quote."""
    end = int(stmt["span"]["end"])
    for kind in ("String", "RawString"):
        for node in _nodes(stmt, kind):
            if node["span"]["end"] == end and text[end:end + 1] in (b'"', b"`"):
                return end + 1
    return end


def _guards(tree: dict[str, Any], text: bytes) -> list[tuple[int, int, str]]:
    """After each ``:=`` in a query, ``v == v`` for every variable it binds."""
    edits = []
    for stmts in _queries(tree):
        for stmt in stmts:
            expr = stmt.get("literal", {}).get("Expr", {}).get("expr", {})
            assign = expr.get("AssignExpr") if isinstance(expr, dict) else None
            if not assign or assign.get("op") != "ColEq":
                continue
            names = sorted({v["value"] for v in _nodes(assign["lhs"], "Var")} - {"_"})
            if names:
                at = _end(stmt, text)
                edits.append((at, at, "".join(f"; {n} == {n}" for n in names)))
    return edits


def _blank_comments(region: bytes) -> bytes:
    """``region`` (between a rule head and its first statement: no strings) with every ``#``
    comment replaced by spaces, so that a comment's words and braces are not read as code."""
    lines = region.split(b"\n")
    return b"\n".join(line[:line.index(b"#")] + b" " * (len(line) - line.index(b"#"))
                       if b"#" in line else line for line in lines)


def _syntax(tree: dict[str, Any], text: bytes) -> list[tuple[int, int, str]]:
    """v0 -> v1: future-keyword imports, ``contains`` in set heads, ``if`` before bodies."""
    edits: list[tuple[int, int, str]] = []
    first = True
    for imp in tree.get("imports", []):
        span = imp["span"]
        words = text[span["start"]:span["end"]].decode().split()
        if len(words) == 2 and words[1].startswith("future.keywords"):
            edits.append((span["start"], span["end"], "import rego.v1" if first else ""))
            first = False
    for rule in tree.get("rules", []):
        spec = rule.get("Spec")
        if not isinstance(spec, dict):
            continue
        ((kind, head),) = spec["head"].items()
        head_end = int(head["span"]["end"])
        bodies = spec.get("bodies") or []
        if kind == "Set" and bodies:
            name_end = int(next(iter(head["refr"].values()))["span"]["end"])
            body_start = int(bodies[0]["query"]["span"]["start"])
            between = text[name_end:body_start]
            if between.lstrip().startswith(b"[") and b"]" in between:
                open_at = name_end + between.index(b"[")
                close = name_end + between.rindex(b"]") + 1
                key = text[open_at + 1:close - 1].decode()
                edits.append((name_end, close, f" contains {key}"))
                head_end = close
        previous = head_end
        for body in bodies:
            stmts = body["query"]["stmts"]
            until = int(stmts[0]["span"]["start"]) if stmts else int(body["query"]["span"]["end"])
            start = int(body["span"]["start"]) if body["is_else"] else previous
            region = _blank_comments(text[start:until])
            if "if" not in region.decode().split() and b"{" in region:
                brace = start + region.rindex(b"{")
                edits.append((brace, brace, "if "))
            previous = int(body["query"]["span"]["end"])
    return edits


class _Rewritten:
    """``to_v1``'s results, at most ``limit`` of them; forked workers send theirs back
    (``checker.parallel.carry``), so that the next run's workers do not compute them again."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self.done: dict[tuple[str, bool, bool], str] = {}

    def get(self, key: tuple[str, bool, bool], compute: Callable[[], str]) -> str:
        found = self.done.get(key)
        if found is None:
            if len(self.done) >= self.limit:
                self.done.clear()
            found = self.done[key] = compute()
        return found

    def mark(self) -> int:
        return len(self.done)

    def since(self, mark: int) -> list[Any]:
        items = list(self.done.items())
        return items[mark:] if len(items) >= mark else items  # cleared meanwhile: all

    def absorb(self, added: list[Any]) -> None:
        for key, text in added:
            if key not in self.done:
                if len(self.done) >= self.limit:
                    self.done.clear()
                self.done[key] = text


REWRITTEN = _Rewritten()
parallel.carry(REWRITTEN)


def to_v1(source: str, rego_v1: bool = False, guards: bool = True) -> str:
    """``source`` as Rego v1 that the RVM evaluates as the interpreter would (see above).

    With ``guards=False`` only the syntax is converted (v0 to v1), for engines that evaluate
    assignments correctly (OPA, see checker.policy.opa). Results are kept in ``REWRITTEN``.
    """
    return REWRITTEN.get((source, rego_v1, guards), lambda: _to_v1(source, rego_v1, guards))


def _to_v1(source: str, rego_v1: bool, guards: bool) -> str:
    tree = _ast(source, rego_v1=rego_v1)
    text = source.encode()
    edits = ((_guards(tree, text) if guards else [])
             + ([] if rego_v1 else _syntax(tree, text)))
    out = text
    for start, end, replacement in sorted(edits, reverse=True):
        out = out[:start] + replacement.encode() + out[end:]
    return out.decode()
