"""Real OPA (Go), driven the way Gatekeeper's Rego driver drives it.

The binding is the PyPI package ``opa-golib-python-bindings``: OPA's ``rego`` package built as
a C shared library behind a ctypes wrapper. It is optional (its metadata asks for Python 3.14,
although the wheel runs on 3.11; the container image and CI install it). Where it is importable
(and ``GITOPS_CHECKER_OPA=0`` is not set) it evaluates every template that is not a shipped one
(``checker.policy.evaluate``), and the
test suite uses it as the oracle for every other path (tests/policy/test_opa_differential.py).

How Gatekeeper evaluates a template (frameworks/constraint, ``drivers/rego``): the template's
Rego is compiled with its libs; for each constraint and object the hook module evaluates
``data.<template>.violation[r]`` with ``input = {"review": <AdmissionRequest>, "parameters":
<constraint spec.parameters>}`` and ``data.inventory`` from the synced objects, and turns each
``r`` into ``{"msg": r.msg, "details": object.get(r, "details", {})}``. So:

- a violation that is not an object, or has no ``msg``, gives nothing (``r.msg`` is undefined);
- two violations with the same ``msg`` and ``details`` are one (the responses form a set);
- templates are Rego v0 unless ``code[].source.version`` says v1. This binding parses v1 only,
  so v0 modules are converted to v1 syntax first (``checker.policy.rewrite.to_v1`` without its
  guards: ``contains`` and ``if`` added, ``future.keywords`` imports replaced by ``rego.v1``)
  and the built-ins v1 dropped are mapped to their equivalents (``re_match`` is
  ``regex.match``; ``any``/``all`` become local functions with the same meaning);
- Gatekeeper does not turn on strict built-in errors: its driver (frameworks/constraint,
  ``pkg/client/drivers/rego/driver.go``, ``(*Driver).eval``) builds ``rego.New`` with the
  compiler, store, input, query, print settings and Rego v0, and no ``rego.StrictBuiltinErrors``,
  so OPA's default applies: a built-in that fails (``to_number("x")``, ``regex.match`` with a
  bad pattern, ``split(0, "/")``) is recorded and its expression is undefined; evaluation goes
  on (``not to_number("x")`` is true). An error that is not a built-in's (a conflict between
  rule values, a cancelled query) still ends the query, and the driver turns it into one
  violation per constraint carrying the error text. The binding evaluates with strict built-in
  errors and offers no switch, so a template runs strictly first; only when a built-in fails is
  it evaluated again with every call of a built-in in ``LAX`` routed through a function of
  ours (``gitops_checker_lax__<name>``) that evaluates the same built-in on real OPA (a helper
  instance, the same arguments) and gives undefined when it fails: Gatekeeper's meaning, with
  OPA computing every value. Without a failure both readings are the same, so the strict
  result stands; the infix ``+ * / %`` are rerouted the same way (``LAX_INFIX``). A failure in
  a built-in outside ``LAX`` or in ``-`` (a set difference on sets), or in a template the
  rewrite cannot read, stays an ``EvalError`` that says so:
  the scan reports ``policy.evaluation-error`` and fails (closed) where Gatekeeper would go on.
  ``LAX`` holds the built-ins whose arguments and results are strings, numbers, arrays and
  objects without sets, since the values cross to Python as JSON (a set would arrive as an
  array). With objects the API server accepts (fields of their schema types) the shipped
  templates never reach a failing built-in; the differential test counts and shows the cases.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from checker.errors import PolicyError
from checker.policy.engine import CompiledPolicy, EvalError, Executable, Program

NAME = "opa"
DISTRIBUTION = "opa-golib-python-bindings"
# OPA release embedded in each version of the binding (from the package's build files)
OPA_RELEASES = {"0.4.4": "1.20.2"}
BUILTIN_ERRORS = ("eval_builtin_error", "eval_type_error")
# Built-ins a template may call on an object's fields that can fail at run time, by arity; none
# takes or gives a set (see the module docstring). A failing call of one of them is undefined.
LAX: dict[str, int] = {
    "to_number": 1, "abs": 1, "round": 1, "ceil": 1, "floor": 1, "numbers.range": 2,
    "format_int": 2, "count": 1, "concat": 2, "split": 2, "replace": 3, "substring": 3,
    "trim": 2, "trim_left": 2, "trim_right": 2, "trim_prefix": 2, "trim_suffix": 2,
    "trim_space": 1, "lower": 1, "upper": 1, "startswith": 2, "endswith": 2, "contains": 2,
    "indexof": 2, "indexof_n": 2, "strings.replace_n": 2, "strings.reverse": 1,
    "strings.count": 2, "regex.match": 2, "regex.split": 2, "regex.find_n": 3,
    "regex.find_all_string_submatch_n": 3, "regex.replace": 3, "regex.template_match": 4,
    "regex.globs_match": 2, "glob.match": 3, "units.parse": 1, "units.parse_bytes": 1,
    "base64.decode": 1, "base64url.decode": 1, "hex.decode": 1, "urlquery.decode": 1,
    "json.unmarshal": 1, "yaml.unmarshal": 1, "time.parse_rfc3339_ns": 1,
    "time.parse_duration_ns": 1, "time.parse_ns": 2, "semver.compare": 2,
    "net.cidr_contains": 2, "net.cidr_intersects": 2,
}
LAX_PREFIX = "gitops_checker_lax__"
_V1_DROPPED = re.compile(r"(?<![\w.$])(re_match|any|all)\s*\(")
_HELPERS = """

gitops_checker_any(xs) if {
\tsome x in xs
\tx == true
}

gitops_checker_all(xs) if {
\tevery x in xs {
\t\tx == true
\t}
}
"""


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether the OPA binding is installed, with its library (checked without loading it, so
    that processes forked later can still start Go's runtime themselves)."""
    spec = importlib.util.find_spec("opa_bindings")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any((Path(p) / "libopabridge.so").is_file() for p in spec.submodule_search_locations)


def loaded() -> bool:
    """Whether this process has loaded OPA's library (Go's runtime is running in it)."""
    import sys

    engine = sys.modules.get("opa_bindings.engine")
    return engine is not None and getattr(engine, "_lib", None) is not None


SWITCH = "GITOPS_CHECKER_OPA"


def exact_engine() -> OpaEngine | None:
    """Real OPA for repository templates: whenever it is installed (``GITOPS_CHECKER_OPA=0``
    turns it off, for a comparison with regorus).

    Each evaluation worker starts its own Go runtime under the worker's bounds
    (``checker.parallel``: a time limit per step, a memory cap that leaves room for what Go
    reserves without using); tests/policy/test_bounded_opa.py runs hostile templates through it.
    """
    import os

    return OpaEngine() if available() and os.environ.get(SWITCH) != "0" else None


@functools.lru_cache(maxsize=1)
def version() -> str:
    """``v<release> via <binding> <version>``: the OPA release the installed binding embeds."""
    try:
        binding = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
    release = OPA_RELEASES.get(binding)
    if release is None:
        return f"via {DISTRIBUTION} {binding}"
    return f"v{release} via {DISTRIBUTION} {binding}"


def as_v1(source: str, rego_v1: bool) -> str:
    """A module as Rego v1 for the binding: converted syntax, dropped built-ins mapped."""
    from checker.policy import rewrite
    from checker.policy.semantics import split_bodies

    if rego_v1:
        text = source
    else:
        try:
            text = rewrite.to_v1(source, False, False)
        except PolicyError:  # the v0 conversion reads the module with regorus's parser
            text = rewrite.to_v1(split_bodies(source), False, False)
    if rego_v1 or not _V1_DROPPED.search(text):
        return text
    from checker.policy.batch import strip_comments

    code = strip_comments(text)
    used = {m.group(1) for m in _V1_DROPPED.finditer(code)}
    text = _V1_DROPPED.sub(lambda m: {"re_match": "regex.match("}.get(
        m.group(1), f"gitops_checker_{m.group(1)}("), text)
    if used & {"any", "all"}:
        text = text.rstrip("\n") + _HELPERS
    return text


def lax_name(builtin: str) -> str:
    """The name of the function that stands for ``builtin`` in a lax evaluation."""
    return LAX_PREFIX + builtin.replace(".", "__")


# Infix operators that fail at run time on numbers (``x / 0``) or on other types (``"a" * 2``),
# by regorus's name for them: the built-in's name and the expression the stand-in evaluates.
# ``-`` is left out: on two sets it is the set difference, and sets do not cross as JSON.
LAX_INFIX: dict[str, tuple[str, str]] = {
    "Add": ("plus", "input[0] + input[1]"), "Mul": ("mul", "input[0] * input[1]"),
    "Div": ("div", "input[0] / input[1]"), "Mod": ("rem", "input[0] % input[1]"),
}


def _operand(node: dict[str, Any], data: bytes) -> tuple[int, int]:
    """The source range of an operand; regorus's spans leave out a string's closing quote."""
    ((kind, inner),) = node.items()
    start, end = int(inner["span"]["start"]), int(inner["span"]["end"])
    if kind in ("String", "RawString") and data[end:end + 1] in (b'"', b"`"):
        end += 1
    return start, end


def lax_source(text: str) -> str:
    """``text`` (Rego v1) with every call of a ``LAX`` built-in and every ``LAX_INFIX``
    operation routed to its stand-in.

    The calls and operations are found on regorus's AST: a call keeps its arguments (and an
    output argument) as written and only its name changes; ``a / b`` becomes
    ``gitops_checker_lax__div(a, b)``, nested operations from the inside out. Raises
    PolicyError when regorus cannot read the module."""
    from checker.policy.rewrite import _ast, _dicts

    data = text.encode()
    # (start, end, replacement or None, operands): a rename, or an operation to rebuild
    items: list[tuple[int, int, str, list[tuple[int, int]]]] = []
    for node in _dicts(_ast(text, rego_v1=True)):
        call, arith = node.get("Call"), node.get("ArithExpr")
        if isinstance(call, dict) and isinstance(call.get("fcn"), dict) and len(call["fcn"]) == 1:
            span = next(iter(call["fcn"].values())).get("span") or {}
            start, end = int(span.get("start", 0)), int(span.get("end", 0))
            name = data[start:end].decode()
            if name in LAX:
                items.append((start, end, lax_name(name), []))
        elif isinstance(arith, dict) and arith.get("op") in LAX_INFIX:
            span = arith["span"]
            items.append((int(span["start"]), int(span["end"]),
                          lax_name(LAX_INFIX[arith["op"]][0]),
                          [_operand(arith["lhs"], data), _operand(arith["rhs"], data)]))
    items.sort(key=lambda item: (item[0], -item[1]))

    def render(start: int, end: int) -> str:
        out, pos = [], start
        for item_start, item_end, name, operands in items:
            if item_start < pos or item_end > end:
                continue  # inside one already rendered, or outside this range
            out.append(data[pos:item_start].decode())
            if operands:
                out.append(f"{name}(" + ", ".join(render(a, b) for a, b in operands) + ")")
            else:
                out.append(name)
            pos = item_end
        out.append(data[pos:end].decode())
        return "".join(out)

    return render(0, len(data))


_HELPER: list[Any] = []  # the OPA instance that evaluates the stand-ins' built-ins


def _stand_in(expression: str) -> Any:
    """A Python function for the binding: ``expression`` (over ``input[i]``, the arguments)
    on real OPA, None (undefined) when it fails or is undefined."""
    from opa_bindings import OpaEngine as Binding
    from opa_bindings import OpaError

    query = f"x := {expression}"

    def call(*args: Any) -> Any:
        if not _HELPER:
            _HELPER.append(Binding())
        try:
            rows = _HELPER[0].eval_query(query, list(args))
        except OpaError:
            return None  # Gatekeeper: a failing built-in is undefined
        return rows[0].get("x") if rows else None

    return call


def stand_ins() -> dict[str, tuple[int, Any]]:
    """Every stand-in function by name, with its arity."""
    out: dict[str, tuple[int, Any]] = {}
    for builtin, arity in LAX.items():
        args = ", ".join(f"input[{i}]" for i in range(arity))
        out[lax_name(builtin)] = (arity, _stand_in(f"{builtin}({args})"))
    for builtin, expression in LAX_INFIX.values():
        out[lax_name(builtin)] = (2, _stand_in(expression))
    return out


def responses(value: Any) -> list[dict[str, Any]] | EvalError:
    """Gatekeeper's hook over a ``violation`` value: objects with ``msg``, once each."""
    if value is None:
        return []
    if not isinstance(value, list):
        return EvalError(f"violation is not a set (got {type(value).__name__})")
    seen: set[str] = set()
    out = []
    for item in value:
        if not isinstance(item, dict) or "msg" not in item:
            continue
        response = {"msg": item["msg"], "details": item.get("details", {})}
        key = json.dumps(response, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(response)
    return out


def _message(err: Exception, why: str = "") -> str:
    text = str(err)
    if any(kind in text for kind in BUILTIN_ERRORS):
        return (f"{text} (OPA here runs with strict built-in errors; Gatekeeper would treat "
                "the failing built-in as undefined, which this check reproduces only for the "
                f"built-ins it lists{': ' + why if why else ''}; the run fails closed)")
    return text


class _Policy:
    def __init__(self, engine: Any, path: str, modules: Sequence[tuple[str, str]] = (),
                 data_json: str | None = None) -> None:
        self._engine = engine
        self._path = path
        self._modules = tuple(modules)  # (filename, Rego v1), libs first
        self._data_json = data_json
        self._lax: Any = None  # the lax instance, built on the first failing built-in
        self._lax_error = ""  # why there is none

    def __del__(self) -> None:
        # The binding's engine references itself (its callback trampoline), so only the cycle
        # collector would free it, and evaluation runs with that collector paused: free the Go
        # side as soon as the compiled template goes. Left to the collector, instances pile up
        # and every later evaluation pays for Go's garbage collector scanning them.
        self._engine.close()
        if self._lax is not None:
            self._lax.close()

    def _lax_engine(self) -> Any:
        """The template with the ``LAX`` built-ins' stand-ins, or None (``_lax_error`` says
        why): compiled once, on the first evaluation in which a built-in fails."""
        from opa_bindings import OpaEngine as Binding
        from opa_bindings import OpaError

        if self._lax is not None or self._lax_error:
            return self._lax
        engine = Binding()
        engine.print_handler = lambda message, location: None
        try:
            for name, (arity, function) in stand_ins().items():
                engine.register_function(name, function, arity=arity)
            for filename, source in self._modules:
                engine.add_policy(filename, lax_source(source))
            if self._data_json is not None:
                engine.add_data(json.loads(self._data_json))
        except (PolicyError, OpaError) as err:
            engine.close()
            self._lax_error = str(err)
            return None
        self._lax = engine
        return engine

    def evaluate(self, input_json: str) -> list[dict[str, Any]] | EvalError:
        from opa_bindings import OpaError, OpaUndefinedError

        data = json.loads(input_json)
        try:
            value = self._engine.eval_document(self._path, data)
        except OpaUndefinedError:
            return []
        except OpaError as err:
            if not any(kind in str(err) for kind in BUILTIN_ERRORS):
                return EvalError(str(err))
            lax = self._lax_engine()  # Gatekeeper's reading: the failing call is undefined
            if lax is None:
                return EvalError(_message(err, f"the lax reading failed: {self._lax_error}"))
            try:
                value = lax.eval_document(self._path, data)
            except OpaUndefinedError:
                return []
            except OpaError as again:
                return EvalError(_message(again))
        return responses(value)


class OpaEngine:
    """PolicyEngine backed by real OPA (see the module docstring)."""

    name = NAME

    @property
    def version(self) -> str:
        """The OPA release that evaluates."""
        return version()

    def executable(self, data_json: str, modules: Sequence[tuple[str, str]], entry: str, *,
                   rego_v1: bool) -> Executable | None:
        """OPA has no separate ahead-of-time path here: always None."""
        return None

    def program(self, *, rego_v1: bool, data_json: str | None) -> Program:
        """Not offered: templates run on OPA one constraint at a time, as in Gatekeeper."""
        raise PolicyError("the OPA engine evaluates each constraint on its own")

    def compile(
        self, package: str, modules: Sequence[tuple[str, str]], *, rego_v1: bool,
        data_json: str | None,
    ) -> CompiledPolicy:
        """The modules in a fresh OPA instance; ``data_json`` is ``data`` (the inventory)."""
        from opa_bindings import OpaEngine as Binding
        from opa_bindings import OpaError

        engine = Binding()
        engine.print_handler = lambda message, location: None  # never raw on stderr
        added = []
        for filename, source in reversed(modules):  # libs first: the template calls them
            text = as_v1(source, rego_v1)
            try:
                engine.add_policy(filename, text)
            except OpaError as err:
                raise PolicyError(f"Rego does not compile (OPA): {err.message}") from err
            added.append((filename, text))
        if data_json is not None:
            try:
                engine.add_data(json.loads(data_json))
            except OpaError as err:
                raise PolicyError(f"data does not load into OPA: {err.message}") from err
        return _Policy(engine, f"{package}.violation", added, data_json)
