"""The subset of Go's ``text/template`` (with Argo CD's function map) that ApplicationSets use.

Argo CD renders every string of an ApplicationSet template with ``goTemplate: true`` as a Go
template: sprig's functions (without ``env``, ``expandenv`` and ``getHostByName``) plus
``normalize``, with ``goTemplateOptions`` such as ``missingkey=error``. This module evaluates
the part of that language that ApplicationSets commonly use, with Go's semantics (value
printing, truth, missing keys, ``<no value>``), proven against Go's own ``text/template`` in
``tests/load/test_gotemplate.py``:

* actions ``{{ pipeline }}`` with ``{{-``/``-}}`` trimming and ``{{/* comments */}}``;
* ``if``/``else if``/``else``/``end`` and ``with``/``else``/``end``;
* fields ``.a.b``, ``$`` and ``$.a``, literals (strings, raw strings, numbers, ``true``,
  ``false``, ``nil``), parentheses and pipes;
* Go's functions ``and or not eq ne lt le gt ge len index print printf`` and sprig's
  ``default empty lower upper trim trimPrefix trimSuffix replace trunc quote squote contains
  hasPrefix hasSuffix join splitList toString``, and Argo CD's ``normalize``.

Anything else (``range``, variables, ``template``/``define``, other functions) raises
:class:`Unsupported` naming the construct, so the caller reports the ApplicationSet as not
checked rather than guessing what Argo CD renders.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class Unsupported(Exception):
    """A construct outside the evaluated subset (the message names it)."""


class TemplateError(Exception):
    """The template fails in Go too (parse or execution error; the message says why)."""


class _NoValue:
    """A missing map key under the default ``missingkey`` option (Go prints ``<no value>``)."""

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()

# --- lexing -----------------------------------------------------------------------------------

MAX_DEPTH = 50   # nested if/with; deeper templates are not evaluated (bounded recursion)


class _Match:
    """One ``{{ ... }}`` action: like a regex match of ``{{(-\\s)?(.*?)(\\s-)?}}``."""

    def __init__(self, text: str, start: int, end: int) -> None:
        self._text, self._start, self._end = text, start, end
        inner = text[start + 2:end - 2]
        self.left = inner[:2] if len(inner) >= 2 and inner[0] == "-" and inner[1].isspace() \
            else ""
        self.right = inner[-2:] if len(inner) >= 2 and inner[-1] == "-" and \
            inner[-2].isspace() and len(inner) > len(self.left) + 1 else ""
        self.body = inner[len(self.left):len(inner) - len(self.right)]

    def start(self) -> int:
        return self._start

    def end(self) -> int:
        return self._end

    def group(self, number: int = 0) -> str:
        return (self._text[self._start:self._end], self.left, self.body, self.right)[number]


def _actions(text: str) -> Iterator[_Match]:
    """The actions of a template, found in one pass (str.find: linear in the text, whatever
    a hostile string holds); an unclosed ``{{`` is Go's parse error."""
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            return
        end = text.find("}}", start + 2)
        if end < 0:
            raise TemplateError("unclosed action")
        yield _Match(text, start, end + 2)
        pos = end + 2
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F_]+|\d[\d_]*(?:\.\d*)?(?:[eE][-+]?\d+)?
                     |\.\d+(?:[eE][-+]?\d+)?))
  | (?P<field>(?:\$[A-Za-z0-9_]*)?(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.|\$[A-Za-z0-9_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<declare>:=|=)
  | (?P<punct>[()|,])
""", re.VERBOSE)
_KEYWORDS = frozenset({"if", "else", "end", "with", "range", "define", "template", "block",
                       "break", "continue"})


@dataclass
class _Tok:
    kind: str
    text: str


def _tokens(source: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise Unsupported(f"{source[pos:pos + 20]!r} in {{{{{source}}}}}")
        kind = str(match.lastgroup)
        if kind == "declare":
            raise Unsupported(f"template variables ({{{{{source}}}}})")
        if kind == "char":
            raise Unsupported(f"character constants ({{{{{source}}}}})")
        if kind != "space":
            out.append(_Tok(kind, match.group()))
        pos = match.end()
    return out


# --- parsing ----------------------------------------------------------------------------------

@dataclass
class _Action:
    pipeline: list[list[_Tok | list[Any]]]


@dataclass
class _Branch:
    keyword: str                     # "if" or "with"
    pipeline: list[list[_Tok | list[Any]]]
    then: list[Any] = field(default_factory=list)
    otherwise: list[Any] = field(default_factory=list)


def _pipeline(tokens: list[_Tok], source: str) -> list[list[_Tok | list[Any]]]:
    """Commands separated by ``|``; each a list of operands (a parenthesised pipeline is a
    nested list)."""
    stack: list[list[list[_Tok | list[Any]]]] = [[[]]]
    for tok in tokens:
        if tok.kind == "punct" and tok.text == "(":
            stack.append([[]])
            if len(stack) > MAX_DEPTH:
                raise Unsupported(f"parentheses nested deeper than {MAX_DEPTH}")
        elif tok.kind == "punct" and tok.text == ")":
            if len(stack) == 1:
                raise TemplateError(f"unexpected ')' in {{{{{source}}}}}")
            inner = stack.pop()
            stack[-1][-1].append(inner)
        elif tok.kind == "punct" and tok.text == "|":
            stack[-1].append([])
        elif tok.kind == "punct":
            raise Unsupported(f"{tok.text!r} in {{{{{source}}}}}")
        else:
            stack[-1][-1].append(tok)
    if len(stack) != 1:
        raise TemplateError(f"unclosed '(' in {{{{{source}}}}}")
    pipeline = stack[0]
    if any(not command for command in pipeline):
        raise TemplateError(f"missing command in {{{{{source}}}}}")
    return pipeline


def parse(text: str) -> list[Any]:
    """The template's nodes: strings, actions and if/with branches."""
    root: list[Any] = []
    stack: list[tuple[_Branch | None, list[Any]]] = [(None, root)]
    pos = 0
    trim_next = False
    for match in _actions(text):
        literal = text[pos:match.start()]
        if trim_next:
            literal = literal.lstrip(" \t\r\n")
        if match.group(1):
            literal = literal.rstrip(" \t\r\n")
        if literal:
            stack[-1][1].append(literal)
        pos = match.end()
        trim_next = bool(match.group(3))
        body = match.group(2).strip()
        if body.startswith("/*"):
            if not body.endswith("*/"):
                raise TemplateError(f"unclosed comment in {match.group()}")
            continue
        tokens = _tokens(body)
        if not tokens:
            raise TemplateError(f"missing value for command in {match.group()}")
        head = tokens[0]
        word = head.text if head.kind == "ident" else ""
        if word in ("if", "with"):
            branch = _Branch(word, _pipeline(tokens[1:], body))
            stack[-1][1].append(branch)
            stack.append((branch, branch.then))
            if len(stack) > MAX_DEPTH:
                raise Unsupported(f"{{{{if}}}}/{{{{with}}}} nested deeper than {MAX_DEPTH}")
        elif word == "else":
            current = stack[-1][0]
            if current is None or stack[-1][1] is current.otherwise:
                raise TemplateError(f"unexpected {{{{else}}}} in {text!r}")
            if len(tokens) > 1:  # {{else if x}}: the else holds an if closed by the same end
                nested_word = tokens[1].text if tokens[1].kind == "ident" else ""
                if nested_word not in ("if", "with"):
                    raise Unsupported(f"{{{{{body}}}}}")
                nested = _Branch(nested_word, _pipeline(tokens[2:], body))
                current.otherwise.append(nested)
                stack[-1] = (nested, nested.then)
                continue
            stack[-1] = (current, current.otherwise)
        elif word == "end":
            if len(stack) == 1:
                raise TemplateError(f"unexpected {{{{end}}}} in {text!r}")
            stack.pop()
        elif word in _KEYWORDS:
            raise Unsupported(f"{{{{{word}}}}} ({match.group()})")
        else:
            stack[-1][1].append(_Action(_pipeline(tokens, body)))
    rest = text[pos:]
    if trim_next:
        rest = rest.lstrip(" \t\r\n")
    if rest:
        stack[-1][1].append(rest)
    if len(stack) != 1:
        raise TemplateError(f"unexpected EOF: an {{{{if}}}} or {{{{with}}}} has no {{{{end}}}} "
                            f"in {text!r}")
    return root


# --- values -----------------------------------------------------------------------------------

def truth(value: Any) -> bool:
    """Go template truth: false, 0, nil, and empty strings, lists and maps are false."""
    if value is None or value is NO_VALUE:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, (str, list, tuple, dict)):
        return len(value) > 0
    return True


def _float(value: float) -> str:
    """Go's ``%v`` of a float64: the shortest digits, in ``%e`` form when the exponent is
    below -4 or at least 6 (``1e+06``), else ``%f`` form (strconv's 'g', shortest)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    digits = repr(abs(value))
    # the shortest round-trip digits and the decimal exponent
    if "e" in digits:
        mant, exp_text = digits.split("e")
        exp = int(exp_text)
        digs = mant.replace(".", "")
    else:
        whole, _, frac = digits.partition(".")
        if whole != "0":
            exp = len(whole) - 1
            digs = whole + frac
        else:
            stripped = frac.lstrip("0")
            exp = -(len(frac) - len(stripped) + 1)
            digs = stripped
    digs = digs.lstrip("0").rstrip("0") or "0"
    if exp < -4 or exp >= 6:
        body = digs[0] + ("." + digs[1:] if len(digs) > 1 else "")
        return f"{sign}{body}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digs}"
    if len(digs) <= exp + 1:
        return sign + digs + "0" * (exp + 1 - len(digs))
    return f"{sign}{digs[:exp + 1]}.{digs[exp + 1:]}"


def show(value: Any) -> str:
    """A value as Go's fmt prints it with ``%v`` (what an action writes)."""
    if value is NO_VALUE:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{show(k)}:{show(value[k])}"
                                 for k in sorted(value, key=str)) + "]"
    raise Unsupported(f"printing a {type(value).__name__}")


def _basic(value: Any, what: str) -> Any:
    if value is NO_VALUE or value is None or isinstance(value, (list, tuple, dict)):
        raise TemplateError(f"error calling {what}: incompatible types for comparison")
    return value


def _kind(value: Any) -> str:
    """Go's basic kind of a value: a literal 3 is an int, a parameter 3 a float64 (Argo CD
    decodes parameters from JSON), and the two do not compare. Anything else compares as a
    string."""
    kind = _go_type(value)
    return kind if kind in ("bool", "int", "float64") else "string"


def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise TemplateError("error calling eq: missing argument for comparison")
    a = _basic(first, "eq")
    for other in others:
        b = _basic(other, "eq")
        if _kind(a) != _kind(b):
            raise TemplateError("error calling eq: incompatible types for comparison")
        if a == b:
            return True
    return False


def _compare(name: str, test: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def compare(a: Any, b: Any) -> bool:
        a, b = _basic(a, name), _basic(b, name)
        if isinstance(a, bool) or isinstance(b, bool):
            raise TemplateError(f"error calling {name}: invalid type for comparison")
        if _kind(a) != _kind(b):
            raise TemplateError(f"error calling {name}: incompatible types for comparison")
        return test(a, b)
    return compare


def _len(value: Any) -> int:
    if isinstance(value, (str, list, tuple, dict)):
        return len(value.encode("utf-8")) if isinstance(value, str) else len(value)
    raise TemplateError(f"error calling len: len of type {type(value).__name__}")


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            item = item.get(key, None) if key in item else None
        elif isinstance(item, (list, tuple, str)) and isinstance(key, int) \
                and not isinstance(key, bool):
            if not 0 <= key < len(item):
                raise TemplateError(f"error calling index: index out of range: {key}")
            item = item[key] if not isinstance(item, str) else item.encode("utf-8")[key]
        elif item is None or item is NO_VALUE:
            raise TemplateError("error calling index: index of untyped nil")
        else:
            raise TemplateError(f"error calling index: cannot index {show(item)!r} with "
                                f"{show(key)!r}")
    return item


_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def _printf(fmt: str, *args: Any) -> str:
    values = list(args)
    out: list[str] = []
    pos = 0
    for match in _VERB.finditer(fmt):
        out.append(fmt[pos:match.start()])
        pos = match.end()
        flags, width, precision, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        if flags or width or precision:
            raise Unsupported(f"printf verb {match.group()!r}")
        if not values:
            out.append(f"%!{verb}(MISSING)")
            continue
        value = values.pop(0)
        if value is None or value is NO_VALUE:
            out.append("<nil>" if verb == "v" else f"%!{verb}(<nil>)")
        elif verb == "v" or (verb == "s" and isinstance(value, str)):
            out.append(show(value))
        elif verb == "d" and isinstance(value, int) and not isinstance(value, bool):
            out.append(str(value))
        elif verb == "q" and isinstance(value, str):
            out.append(_quote(value))
        else:
            raise Unsupported(f"printf verb %{verb} of {type(value).__name__}")
    out.append(fmt[pos:])
    if values:
        raise Unsupported("printf with extra arguments")
    return "".join(out)


def _quote(text: str) -> str:
    """Go's ``%q`` for a string of printable characters."""
    if any(not ch.isprintable() for ch in text):
        raise Unsupported("quoting non-printable characters")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _print(*args: Any) -> str:
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += show(arg)
    return out


def _string(value: Any) -> str:
    """sprig's strval: strings as they are, anything else as fmt prints it."""
    return value if isinstance(value, str) else show(value)


def _default(fallback: Any, *given: Any) -> Any:
    if not given or not truth(given[0]):
        return fallback
    return given[0]


def _trunc(count: int, text: Any) -> str:
    value = _string(text)
    if count < 0:
        return value[len(value) + count:] if len(value) + count > 0 else value
    return value[:count]


def _normalize(name: Any) -> str:
    """Argo CD's ``normalize``: a DNS-1123-ish name (lower case, other characters '-')."""
    text = re.sub(r"[^-a-z0-9.]", "-", _string(name).lower())
    return text[:253].strip("-.")


FUNCTIONS: dict[str, Callable[..., Any]] = {
    # Go's builtins (and/or are handled lazily by the evaluator)
    "not": lambda v: not truth(v),
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _compare("lt", lambda a, b: a < b),
    "le": _compare("le", lambda a, b: a <= b),
    "gt": _compare("gt", lambda a, b: a > b),
    "ge": _compare("ge", lambda a, b: a >= b),
    "len": _len,
    "index": _index,
    "print": _print,
    "printf": _printf,
    # sprig
    "default": _default,
    "empty": lambda v: not truth(v),
    "lower": lambda s: _string(s).lower(),
    "upper": lambda s: _string(s).upper(),
    "trim": lambda s: _string(s).strip(),
    "trimPrefix": lambda p, s: _string(s).removeprefix(p),
    "trimSuffix": lambda p, s: _string(s).removesuffix(p),
    "replace": lambda old, new, s: _string(s).replace(old, new),
    "trunc": _trunc,
    "quote": lambda *a: " ".join(_quote(_string(v)) for v in a if v is not None),
    "squote": lambda *a: " ".join(f"'{_string(v)}'" for v in a if v is not None),
    "contains": lambda sub, s: sub in _string(s),
    "hasPrefix": lambda p, s: _string(s).startswith(p),
    "hasSuffix": lambda p, s: _string(s).endswith(p),
    "join": lambda sep, v: sep.join(_string(x) for x in v) if isinstance(v, list)
    else _string(v),
    "splitList": lambda sep, s: _string(s).split(sep),
    "toString": _string,
    # Argo CD
    "normalize": _normalize,
}
_GO_BUILTINS = frozenset({"and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len",
                          "index", "print", "printf"})


# --- evaluation -------------------------------------------------------------------------------

@dataclass
class _Env:
    root: Any
    missing_error: bool


def _literal(tok: _Tok) -> Any:
    if tok.kind == "string":
        body = tok.text[1:-1]
        if "\\" in body:
            body = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
                          .get(m.group(1), "\\" + m.group(1)), body)
            if re.search(r"\\[^nt\"\\]", tok.text[1:-1]):
                raise Unsupported(f"string escape in {tok.text}")
        return body
    if tok.kind == "raw":
        return tok.text[1:-1]
    text = tok.text.replace("_", "")
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", text):
        return int(text, 16)
    return float(text)


def _field(tok: _Tok, dot: Any, env: _Env) -> Any:
    text = tok.text
    value = dot
    if text.startswith("$"):
        name, _, rest = text.partition(".")
        if name != "$":
            raise Unsupported(f"template variable {name}")
        value, text = env.root, "." + rest if rest else "."
    for part in [p for p in text.split(".") if p]:
        if isinstance(value, dict):
            if part in value:
                value = value[part]
            elif env.missing_error:
                raise TemplateError(f"map has no entry for key {part!r}")
            else:
                value = NO_VALUE
        elif value is NO_VALUE and not env.missing_error:
            pass  # a field of a missing key is missing too
        elif value is NO_VALUE or value is None:
            raise TemplateError(f"nil pointer evaluating interface {{}}.{part}")
        else:
            raise TemplateError(f"can't evaluate field {part} in type {_go_type(value)}")
    return value


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    return "interface {}"


def _operand(item: _Tok | list[Any], dot: Any, env: _Env) -> Any:
    if isinstance(item, list):
        return _run_pipeline(item, dot, env)
    if item.kind == "field":
        return _field(item, dot, env)
    if item.kind == "ident":
        if item.text in ("true", "false"):
            return item.text == "true"
        if item.text == "nil":
            raise TemplateError("nil is not a command")
        return _call(item.text, [], dot, env)
    return _literal(item)


def _call(name: str, args: Sequence[_Tok | list[Any]], dot: Any, env: _Env,
          piped: tuple[Any, ...] = ()) -> Any:
    if name in ("and", "or"):
        operands: list[Callable[[], Any]] = [
            (lambda a=a: _operand(a, dot, env)) for a in args]  # type: ignore[misc]
        operands += [(lambda v=v: v) for v in piped]  # type: ignore[misc]
        if not operands:
            raise TemplateError(f"wrong number of args for {name}: want at least 1 got 0")
        value: Any = None
        for get in operands:
            value = get()
            if truth(value) != (name == "and"):
                return value
        return value
    if name not in FUNCTIONS:
        raise Unsupported(f"function {name!r}")
    values = [_operand(a, dot, env) for a in args] + list(piped)
    try:
        return FUNCTIONS[name](*values)
    except TypeError as err:
        raise Unsupported(f"{name} with these arguments ({err})") from None


def _run_pipeline(pipeline: list[list[Any]], dot: Any, env: _Env) -> Any:
    value: tuple[Any, ...] = ()
    for command in pipeline:
        head = command[0]
        if isinstance(head, _Tok) and head.kind == "ident" and head.text not in (
                "true", "false", "nil"):
            value = (_call(head.text, command[1:], dot, env, value),)
            continue
        if len(command) > 1:
            raise TemplateError(f"can't give argument to non-function {_describe(head)}")
        if value:
            raise TemplateError(f"can't give argument to non-function {_describe(head)}")
        value = (_operand(head, dot, env),)
    return value[0]


def _describe(item: Any) -> str:
    return item.text if isinstance(item, _Tok) else "(...)"


def _execute(nodes: list[Any], dot: Any, env: _Env, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Action):
            value = _run_pipeline(node.pipeline, dot, env)
            out.append("<no value>" if value is None else show(value))  # a nil interface
        else:
            value = _run_pipeline(node.pipeline, dot, env)
            if truth(value):
                _execute(node.then, value if node.keyword == "with" else dot, env, out)
            else:
                _execute(node.otherwise, dot, env, out)


def render(text: str, params: Mapping[str, Any], options: Sequence[str] = ()) -> str:
    """``text`` executed as Argo CD executes an ApplicationSet template string.

    Raises :class:`Unsupported` for a construct outside the subset and
    :class:`TemplateError` where Go fails too (Argo CD then generates no Application).
    """
    missing_error = False
    for option in options:
        if option in ("missingkey=error",):
            missing_error = True
        elif option in ("missingkey=default", "missingkey=invalid", "missingkey=zero"):
            if option == "missingkey=zero":
                raise Unsupported("goTemplateOptions missingkey=zero")
            missing_error = False
        else:
            raise Unsupported(f"goTemplateOptions {option!r}")
    if "{{" not in text:
        return text
    nodes = parse(text)
    out: list[str] = []
    _execute(nodes, dict(params), _Env(dict(params), missing_error), out)
    return "".join(out)


def from_json(value: Any) -> Any:
    """Parameters as Argo CD holds them (decoded from JSON: every number a float64)."""
    if isinstance(value, dict):
        return {str(k): from_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [from_json(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def builtins_only(text: str) -> bool:
    """Whether a template calls only Go's own functions (for the differential tests)."""
    names = {tok.text for m in _actions(text) if not m.group(2).strip().startswith("/*")
             for tok in _tokens(m.group(2).strip()) if tok.kind == "ident"}
    return not (names & (set(FUNCTIONS) - _GO_BUILTINS))
