"""The Rego engine interface, so that the binding can be swapped.

Implementations: regorus (``checker.policy.regorus_engine``, the default, with its compiled
VM behind ``PolicyEngine.executable``) and real OPA (``checker.policy.opa``). Each
ConstraintTemplate gets its own compiled engine, as Gatekeeper compiles each template into its
own module set; inputs are passed as JSON text so that booleans keep their type.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

_BACKTRACE = re.compile(r"\n+\s*Stack backtrace:.*", re.DOTALL)


def clean_error(err: BaseException) -> str:
    """An engine error message without the Rust backtrace and surrounding blank lines."""
    return _BACKTRACE.sub("", str(err)).strip()


@dataclass(frozen=True)
class EvalError:
    """Evaluation of one input failed inside the policy."""

    message: str


class CompiledPolicy(Protocol):
    """A compiled template: evaluates Gatekeeper inputs and returns violation objects."""

    def evaluate(self, input_json: str) -> list[dict[str, Any]] | EvalError:
        """Violations for one ``{"review": ..., "parameters": ...}`` input (JSON text)."""
        ...  # pragma: no cover


class Program(Protocol):
    """A set of Rego modules and data in one interpreter, evaluated against many inputs."""

    def add_module(self, filename: str, source: str) -> None:
        """Add a module; raises PolicyError when it does not compile."""
        ...  # pragma: no cover

    def set_input(self, input_json: str) -> None:
        """Set the input document (JSON text) for the following evaluations."""
        ...  # pragma: no cover

    def copy(self) -> Program:
        """An independent program with the same modules and data (the data is shared)."""
        ...  # pragma: no cover

    def eval_rule(self, rule: str) -> Any:
        """The value of ``rule`` (a ``data.`` path) as JSON data, or an EvalError."""
        ...  # pragma: no cover


class Executable(Protocol):
    """Modules compiled ahead of time for one entry point."""

    def execute(self, input_json: str) -> Any:
        """The entry point's value as JSON data, or None when it fails or is not defined."""
        ...  # pragma: no cover


class PolicyEngine(Protocol):
    """Compiles templates. One implementation per Rego interpreter."""

    name: str

    @property
    def version(self) -> str:
        """The engine's version, for reports."""
        ...  # pragma: no cover

    def executable(self, data_json: str, modules: Sequence[tuple[str, str]], entry: str, *,
                   rego_v1: bool) -> Executable | None:
        """``modules`` compiled ahead of time, or None when the engine cannot do that for them."""
        ...  # pragma: no cover

    def program(self, *, rego_v1: bool, data_json: str | None) -> Program:
        """An empty program in Rego v0 or v1 mode, with ``data`` loaded."""
        ...  # pragma: no cover

    def compile(
        self, package: str, modules: Sequence[tuple[str, str]], *, rego_v1: bool,
        data_json: str | None,
    ) -> CompiledPolicy:
        """Compile ``modules`` ((filename, source) pairs); ``package`` holds ``violation``."""
        ...  # pragma: no cover


def describe(engine: PolicyEngine) -> str:
    """``name version`` of an engine, as reports show it."""
    return f"{engine.name} {engine.version}"
