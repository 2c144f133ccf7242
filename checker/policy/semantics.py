"""Where regorus and OPA give a template different meanings: ``not`` over undefined operands.

OPA compiles a call's operands (and the operands of ``in``, comparisons other than ``==`` and
arithmetic, which are calls too) into separate expressions evaluated before the call. Inside a
negation this means an undefined operand makes the whole ``not`` expression fail, where regorus
evaluates the negated call as undefined and the ``not`` as true:

- ``not startswith(x.missing, "a")``, ``not "ALL" in x.missing``, ``not x.missing != 1``,
  ``not x.missing > 0``, ``not f(rule_that_is_undefined)``: OPA fails, regorus succeeds;
- ``not x.missing == 1`` and ``not x.missing``: both succeed, unless an operand of ``==`` holds a
  call or a reference whose index is itself a reference or call (``not lower(x.missing) ==
  "a"``, ``not x.arr[x.missing] == 1``), which OPA evaluates first as well.

``hazards`` finds every such expression by its syntax (measured against OPA in
tests/policy/test_opa_semantics.py). An operand counts as possibly undefined when it is a reference
with a field or index (``x.y``, ``x[i]``; but ``input.review``, ``input.review.object`` and
``input.parameters`` always exist), a rule of the module, or a call other than a total built-in
over defined operands; local variables are always defined where they are used.

The shipped packs must have none (tests/policy/test_opa_semantics.py); a repository template
that has one and is evaluated by regorus (OPA not installed) gets a ``policy.engine-difference``
warning.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from checker.errors import PolicyError

_CALLS = ("Call", "Membership", "ArithExpr", "BinExpr")
# What Gatekeeper's driver always defines in the input of a template
ALWAYS = frozenset({"input.review", "input.parameters", "input.review.object"})
# Built-ins defined for every argument of the right type: a call of one of them is undefined
# only when an argument is. Any other call (a function of the template, or a built-in that can
# be undefined) may be undefined by itself.
TOTAL = frozenset({
    "array.concat", "array.slice", "concat", "contains", "count", "endswith", "format_int",
    "indexof", "is_array", "is_boolean", "is_null", "is_number", "is_object", "is_set",
    "is_string", "json.marshal", "lower", "max", "min", "object.get", "object.keys",
    "object.remove", "object.union", "regex.match", "replace", "split", "sprintf", "startswith",
    "sum", "to_number", "trim", "trim_prefix", "trim_space", "trim_suffix", "type_name", "upper",
})
_SCOPES = ("ArrayCompr", "SetCompr", "ObjectCompr", "UnaryExpr")


@dataclass(frozen=True)
class Hazard:
    """A negated expression whose meaning differs between regorus and OPA."""

    line: int
    text: str


def _ast(source: str, rego_v1: bool) -> dict[str, Any]:
    import regorus

    from checker.policy.engine import clean_error

    engine = regorus.Engine()
    engine.set_rego_v0(not rego_v1)
    try:
        engine.add_policy("module.rego", source)
    except (RuntimeError, ValueError) as err:
        try:
            engine.add_policy("module.rego", split_bodies(source))
        except (RuntimeError, ValueError):
            raise PolicyError(f"Rego does not compile: {clean_error(err)}") from err
    tree: dict[str, Any] = json.loads(engine.get_ast_as_json())[0]["ast"]
    return tree


def _constant(spec: dict[str, Any], head: dict[str, Any]) -> bool:
    """A rule without a body whose value has no reference, variable or call: always defined."""
    if spec.get("bodies") or head.get("args"):
        return False
    value = (head.get("assign") or {}).get("value")
    if value is None:
        return False
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if any(k in node for k in ("Var", "RefDot", "RefBrack", "Call", *_CALLS, *_SCOPES)):
                return False
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True


def _rule_names(tree: dict[str, Any]) -> set[str]:
    """Rules of the module that may be undefined (every rule but the constant ones)."""
    names: set[str] = set()
    constants: set[str] = set()
    for rule in tree.get("rules", []):
        spec = rule.get("Spec") if isinstance(rule, dict) else None
        if isinstance(spec, dict):
            ((_, head),) = spec["head"].items()
            node = head.get("refr") or head.get("name")
            while isinstance(node, dict) and len(node) == 1:
                ((kind, inner),) = node.items()
                if kind == "Var":
                    (constants if _constant(spec, head) else names).add(str(inner["value"]))
                    break
                node = inner.get("refr")
    return names


def _kind(node: Any) -> tuple[str, dict[str, Any]] | None:
    if isinstance(node, dict) and len(node) == 1:
        ((kind, inner),) = node.items()
        if isinstance(inner, dict):
            return kind, inner
    return None


def _maybe_undefined(node: Any, rules: set[str]) -> bool:
    """Whether a term can be undefined where it is used (see the module docstring)."""
    kind = _kind(node)
    if kind is None:
        return False
    name, inner = kind
    if name == "Call":
        return (_name(inner.get("fcn")) not in TOTAL
                or any(_maybe_undefined(p, rules) for p in inner.get("params") or []))
    if name in ("RefDot", "RefBrack"):
        return _name(node) not in ALWAYS
    if name in _CALLS:
        return True
    if name == "Var":
        return str(inner.get("value")) in rules
    if name in _SCOPES:
        return False
    return any(_maybe_undefined(v, rules) for v in _children(inner))


def _name(node: Any) -> str:
    """``a.b.c`` of a function reference; "" when it is not a plain dotted name."""
    kind = _kind(node)
    if kind is None:
        return ""
    name, inner = kind
    if name == "Var":
        return str(inner.get("value"))
    if name == "RefDot":
        base = _name(inner.get("refr"))
        field = inner.get("field")
        if base and isinstance(field, list) and len(field) == 2:
            return f"{base}.{field[1]}"
    return ""


def _children(inner: dict[str, Any]) -> Iterator[Any]:
    for key, value in inner.items():
        if key in ("span", "eidx"):
            continue
        if isinstance(value, list):
            yield from value
        else:
            yield value


def _hoisted(node: Any, rules: set[str]) -> bool:
    """Whether an operand of ``==`` holds a term that OPA evaluates before the negation."""
    kind = _kind(node)
    if kind is None:
        return False
    name, inner = kind
    if name in _SCOPES:
        return False
    if name == "Call":
        return _maybe_undefined(node, rules)
    if name in _CALLS:
        return True
    if name == "RefBrack" and _maybe_undefined(inner.get("index"), rules):
        return True
    return any(_hoisted(v, rules) for v in _children(inner))


def _differs(expr: Any, rules: set[str]) -> bool:
    kind = _kind(expr)
    if kind is None:
        return False
    name, inner = kind
    if name == "BoolExpr" and inner.get("op") == "Eq":
        return _hoisted(inner.get("lhs"), rules) or _hoisted(inner.get("rhs"), rules)
    if name == "BoolExpr" or name in _CALLS:
        operands = (inner.get("params") or [] if name == "Call"
                    else [v for k, v in inner.items() if k not in ("span", "eidx", "op", "fcn")])
        return any(_maybe_undefined(o, rules) for o in operands)
    if name in ("RefDot", "RefBrack"):
        return _hoisted(expr, rules)
    return False


def _negations(tree: Any) -> Iterator[dict[str, Any]]:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            negated = node.get("NotExpr")
            if isinstance(negated, dict):
                yield negated
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


@functools.lru_cache(maxsize=1024)
def hazards(source: str, rego_v1: bool = False) -> tuple[Hazard, ...]:
    """Every ``not`` expression in ``source`` that OPA and regorus evaluate differently."""
    tree = _ast(source, rego_v1)
    rules = _rule_names(tree)
    text = source.encode()
    out = []
    for negated in _negations(tree):
        if _differs(negated.get("expr"), rules):
            span = negated["span"]
            end = int(span["end"])
            found = text[span["start"]:end]
            if found.count(b'"') % 2 and text[end:end + 1] == b'"':
                end += 1  # regorus's spans leave out a string's closing quote
            out.append(Hazard(int(span["line"]),
                              text[span["start"]:end].decode(errors="replace").strip()))
    return tuple(sorted(set(out), key=lambda h: (h.line, h.text)))


def _skip_literal(source: str, i: int) -> int | None:
    """Where the comment or string starting at ``i`` ends (the index after it; a comment ends
    before its line break), or None when none starts there. A ``"`` string reads escapes, a
    raw `` ` `` string none."""
    ch = source[i]
    if ch == "#":
        end = source.find("\n", i)
        return len(source) if end < 0 else end
    if ch in "\"`":
        end, n = i + 1, len(source)
        while end < n and source[end] != ch:
            end += 2 if ch == '"' and source[end] == "\\" else 1
        return end + 1
    return None


def split_bodies(source: str) -> str:
    """v0 rules written with several bodies (``p[x] { a } { b }``) as one rule per body.

    OPA reads the bodies as alternatives, like separate rules with the same head; regorus 0.13
    does not parse the form. Only used when a module does not parse as it is: a rule whose head
    ends in an object literal followed by a body (``p = {"a"} { ... }``) would be misread.
    """
    out: list[str] = []
    depth = 0
    i = 0
    n = len(source)
    stmt_start: int | None = None
    first_body: int | None = None
    just_closed = new_line = False
    copied = 0
    while i < n:
        ch = source[i]
        skipped = _skip_literal(source, i)
        if skipped is not None:
            i = skipped
            continue
        if depth == 0 and ch == "\n":
            new_line = True
        elif depth == 0 and not ch.isspace():
            if just_closed and ch == "{" and stmt_start is not None and first_body is not None:
                head = source[stmt_start:first_body].rstrip()
                out.append(source[copied:i])
                out.append(f"\n{head} ")
                copied = i
            elif (new_line or stmt_start is None) and not source.startswith("else", i):
                stmt_start, first_body = i, None
            just_closed = new_line = False
            if ch == "{" and first_body is None:
                first_body = i
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
            just_closed = depth == 0 and ch == "}"
        i += 1
    out.append(source[copied:])
    return "".join(out)


_PAREN_LINE = re.compile(r"\n[ \t]*\(")


def separate_paren_lines(source: str) -> str:
    """``;`` after a complete term that ends a line when the next code line starts with ``(``.

    OPA reads a call only where ``(`` follows the function's name directly: after a space or a
    line break the ``(`` starts a new term, so ``m := x.replicas`` followed by a line
    ``(m - n) > 1`` is two statements. regorus 0.13 reads the line as a call continuing the
    previous one. Separating the statements explicitly gives OPA's reading; strings and comments
    are skipped. The caller keeps the original when the result does not compile (a ``(`` line
    inside brackets, where a ``;`` is not allowed).
    """
    if not _PAREN_LINE.search(source):
        return source
    n = len(source)
    last = -1  # the index of the last character of code seen
    at: list[int] = []
    i = 0
    while i < n:
        ch = source[i]
        skipped = _skip_literal(source, i)
        if skipped is not None:
            if ch != "#":  # a string is code; its closing quote the last character seen
                last = min(skipped - 1, n - 1)
            i = skipped
            continue
        if ch == "(":
            line_start = source.rfind("\n", 0, i) + 1
            if (not source[line_start:i].strip() and 0 <= last < line_start
                    and (source[last].isalnum() or source[last] in "_])}\"`")):
                at.append(last + 1)
        if not ch.isspace():
            last = i
        i += 1
    for index in reversed(at):
        source = source[:index] + ";" + source[index:]
    return source


_VERB = re.compile(r"%(?:%|(?P<spec>[-+# 0]*(?:\d+|\*)?(?:\.(?:\d+|\*)?)?)(?P<index>\[)?"
                   r"(?P<verb>[a-zA-Z]))")


def _verbs(text: str) -> list[tuple[str, bool]] | None:
    """The verbs of a Go format string, each with whether it is plain (no flag, width or
    precision); None when one takes an explicit argument index (``%[1]v``)."""
    out = []
    for match in _VERB.finditer(text):
        if match.group(0) == "%%":
            continue
        if match.group("index"):
            return None
        out.append((match.group("verb"), not match.group("spec")))
    return out


def pad_sprintf(source: str, rego_v1: bool) -> str:
    """``sprintf`` calls with fewer arguments than verbs, given what Go prints for the missing
    ones.

    OPA's ``sprintf`` is Go's ``fmt.Sprintf``: a verb without an argument prints
    ``%!v(MISSING)`` (``%!s(MISSING)`` for ``%s``), where regorus 0.13 raises. For a literal
    format and a literal array whose missing verbs are plain ``%v`` or ``%s``, the array is
    extended with those texts, which the verbs print as they are. Any other form is left as it
    is (regorus's error stays an evaluation error).
    """
    from checker.policy.rewrite import _nodes

    if "sprintf" not in source:
        return source
    try:
        tree = _ast(source, rego_v1)
    except PolicyError:
        return source
    data = source.encode()
    edits = []
    for call in _nodes(tree, "Call"):
        fcn, params = call.get("fcn") or {}, call.get("params") or []
        if (fcn.get("Var") or {}).get("value") != "sprintf" or len(params) != 2:
            continue
        fmt, args = params
        text = (fmt.get("String") or fmt.get("RawString") or {}).get("value")
        array = args.get("Array")
        if not isinstance(text, str) or not isinstance(array, dict):
            continue
        verbs = _verbs(text)
        items = array.get("items") or []
        if verbs is None or len(items) >= len(verbs):
            continue
        missing = verbs[len(items):]
        if not all(plain and verb in "vs" for verb, plain in missing):
            continue
        padding = ", ".join(json.dumps(f"%!{verb}(MISSING)") for verb, _ in missing)
        at = int(array["span"]["end"]) - 1  # before the closing bracket
        edits.append((at, (", " if items else "") + padding))
    for at, text in sorted(edits, reverse=True):
        data = data[:at] + text.encode() + data[at:]
    return data.decode()
