"""What a policy may do: built-ins Gatekeeper refuses, and how evaluation output is kept quiet.

Gatekeeper (since 3.8) starts its Rego driver with ``--disable-opa-builtin={http.send}``: the
built-in is removed from the compiler's capabilities, so a ConstraintTemplate that calls it is
rejected when it is added (external data is the supported way to reach a service). regorus knows
``http.send`` but makes it undefined, which would turn such a template into a silent pass; here
it is refused when the template is loaded, naming the file and line of the call.

Gatekeeper also compiles templates with ``print`` statements switched off unless
``--enable-rego-print`` is given; the engines here gather ``print()`` output instead of writing
it to stderr (where a CI runner would read ``::error::`` or ``::stop-commands::`` lines as
workflow commands) and drop it (``checker.policy.engine``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from typing import Any

DISABLED_BUILTINS: frozenset[str] = frozenset({"http.send"})


def _dicts(tree: Any) -> Iterator[dict[str, Any]]:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _ref_name(node: Any) -> str | None:
    """``a.b.c`` of a call's function reference, or None when it is not a plain dotted name."""
    if not isinstance(node, dict) or len(node) != 1:
        return None
    ((kind, body),) = node.items()
    if kind == "Var" and isinstance(body, dict):
        value = body.get("value")
        return value if isinstance(value, str) else None
    if kind == "RefDot" and isinstance(body, dict):
        head = _ref_name(body.get("refr"))
        field = body.get("field")
        if head is not None and isinstance(field, list) and field and isinstance(field[-1], str):
            return f"{head}.{field[-1]}"
    return None


@functools.lru_cache(maxsize=2048)
def _calls(source: str, rego_v1: bool) -> tuple[tuple[str, int], ...] | None:
    """Every (function name, line) called in ``source``; None when regorus cannot parse it."""
    import regorus

    engine = regorus.Engine()
    engine.set_rego_v0(not rego_v1)
    try:
        engine.add_policy("module.rego", source)
        tree = json.loads(engine.get_ast_as_json())[0]["ast"]
    except (RuntimeError, ValueError, KeyError, IndexError):
        return None
    out = set()
    for node in _dicts(tree):
        call = node.get("Call")
        if isinstance(call, dict):
            name = _ref_name(call.get("fcn"))
            line = call.get("span", {}).get("line", 0)
            if name is not None:
                out.add((name, int(line) if isinstance(line, int) else 0))
    return tuple(sorted(out, key=lambda c: (c[1], c[0])))


def refused_calls(modules: Iterable[str], *, rego_v1: bool,
                  disabled: frozenset[str] = DISABLED_BUILTINS) -> list[tuple[int, str, int]]:
    """(module index, built-in, line) of every call to a ``disabled`` built-in.

    A module regorus cannot parse gives nothing here: compiling it reports the error.
    """
    out = []
    for index, source in enumerate(modules):
        calls = _calls(source, rego_v1)
        for name, line in calls or ():
            if name in disabled:
                out.append((index, name, line))
    return out
