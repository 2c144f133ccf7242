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

import re
from collections.abc import Iterable, Iterator

DISABLED_BUILTINS: frozenset[str] = frozenset({"http.send"})
# Built-ins Gatekeeper allows that reach the network from repository content: OPA's
# net.lookup_ip_addr sends a DNS query for a name the policy builds (a channel out of the
# runner for anything the policy reads). Repository content must not reach the network
# (docs/security.md), and a pull request's own policies run in the policy-change what-if,
# so a template calling one is refused here, naming the call, where Gatekeeper would run it.
NETWORK_BUILTINS: frozenset[str] = frozenset({"net.lookup_ip_addr"})


_CALL = re.compile(r"(?<![\w.$])([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)\s*\(")


def code_only(source: str) -> str:
    """``source`` with comments removed and string literals emptied (``""``), lines kept.

    A linear scan: parsing untrusted Rego with regorus outside a bounded worker is not safe
    (its parser takes exponential time on nested brackets).
    """
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "#":
            while i < n and source[i] != "\n":
                i += 1
            continue
        if ch in ('"', "`"):
            i += 1
            while i < n and source[i] != ch:
                if ch == '"' and source[i] == "\\":
                    i += 1
                if i < n and source[i] == "\n":
                    out.append("\n")
                i += 1
            out.append(ch + ch)
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _calls(source: str) -> Iterator[tuple[str, int]]:
    """Every (dotted function name, line) called in ``source``."""
    code = code_only(source)
    for match in _CALL.finditer(code):
        name = re.sub(r"\s+", "", match.group(1))
        yield name, code.count("\n", 0, match.start()) + 1


def refused_calls(modules: Iterable[str], *, rego_v1: bool,
                  disabled: frozenset[str] = DISABLED_BUILTINS) -> list[tuple[int, str, int]]:
    """(module index, built-in, line) of every call to a ``disabled`` built-in.

    ``rego_v1`` is accepted for symmetry with the engines; the call syntax is the same in both.
    """
    del rego_v1
    return [(index, name, line) for index, source in enumerate(modules)
            for name, line in _calls(source) if name in disabled]
