"""Ahead-of-time compiled evaluation of the shipped templates with regorus's RVM.

regorus compiles Rego into programs for its register VM (``regorus.Program`` and
``regorus.Rvm``), which evaluate the shipped templates about four times faster than its
tree-walking interpreter. The VM is reached only through ``PolicyEngine.executable``
(``checker.policy.regorus_engine``). The VM in gordon-to-regorus 0.13.0 has limits that decide
how it is used:

- it parses Rego v1 only, and an assignment whose value is undefined (``x := obj.missing``)
  does not stop the body as it must: modules are given to it as ``checker.policy.rewrite.to_v1``
  writes them (v1 syntax, with a guard after every ``:=``);
- so that a result is never taken from a construct the VM gets wrong, callers run on it only
  templates whose Rego is byte for byte a shipped template (``checker.policy.packs.is_shipped``;
  this module does not read the catalog: the evaluator tells the batches which members may
  run here). CI evaluates every shipped template on the VM and on the interpreter over the
  suites, the Pod Security fixtures and generated variants, and requires identical results
  (tests/policy/test_rvm_equivalence.py), and the same findings as real OPA
  (tests/policy/test_opa_differential.py). Any other template, and any object on which the VM fails
  or returns ``"<undefined>"``, goes to the interpreter.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from checker.errors import PolicyError
from checker.policy.engine import clean_error

UNDEFINED = '"<undefined>"'


class Compiled:
    """An RVM program with one entry point, evaluated against many inputs."""

    def __init__(self, data_json: str, modules: Sequence[tuple[str, str]], entry: str) -> None:
        import regorus

        try:
            program = regorus.Program.compile_from_modules("{}", list(modules), [entry])
        except (RuntimeError, ValueError) as err:
            raise PolicyError(f"Rego does not compile for the RVM: {clean_error(err)}") from err
        self._vm = regorus.Rvm()
        self._vm.load_program(program)
        self._vm.set_data_json(data_json)  # data given to the compiler is not seen at run time
        self._entry = entry

    def execute(self, input_json: str) -> Any:
        """The entry point's value as JSON data; None when it fails or is not fully defined."""
        try:
            self._vm.set_input_json(input_json)
            raw = self._vm.execute_entry_point(self._entry)
        except (RuntimeError, ValueError):
            return None
        if UNDEFINED in raw:
            return None
        return json.loads(raw)

