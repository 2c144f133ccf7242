"""CEL in ConstraintTemplates, evaluated as Gatekeeper's K8sNativeValidation driver does.

A template's ``code[]`` entry with ``engine: K8sNativeValidation`` holds ``validations``
(expression, message, messageExpression), ``variables``, ``matchCondition`` (Gatekeeper's
singular key) and ``failurePolicy``. Gatekeeper compiles them with the ValidatingAdmissionPolicy
machinery of the API server, and so does this module, on Google's CEL runtime with Kubernetes'
libraries (``checker.policy.k8scel``):

- the expressions see ``object``, ``oldObject``, ``request``, ``params`` (the whole constraint),
  ``namespaceObject`` and ``variables``; Gatekeeper binds ``variables.anyObject`` (``oldObject``
  on a DELETE without object, else ``object``) and ``variables.params`` (the constraint's
  ``spec.parameters``, or null) before the template's own variables;
- ``object`` is null on DELETE, as the driver sets it;
- match conditions first: one that is false skips the object; an error follows the failure
  policy; each validation that is not true is a violation with the messageExpression's string
  (trimmed; not when empty or multi-line), else ``message``, else ``failed expression: <expr>``;
- an evaluation error is, under ``failurePolicy: Fail`` (the default), a violation carrying the
  error, as Gatekeeper reports it, and under ``Ignore`` no violation.

Every expression is compiled once per template, not per object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from checker.errors import PolicyError
from checker.policy import k8scel
from checker.policy.engine import EvalError

ENGINE = "K8sNativeValidation"
REGO = "Rego"
RESERVED_PREFIX = "gatekeeper_internal_"
VARIABLES = ("object", "oldObject", "request", "params", "namespaceObject", "variables")
MAX_MESSAGE = 5 * 1024  # bytes: longer messageExpression results are not used, as in Kubernetes


@dataclass(frozen=True)
class Validation:
    """One ``validations[]`` entry."""

    expression: str
    message: str = ""
    message_expression: str = ""
    reason: str = ""


@dataclass(frozen=True)
class CelSource:
    """The K8sNativeValidation code of a template (or the body of a VAP)."""

    validations: tuple[Validation, ...]
    variables: tuple[tuple[str, str], ...] = ()
    match_conditions: tuple[tuple[str, str], ...] = ()
    failure_policy: str = "Fail"


def _strings(entry: Mapping[str, Any], *keys: str) -> list[str]:
    out = []
    for key in keys:
        value = entry.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise PolicyError(f"{key} must be a string")
        out.append(value)
    return out


def _named(entries: Any, what: str) -> tuple[tuple[str, str], ...]:
    if entries is None:
        return ()
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise PolicyError(f"{what} must be a list of {{name, expression}}")
    out = []
    for entry in entries:
        name, expression = _strings(entry, "name", "expression")
        if not name:
            raise PolicyError(f"{what}: every entry needs a name")
        out.append((name, expression))
    return tuple(out)


def read_validations(entries: Any, what: str = "validations") -> tuple[Validation, ...]:
    """``validations`` entries (expression, message, messageExpression, reason)."""
    if entries is None:
        return ()
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise PolicyError(f"{what} must be a list of {{expression, message, ...}}")
    return tuple(Validation(*_strings(e, "expression", "message", "messageExpression",
                                      "reason")) for e in entries)


def read_failure_policy(value: Any) -> str:
    """``failurePolicy``: Fail (the default) or Ignore."""
    if value is None:
        return "Fail"
    if value not in ("Fail", "Ignore"):
        raise PolicyError(f"failurePolicy must be Fail or Ignore, not {value!r}")
    return str(value)


def parse_source(code: Mapping[str, Any]) -> CelSource:
    """A ``code[]`` entry with ``engine: K8sNativeValidation``, validated as Gatekeeper does."""
    source = code.get("source")
    if not isinstance(source, Mapping):
        raise PolicyError("code[] K8sNativeValidation entry has no source")
    variables = _named(source.get("variables"), "variables")
    for name, _ in variables:
        if name.startswith(RESERVED_PREFIX):
            raise PolicyError(f"variable {name!r}: the prefix {RESERVED_PREFIX!r} is reserved")
        if name in ("params", "anyObject"):
            raise PolicyError(f"variable {name!r}: the name is reserved by Gatekeeper")
    conditions = _named(source.get("matchCondition"), "matchCondition")
    for name, _ in conditions:
        if name.startswith(RESERVED_PREFIX):
            raise PolicyError(f"match condition {name!r}: the prefix {RESERVED_PREFIX!r} is "
                              "reserved")
    return CelSource(validations=read_validations(source.get("validations")),
                     variables=variables, match_conditions=conditions,
                     failure_policy=read_failure_policy(source.get("failurePolicy")))


# Gatekeeper's bound variables, before the template's own
GATEKEEPER_VARIABLES = (
    ("anyObject", 'has(request.operation) && request.operation == "DELETE" && object == null '
                  "? oldObject : object"),
    ("params", "!has(params.spec) ? null : !has(params.spec.parameters) ? null: "
               "params.spec.parameters"),
)


def gatekeeper_variables(data: Mapping[str, Any]) -> dict[str, Any]:
    """``GATEKEEPER_VARIABLES`` computed here, with the same values (a test compares them with
    the CEL expressions): evaluating them in CEL would convert the whole object back and forth
    on every review."""
    obj, request, params = data.get("object"), data.get("request"), data.get("params")
    deleting = isinstance(request, Mapping) and request.get("operation") == "DELETE"
    spec = params.get("spec") if isinstance(params, Mapping) else None
    return {"anyObject": data.get("oldObject") if deleting and obj is None else obj,
            "params": spec.get("parameters") if isinstance(spec, Mapping) else None}


@dataclass(frozen=True)
class Decision:
    """What one validation decided: a denial with its message, or an evaluation error."""

    message: str
    error: bool = False
    validation: Validation | None = None


class Program:
    """A CEL source compiled once: match conditions, variables, validations, messages.

    ``unsupported`` lists expressions that cannot be decided here (authorizer calls): they are
    not evaluated, and the caller reports them.
    """

    def __init__(self, source: CelSource, what: str,
                 bound: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
                 authorizer: bool = True) -> None:
        env = k8scel.environment(VARIABLES)
        self.env = env
        self.source = source
        self.unsupported: list[str] = []

        def compile_(expression: str, label: str) -> Any:
            try:
                return env.compile(expression, f"{what}: {label}")
            except k8scel.Unsupported as err:
                if not authorizer:  # not declared in this environment: a compile error
                    raise PolicyError(f"{what}: {label} does not compile: undeclared "
                                      "reference to 'authorizer' (Gatekeeper's driver "
                                      "declares no authorizer)") from err
                self.unsupported.append(str(err))
                return None

        self.conditions = [(name, compile_(expr, f"matchCondition {name!r}"), expr)
                           for name, expr in source.match_conditions]
        self.variables = [(name, compile_(expr, f"variable {name!r}"), expr)
                          for name, expr in source.variables]
        self.bound = bound
        self.validations = []
        for i, v in enumerate(source.validations):
            program = compile_(v.expression, f"validations[{i}].expression")
            message = (compile_(v.message_expression, f"validations[{i}].messageExpression")
                       if v.message_expression else None)
            self.validations.append((v, program, message))

    def run(self, data: dict[str, Any]) -> list[Decision]:
        """The denials (and errors) for one admission, ``data`` holding the variables other
        than ``variables``."""
        failing = self.source.failure_policy == "Fail"
        variables: dict[str, Any] = self.bound(data) if self.bound is not None else {}
        bound = self.env.activation({**data, "variables": variables})
        errors: list[str] = []
        for name, program, expression in self.conditions:
            if program is None:
                continue
            value, error = k8scel.evaluate(program, bound)
            if error is not None:
                errors.append(f"matchCondition {name!r}: expression '{expression.strip()}' "
                              f"resulted in error: {error}")
            elif value is not True:
                return []  # a false condition wins over errors in the others
        if errors:
            return [Decision("; ".join(errors), error=True)] if failing else []
        broken: dict[str, str] = {}
        for name, program, _ in self.variables:
            if program is None:
                broken[name] = "it calls the authorizer"
                continue
            value, error = k8scel.evaluate(program, bound)
            if error is None and k8scel.is_type(value):
                error = ("its value is a type, which this CEL runtime binding cannot pass on "
                         "to other expressions")
            if error is None:
                variables[name] = value
                bound = self.env.activation({**data, "variables": variables})
            else:
                broken[name] = error
        out = []
        for validation, program, message_program in self.validations:
            if program is None:
                continue
            value, error = k8scel.evaluate(program, bound)
            if error is not None:
                for name, why in broken.items():
                    if re.search(rf"\bvariables\.{re.escape(name)}\b", validation.expression):
                        error = f"variable {name!r}: {why}"
                        break
                if failing:
                    out.append(Decision(f"expression '{validation.expression.strip()}' "
                                        f"resulted in error: {error}", True, validation))
                continue
            if value is True:
                continue
            out.append(Decision(self._message(validation, message_program, bound),
                                validation=validation))
        return out

    @staticmethod
    def _message(validation: Validation, program: Any, data: Any) -> str:
        message = ""
        if program is not None:
            value, error = k8scel.evaluate(program, data)
            if error is None and isinstance(value, str):
                value = value.strip()
                if len(value.encode()) <= MAX_MESSAGE and "\n" not in value:
                    message = value
        if not message and validation.message:
            message = validation.message.strip()
        return message or f"failed expression: {validation.expression.strip()}"


def gatekeeper_data(review: Mapping[str, Any], constraint: Any) -> dict[str, Any]:
    """The CEL variables of Gatekeeper's driver for one review (``input.review``)."""
    request = {k: v for k, v in review.items()
               if k not in ("object", "oldObject", "namespaceObject")}
    obj = review.get("object")
    if request.get("operation") == "DELETE":
        obj = None  # the driver unsets object on DELETE, as Kubernetes does
    namespace = review.get("namespaceObject")
    return {"object": obj, "oldObject": review.get("oldObject"), "request": request,
            "params": constraint, "namespaceObject": namespace or None}


class CompiledTemplate:
    """A K8sNativeValidation template behind the CompiledPolicy interface.

    Its input is ``{"review": ..., "parameters": ..., "constraint": ...}`` (the constraint's
    body with defaulted parameters, bound as ``params``).
    """

    def __init__(self, source: CelSource, what: str) -> None:
        self.program = Program(source, what, gatekeeper_variables, authorizer=False)

    def evaluate(self, input_json: str) -> list[dict[str, Any]] | EvalError:
        """Violations (``{"msg": ...}``) for one input."""
        data = json.loads(input_json)
        constraint = data.get("constraint")
        if constraint is None:
            constraint = {"spec": {"parameters": data.get("parameters")}}
        return self.review(data.get("review") or {}, constraint)

    def review(self, review: Mapping[str, Any], constraint: Any) -> list[dict[str, Any]]:
        """Violations for one review (``input.review``) and constraint (its body)."""
        decisions = self.program.run(gatekeeper_data(review, constraint))
        return [{"msg": d.message} for d in decisions]


class Engine:
    """The CEL runtime as an engine name for reports and routing (not a Rego engine)."""

    name = "cel"

    @property
    def version(self) -> str:
        """The runtime's version."""
        return k8scel.runtime_version()

    def compile_template(self, source: CelSource, what: str) -> CompiledTemplate:
        """A template's CEL code compiled once."""
        return CompiledTemplate(source, what)


ENGINE_INSTANCE = Engine()
