"""The regorus binding (``gordon-to-regorus``, a Rust Rego interpreter) behind PolicyEngine.

``executable`` compiles modules for regorus's register VM (``checker.policy.rvm``); callers
decide which templates may take that path (the evaluator allows the shipped ones only).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from checker.errors import PolicyError
from checker.policy import rewrite, rvm
from checker.policy.engine import (
    CompiledPolicy,
    EvalError,
    Executable,
    PolicyEngine,
    Program,
    clean_error,
)
from checker.policy.semantics import pad_sprintf, separate_paren_lines, split_bodies


def _may_print(source: str) -> bool:
    """Whether a module may produce ``print()`` output that has to be emptied after each run."""
    return "print" in source


def _add(engine: Any, filename: str, source: str) -> None:
    """Add a module to a regorus engine; a v0 rule with several bodies is split first (regorus
    does not parse that form, OPA does: see ``semantics.split_bodies``), and a line that starts
    with ``(`` is a statement of its own, as in OPA (``semantics.separate_paren_lines``)."""
    separated = separate_paren_lines(source)
    if separated != source:
        for text in (separated, split_bodies(separated)):
            try:
                engine.add_policy(filename, text)
                return
            except (RuntimeError, ValueError):
                continue
    try:
        engine.add_policy(filename, source)
    except (RuntimeError, ValueError) as err:
        split = split_bodies(source)
        if split != source:
            try:
                engine.add_policy(filename, split)
                return
            except (RuntimeError, ValueError):
                pass
        raise PolicyError(f"Rego does not compile: {clean_error(err)}") from err


_SPRINTF_ARGS = "no argument specified for format verb"


class _RegorusPolicy:
    def __init__(self, engine: Any, rule: str, prints: bool = False,
                 rebuild: Any = None) -> None:
        self._engine = engine
        self._rule = rule
        self._prints = prints  # gathered print() output is dropped after each evaluation
        # builds the engine again with sprintf's missing arguments filled in as Go prints them
        # (semantics.pad_sprintf); used once, when regorus raises for a missing argument
        self._rebuild = rebuild

    def evaluate(self, input_json: str) -> list[dict[str, Any]] | EvalError:
        try:
            self._engine.set_input_json(input_json)
            raw = self._engine.eval_rule_as_json(self._rule)
        except (RuntimeError, ValueError) as err:
            message = clean_error(err)
            if _SPRINTF_ARGS in message and self._rebuild is not None:
                rebuild, self._rebuild = self._rebuild, None
                try:
                    self._engine = rebuild()
                except PolicyError:
                    return EvalError(message)
                return self.evaluate(input_json)
            return EvalError(message)
        finally:
            if self._prints:
                self._engine.take_prints()
        value = json.loads(raw) if raw else []
        if value is None:
            return []
        if not isinstance(value, list):
            return EvalError(f"{self._rule} is not a set (got {type(value).__name__})")
        return [v if isinstance(v, dict) else {"msg": str(v)} for v in value]


class _RegorusProgram:
    def __init__(self, engine: Any, prints: bool = False) -> None:
        self._engine = engine
        self._prints = prints

    def add_module(self, filename: str, source: str) -> None:
        _add(self._engine, filename, source)
        self._prints = self._prints or _may_print(source)

    def set_input(self, input_json: str) -> None:
        self._engine.set_input_json(input_json)

    def copy(self) -> Program:
        return _RegorusProgram(self._engine.clone(), self._prints)

    def eval_rule(self, rule: str) -> Any:
        try:
            raw = self._engine.eval_rule_as_json(rule)
        except (RuntimeError, ValueError) as err:
            return EvalError(clean_error(err))
        finally:
            if self._prints:
                self._engine.take_prints()
        return json.loads(raw) if raw else None


class RegorusEngine:
    """PolicyEngine backed by regorus."""

    name = "regorus"

    @property
    def version(self) -> str:
        """The installed regorus binding's version."""
        import importlib.metadata

        try:
            return importlib.metadata.version("gordon-to-regorus")
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    def executable(self, data_json: str, modules: Sequence[tuple[str, str]], entry: str, *,
                   rego_v1: bool) -> Executable | None:
        """An RVM program (see checker.policy.rvm); None when a module does not compile."""
        try:
            return rvm.Compiled(data_json, [(name, rewrite.to_v1(source, rego_v1))
                                            for name, source in modules], entry)
        except PolicyError:
            return None

    def program(self, *, rego_v1: bool, data_json: str | None) -> Program:
        """A fresh regorus engine in the requested Rego mode, with data loaded."""
        import regorus

        engine = regorus.Engine()
        engine.set_rego_v0(not rego_v1)
        engine.set_gather_prints(True)  # never to stderr (see checker.policy.limits)
        if data_json is not None:
            engine.add_data_json(data_json)
        return _RegorusProgram(engine)

    def compile(
        self, package: str, modules: Sequence[tuple[str, str]], *, rego_v1: bool,
        data_json: str | None,
    ) -> CompiledPolicy:
        """Compile the modules into a fresh regorus engine."""
        import regorus

        def build(padded: bool) -> Any:
            engine = regorus.Engine()
            engine.set_rego_v0(not rego_v1)
            engine.set_gather_prints(True)  # never to stderr (see checker.policy.limits)
            for filename, source in modules:
                _add(engine, filename, pad_sprintf(source, rego_v1) if padded else source)
            if data_json is not None:
                engine.add_data_json(data_json)
            return engine

        return _RegorusPolicy(build(False), f"data.{package}.violation",
                              any(_may_print(source) for _, source in modules),
                              rebuild=lambda: build(True))


def default_engine() -> PolicyEngine:
    """The engine used unless a caller passes another."""
    return RegorusEngine()
