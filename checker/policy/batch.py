"""Evaluate many constraints against one object in a single interpreter call.

Gatekeeper evaluates each (constraint, object) pair on its own. Doing the same here costs one
input upload and one evaluation per pair, and helper rules shared through ``libs`` are
recomputed for every template. A batch group instead holds one copy of each template per
constraint in one program: the package is renamed to ``gitops_checker.<id>`` and
``input.parameters`` becomes a constant rule of that module (or a path under
``data.gitops_checker_params``), so the input is the review alone and is uploaded once per
object, and one aggregate rule per set of matching constraints evaluates them together (shared
library rules are then computed once).
Members the caller allows (``may_compile``: the evaluator allows the shipped templates) run as a
program the engine compiles ahead of time (``PolicyEngine.executable``: regorus's VM), the
others in its interpreter.

Only templates whose Rego reads the input exclusively as ``input.review`` and
``input.parameters`` (and uses no ``with``) are batched; everything else, and every object on
which a batch raises an error, is evaluated the plain way, so results are identical.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from checker.errors import PolicyError
from checker.policy.engine import EvalError, Executable, PolicyEngine, Program
from checker.policy.gatekeeper import Template
from checker.policy.model import Policy
from checker.policy.referential import Inventory, union

PARAMS = "gitops_checker_params"
LOCAL_PARAMS = "gitops_checker_parameters"
_LOCAL_PARAMS_NAME = re.compile(rf"\b{LOCAL_PARAMS}\b")
_OTHER_INPUT = re.compile(r"(?<![\w.$])input\b(?!\.(?:review|parameters)\b)")
_PARAMETERS = re.compile(r"(?<![\w.$])input\.parameters\b")
_WITH = re.compile(r"(?<![\w.$])with\s")
_PACKAGE = re.compile(r"^(\s*)package\s+[A-Za-z_][\w.]*", re.MULTILINE)
MAX_SIGNATURES = 512
MAX_PROGRAMS = 32

Outcome = list[dict[str, Any]] | EvalError


def strip_comments(source: str) -> str:
    """Rego source without ``#`` comments (string literals are kept intact)."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(source):
        ch = source[i]
        if quote:
            out.append(ch)
            if ch == "\\" and quote == '"' and i + 1 < len(source):
                out.append(source[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in ('"', "`"):
            quote = ch
            out.append(ch)
        elif ch == "#":
            while i < len(source) and source[i] != "\n":
                i += 1
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def batchable(template: Template) -> bool:
    """Whether the template can be rewritten without changing what it computes."""
    return _batchable(template.rego, tuple(template.libs))


@functools.lru_cache(maxsize=1024)
def _batchable(rego: str, libs: tuple[str, ...]) -> bool:
    modules = tuple(strip_comments(m) for m in (rego, *libs))
    if any(_OTHER_INPUT.search(m) or _WITH.search(m) for m in modules):
        return False
    return not any(_PARAMETERS.search(lib) for lib in libs)


def _lib_package(source: str) -> str:
    match = _PACKAGE.search(source)
    return match.group(0).split()[-1] if match else ""


@dataclass
class Group:
    """Policies that share one interpreter."""

    rego_v1: bool
    libs: dict[str, str] = field(default_factory=dict)
    members: list[int] = field(default_factory=list)

    def accepts(self, template: Template) -> bool:
        """Same Rego version, and no library package with different source."""
        if template.rego_v1 != self.rego_v1:
            return False
        return all(self.libs.get(_lib_package(lib), lib) == lib for lib in template.libs)


def plan(policies: Sequence[Policy], indexes: Sequence[int]) -> tuple[list[Group], list[int]]:
    """Assign each policy to a batch group, or leave it to be evaluated alone."""
    groups: list[Group] = []
    alone: list[int] = []
    for index in indexes:
        template = policies[index].template
        if not batchable(template):
            alone.append(index)
            continue
        group = next((g for g in groups if g.accepts(template)), None)
        if group is None:
            group = Group(template.rego_v1)
            groups.append(group)
        for lib in template.libs:
            group.libs[_lib_package(lib)] = lib
        group.members.append(index)
    return groups, alone


class BatchRunner:
    """A group's constraints in regorus; evaluates any subset of them in one call.

    Each set of constraints that match together (in practice: per kind of object) gets its own
    interpreter holding just those templates, copied from one that holds only the data. regorus
    spends time per module on every lookup of a rule, so an interpreter with fewer modules is
    cheaper per object (17% fewer instructions per Deployment with every shipped policy on,
    measured with callgrind); after ``MAX_PROGRAMS`` sets, the rest share one interpreter
    with every template.
    """

    def __init__(self, engine: PolicyEngine, group: Group, policies: Sequence[Policy],
                 inventory: Inventory, may_compile: Callable[[Template], bool]) -> None:
        self.members = group.members
        self._params = {f"c{i}": policies[i].constraint.parameters for i in group.members}
        self._inventory = inventory
        self._sync = {i: policies[i].template.sync for i in group.members
                      if policies[i].template.uses_inventory}
        self._engine = engine
        self._rego_v1 = group.rego_v1
        self._data_json = self._data_for(group.members)
        self._base: Program = engine.program(rego_v1=group.rego_v1, data_json=self._data_json)
        self._libs = sorted(group.libs.values())
        self._modules: dict[int, str] = {}
        for i in group.members:
            rego = _PACKAGE.sub(rf"\1package gitops_checker.c{i}", policies[i].template.rego,
                                count=1)
            self._modules[i] = _with_parameters(rego, policies[i].constraint.parameters,
                                                f"data.{PARAMS}.c{i}")
        self.program = self._with_modules(group.members)  # raises PolicyError if one is bad
        self._signatures: dict[tuple[int, ...], str] = {}
        self._programs: dict[tuple[int, ...], tuple[Program, str] | None] = {}
        self._compiled = frozenset(i for i in group.members
                                   if may_compile(policies[i].template))
        self._splits: dict[tuple[int, ...], tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._executables: dict[tuple[int, ...], Executable | None] = {}

    def _data_for(self, members: Sequence[int]) -> str:
        """``data`` for ``members``: their parameters, and the inventory if one of them reads it.

        Loading the inventory costs time per interpreter, so it goes only where it is read, with
        the kinds its readers declare (``referential.Inventory``).
        """
        data = '{"' + PARAMS + '":' + json.dumps({f"c{i}": self._params[f"c{i}"] for i in members},
                                                 sort_keys=True)
        readers = [self._sync[i] for i in members if i in self._sync]
        if readers:
            data += ',"inventory":' + self._inventory.json(union(readers))
        return data + "}"

    def _with_modules(self, members: Sequence[int]) -> Program:
        program = self._base.copy()
        for n, lib in enumerate(self._libs):
            program.add_module(f"lib{n}.rego", lib)
        for i in members:
            program.add_module(f"c{i}.rego", self._modules[i])
        return program

    @staticmethod
    def _aggregate_module(members: Sequence[int], package: str) -> str:
        body = ",\n".join(f'  "c{i}": data.gitops_checker.c{i}.violation' for i in members)
        return f"package {package}\n\nr := {{\n{body}\n}}\n"

    def _aggregate(self, members: tuple[int, ...]) -> str | None:
        """An aggregate rule for ``members`` in the shared interpreter."""
        rule = self._signatures.get(members)
        if rule is None:
            if len(self._signatures) >= MAX_SIGNATURES:
                return None
            n = len(self._signatures)
            self.program.add_module(f"agg{n}.rego",
                                    self._aggregate_module(members, f"gitops_checker_agg.s{n}"))
            rule = f"data.gitops_checker_agg.s{n}.r"
            self._signatures[members] = rule
        return rule

    def _program_for(self, members: tuple[int, ...]) -> tuple[Program, str] | None:
        """The interpreter and aggregate rule that evaluate ``members`` together."""
        if members in self._programs:
            return self._programs[members]
        chosen: tuple[Program, str] | None
        if len(self._programs) < MAX_PROGRAMS:
            program = self._with_modules(members)
            program.add_module("agg.rego", self._aggregate_module(members, "gitops_checker_agg"))
            chosen = (program, "data.gitops_checker_agg.r")
        else:
            rule = self._aggregate(members)
            chosen = (self.program, rule) if rule is not None else None
        self._programs[members] = chosen
        return chosen

    def _executable(self, members: tuple[int, ...]) -> Executable | None:
        """``members`` compiled ahead of time together, if the engine can and the cap allows."""
        if members in self._executables:
            return self._executables[members]
        chosen = None
        if len(self._executables) < MAX_PROGRAMS:
            modules = [(f"lib{n}.rego", lib) for n, lib in enumerate(self._libs)]
            modules += [(f"c{i}.rego", self._modules[i]) for i in members]
            modules.append(("agg.rego", self._aggregate_module(members, "gitops_checker_agg")))
            chosen = self._engine.executable(self._data_for(members), modules,
                                             "data.gitops_checker_agg.r", rego_v1=self._rego_v1)
        self._executables[members] = chosen
        return chosen

    def evaluate(self, review_json: str, members: tuple[int, ...]) -> dict[int, Outcome]:
        """Violations (or an error) of each member constraint for one review.

        Members whose template may be compiled ahead of time (``may_compile``) run on the
        compiled program; the others, and all of them when that program fails or gives a
        value that is not one set per member, run on the interpreter.
        """
        input_json = '{"review":' + review_json + "}"
        split = self._splits.get(members)
        if split is None:
            split = (tuple(i for i in members if i in self._compiled),
                     tuple(i for i in members if i not in self._compiled))
            self._splits[members] = split
        compiled, rest = split
        out: dict[int, Outcome] = {}
        if compiled:
            executable = self._executable(compiled)
            value = executable.execute(input_json) if executable is not None else None
            if isinstance(value, Mapping) and all(isinstance(value.get(f"c{i}"), list)
                                                  for i in compiled):
                out = {i: _violations(value[f"c{i}"]) for i in compiled}
            else:
                rest = members
        if rest:
            out.update(self._interpret(input_json, rest))
        return out

    def _interpret(self, input_json: str, members: tuple[int, ...]) -> dict[int, Outcome]:
        """``evaluate`` on the interpreter."""
        chosen = self._program_for(members)
        program = chosen[0] if chosen is not None else self.program
        program.set_input(input_json)
        value = program.eval_rule(chosen[1]) if chosen is not None else None
        if isinstance(value, Mapping) and all(isinstance(value.get(f"c{i}"), list)
                                              for i in members):
            return {i: _violations(value[f"c{i}"]) for i in members}
        out: dict[int, Outcome] = {}
        for i in members:  # one at a time, so that an error names its own constraint
            single = program.eval_rule(f"data.gitops_checker.c{i}.violation")
            if isinstance(single, EvalError) or single is None:
                out[i] = single if single is not None else []
            elif isinstance(single, list):
                out[i] = _violations(single)
            else:  # the plain run reports it, naming the template (evaluate.py re-runs errors)
                out[i] = EvalError(f"violation is not a set (got {type(single).__name__})")
        return out


def _with_parameters(rego: str, parameters: Any, data_ref: str) -> str:
    """``rego`` reading the constraint's parameters instead of ``input.parameters``.

    They become a constant rule of the module itself: regorus looks a local rule up far more
    cheaply than a path under ``data``. Where that cannot be written safely (the name is taken,
    or a value would make a line longer than regorus accepts) the ``data`` path is used.
    """
    text = json.dumps(parameters, indent=1, sort_keys=True, ensure_ascii=False)
    if _LOCAL_PARAMS_NAME.search(rego) or any(len(line) > 900 for line in text.splitlines()):
        return _PARAMETERS.sub(data_ref, rego)
    return (_PARAMETERS.sub(LOCAL_PARAMS, rego).rstrip("\n")
            + f"\n\n{LOCAL_PARAMS} := {text}\n")


def _violations(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [v if isinstance(v, dict) else {"msg": str(v)} for v in value]


def build_runners(engine: PolicyEngine, policies: Sequence[Policy], indexes: Sequence[int],
                  inventory: Inventory, may_compile: Callable[[Template], bool],
                  ) -> tuple[list[BatchRunner], list[int]]:
    """Runners for every group that compiles; members of a group that does not go alone.

    ``may_compile(template)``: whether that template may run on the engine's ahead-of-time
    compiled program (``PolicyEngine.executable``) instead of its interpreter.
    """
    groups, alone = plan(policies, indexes)
    runners = []
    for group in groups:
        try:
            runners.append(BatchRunner(engine, group, policies, inventory, may_compile))
        except PolicyError:
            alone.extend(group.members)
    return runners, sorted(alone)
