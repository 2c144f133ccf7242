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
- Gatekeeper does not turn on strict built-in errors: a built-in that fails (``to_number("x")``,
  a division by zero, ``split(0, "/")``) makes its expression undefined. The binding evaluates
  with strict built-in errors and offers no switch. Such a failure is returned as an
  ``EvalError`` that says so: the scan reports ``policy.evaluation-error`` and fails (closed)
  where Gatekeeper would silently go on. With objects the API server accepts (fields of their
  schema types) the shipped templates never reach a failing built-in; the differential test
  counts and shows the cases.
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


def _message(err: Exception) -> str:
    text = str(err)
    if any(kind in text for kind in BUILTIN_ERRORS):
        return (f"{text} (OPA here runs with strict built-in errors; Gatekeeper would treat "
                "the failing built-in as undefined)")
    return text


class _Policy:
    def __init__(self, engine: Any, path: str) -> None:
        self._engine = engine
        self._path = path

    def __del__(self) -> None:
        # The binding's engine references itself (its callback trampoline), so only the cycle
        # collector would free it, and evaluation runs with that collector paused: free the Go
        # side as soon as the compiled template goes. Left to the collector, instances pile up
        # and every later evaluation pays for Go's garbage collector scanning them.
        self._engine.close()

    def evaluate(self, input_json: str) -> list[dict[str, Any]] | EvalError:
        from opa_bindings import OpaError, OpaUndefinedError

        try:
            value = self._engine.eval_document(self._path, json.loads(input_json))
        except OpaUndefinedError:
            return []
        except OpaError as err:
            return EvalError(_message(err))
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
        for filename, source in reversed(modules):  # libs first: the template calls them
            try:
                engine.add_policy(filename, as_v1(source, rego_v1))
            except PolicyError:
                raise
            except OpaError as err:
                raise PolicyError(f"Rego does not compile (OPA): {err.message}") from err
        if data_json is not None:
            try:
                engine.add_data(json.loads(data_json))
            except OpaError as err:
                raise PolicyError(f"data does not load into OPA: {err.message}") from err
        return _Policy(engine, f"{package}.violation")
