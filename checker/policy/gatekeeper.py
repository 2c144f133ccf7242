"""ConstraintTemplates and Constraints, parsed and validated as Gatekeeper does."""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from checker.errors import PolicyError
from checker.model import Resource, Severity, SourceLocation
from checker.policy.limits import refused_calls

TEMPLATE_GROUP = "templates.gatekeeper.sh"
CONSTRAINT_GROUP = "constraints.gatekeeper.sh"
TARGET = "admission.k8s.gatekeeper.sh"
ACTIONS = {"deny": Severity.ERROR, "warn": Severity.WARNING, "dryrun": Severity.NOTE}
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)", re.MULTILINE)
_DATA_REF = re.compile(r"(?<![\w.$])data\.([A-Za-z_]\w*)")
SYNC_ANNOTATION = "metadata.gatekeeper.sh/requires-sync-data"


def is_template(res: Resource) -> bool:
    """A Gatekeeper ConstraintTemplate."""
    return res.kind == "ConstraintTemplate" and res.group == TEMPLATE_GROUP


def is_constraint(res: Resource) -> bool:
    """A Gatekeeper Constraint (any kind in the constraints group)."""
    return res.group == CONSTRAINT_GROUP


@dataclass(frozen=True)
class Template:
    """A compiled-to-be ConstraintTemplate."""

    name: str
    kind: str
    package: str
    rego: str
    libs: tuple[str, ...]
    rego_v1: bool
    schema: Mapping[str, Any] | None
    location: SourceLocation
    body: Mapping[str, Any] = field(compare=False)
    # kinds named by the requires-sync-data annotation (group, version, kind); None: no annotation
    sync: tuple[tuple[str, str, str], ...] | None = None
    # problems Gatekeeper tolerates (the template still loads), shown as notes on it
    notes: tuple[str, ...] = ()

    @property
    def uses_inventory(self) -> bool:
        """Whether any module reads referential data (``data.inventory``)."""
        return any("data.inventory" in m for m in (self.rego, *self.libs))


@dataclass(frozen=True)
class Constraint:
    """A Constraint: which template, which objects, which parameters, which action."""

    kind: str
    name: str
    match: Mapping[str, Any]
    parameters: Mapping[str, Any]
    enforcement_action: str
    location: SourceLocation
    body: Mapping[str, Any] = field(compare=False)

    @property
    def severity(self) -> Severity:
        """Severity implied by the enforcement action."""
        return ACTIONS.get(self.enforcement_action, Severity.ERROR)


def _fail(res: Resource, message: str) -> PolicyError:
    return PolicyError(f"{res.location}: {res.kind} {res.name!r}: {message}")


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


class SyncAnnotationError(ValueError):
    """The ``requires-sync-data`` annotation does not decode as Gatekeeper decodes it."""


_JSON_WS = " \t\n\r"
_CLAUSE_FIELDS = ("groups", "versions", "kinds")


def _clause_key(key: str) -> str:
    """The clause field a JSON key fills: Go's decoder matches names case-insensitively."""
    folded = key.casefold()
    for name in _CLAUSE_FIELDS:
        if folded == name:
            return name
    raise SyncAnnotationError(f'unknown field "{key}"')


def _strings(value: Any) -> list[str]:
    if value is None:  # null leaves a Go slice empty
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise SyncAnnotationError("groups, versions and kinds must be lists of strings")
    return value


def read_sync_requirements(raw: str) -> tuple[tuple[str, str, str], ...]:
    """The kinds a ``requires-sync-data`` annotation names, decoded as Gatekeeper decodes it.

    Gatekeeper (``ReadSyncRequirements``, read only by ``gator sync test``) trims newlines and
    double quotes from both ends, then decodes one JSON value - whatever follows it is not
    read - into a list of requirements, each a list of clauses ``{"groups", "versions",
    "kinds"}`` (keys matched case-insensitively, unknown keys refused, ``null`` an empty list)
    whose cross products are the kinds. Raises SyncAnnotationError when Gatekeeper's decoder
    would fail.
    """
    text = raw.strip('\n"').lstrip(_JSON_WS)
    if not text:
        raise SyncAnnotationError("no JSON value")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            out[key] = value
        return out

    try:
        requirements, _ = json.JSONDecoder(object_pairs_hook=pairs).raw_decode(text)
    except ValueError as err:
        raise SyncAnnotationError(f"not JSON: {err}") from err
    if requirements is None:
        return ()
    if not isinstance(requirements, list):
        raise SyncAnnotationError("must be a JSON list of requirements")
    out: set[tuple[str, str, str]] = set()
    for requirement in requirements:
        if requirement is None:
            continue
        if not isinstance(requirement, list):
            raise SyncAnnotationError("each requirement must be a list of "
                                      '{"groups", "versions", "kinds"} clauses')
        for clause in requirement:
            if clause is None:
                continue
            if not isinstance(clause, dict):
                raise SyncAnnotationError('each clause must be an object with "groups", '
                                          '"versions" and "kinds"')
            fields: dict[str, list[str]] = {name: [] for name in _CLAUSE_FIELDS}
            for key, value in clause.items():
                fields[_clause_key(key)] = _strings(value)
            out.update(itertools.product(fields["groups"], fields["versions"],
                                         fields["kinds"]))
    return tuple(sorted(out))


def _sync(res: Resource) -> tuple[tuple[tuple[str, str, str], ...] | None, tuple[str, ...]]:
    """The kinds the ``requires-sync-data`` annotation names (None: no usable annotation),
    and a note when the annotation is there but does not decode."""
    raw = _dig(res.body, "metadata", "annotations", SYNC_ANNOTATION)
    if raw is None:
        return None, ()
    try:
        if not isinstance(raw, str):
            raise SyncAnnotationError("annotation values are strings")
        return read_sync_requirements(raw), ()
    except SyncAnnotationError as err:
        return None, (f"annotation {SYNC_ANNOTATION} is ignored: {err}. Gatekeeper accepts "
                      "the template (only gator sync test reads the annotation); here the "
                      "template sees every scanned object as referential data",)


def parse_template(res: Resource) -> Template:
    """Validate a ConstraintTemplate and extract what evaluation needs."""
    body = res.body
    kind = _dig(body, "spec", "crd", "spec", "names", "kind")
    if not isinstance(kind, str) or not kind:
        raise _fail(res, "spec.crd.spec.names.kind is required")
    if res.name != kind.lower():
        raise _fail(res, f"metadata.name must be {kind.lower()!r} (the lower-cased kind)")
    targets = _dig(body, "spec", "targets")
    if not isinstance(targets, list) or len(targets) != 1 or not isinstance(targets[0], dict):
        raise _fail(res, "spec.targets must hold exactly one target")
    target = targets[0]
    if target.get("target") != TARGET:
        raise _fail(res, f"target must be {TARGET!r}")
    rego, libs, version = target.get("rego"), target.get("libs") or [], "v0"
    for code in target.get("code") or []:
        if isinstance(code, dict) and code.get("engine") == "Rego":
            source = code.get("source") or {}
            rego = source.get("rego", rego)
            libs = source.get("libs", libs)
            version = str(source.get("version", "v0"))
    if not isinstance(rego, str) or not rego.strip():
        raise _fail(res, "no Rego source (spec.targets[0].rego or code[].source.rego)")
    if not isinstance(libs, list) or not all(isinstance(lib, str) for lib in libs):
        raise _fail(res, "libs must be a list of Rego sources")
    if version not in ("v0", "v1"):
        raise _fail(res, f"unsupported Rego version {version!r} (expected v0 or v1)")
    match = _PACKAGE.search(rego)
    if match is None:
        raise _fail(res, "the Rego has no package statement")
    package = match.group(1)
    for lib in libs:
        lib_pkg = _PACKAGE.search(lib)
        if lib_pkg is None or not lib_pkg.group(1).startswith("lib."):
            raise _fail(res, "every lib must declare a package under 'lib.'")
    for module in (rego, *libs):
        for ref in _DATA_REF.findall(module):
            if ref not in ("inventory", "lib"):
                raise _fail(res, f"Rego may only reference data.inventory and data.lib, "
                                 f"not data.{ref}")
    if not re.search(r"^\s*violation\b", rego, re.MULTILINE):
        raise _fail(res, "the Rego must define a 'violation' rule")
    for index, name, line in refused_calls((rego, *libs), rego_v1=version == "v1"):
        where = "the Rego" if index == 0 else f"libs[{index - 1}]"
        raise _fail(res, f"{where} calls {name} (line {line} of that source), which Gatekeeper's "
                         f"Rego driver refuses (--disable-opa-builtin, the default since 3.8; "
                         f"use external data instead)")
    schema = _dig(body, "spec", "crd", "spec", "validation", "openAPIV3Schema")
    sync, notes = _sync(res)
    return Template(
        name=res.name, kind=kind, package=package, rego=rego, libs=tuple(libs),
        rego_v1=version == "v1", schema=schema if isinstance(schema, dict) else None,
        location=res.location, body=body, sync=sync, notes=notes,
    )


def _json_schema(schema: Any) -> Any:
    """OpenAPI v3 schema -> JSON Schema: drop Kubernetes extensions, honour ``nullable``."""
    if isinstance(schema, list):
        return [_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _json_schema(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")
           and k != "nullable"}
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("x-kubernetes-preserve-unknown-fields") and "type" not in out:
        pass
    return out


def apply_defaults(schema: Any, value: Any) -> Any:
    """Fill ``default`` values from a structural schema, as the API server does for CRDs."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            for key, sub in props.items():
                if key not in value and isinstance(sub, dict) and "default" in sub:
                    value[key] = copy.deepcopy(sub["default"])
                if key in value:
                    value[key] = apply_defaults(sub, value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], item) for item in value]
    return value


def parse_constraint(res: Resource, template: Template | None) -> Constraint:
    """Validate a Constraint against its template's parameter schema; apply defaults."""
    if template is None:
        raise _fail(res, f"no ConstraintTemplate defines kind {res.kind!r}")
    spec = res.body.get("spec") or {}
    if not isinstance(spec, dict):
        raise _fail(res, "spec must be a mapping")
    match = spec.get("match") or {}
    if not isinstance(match, dict):
        raise _fail(res, "spec.match must be a mapping")
    params = copy.deepcopy(spec.get("parameters") or {})
    schema = template.schema
    if schema is not None:
        params = apply_defaults(schema, params)
        try:
            jsonschema.Draft7Validator(_json_schema(schema)).validate(params)
        except jsonschema.ValidationError as err:
            where = ".".join(str(p) for p in err.absolute_path) or "(root)"
            raise _fail(res, f"invalid spec.parameters at {where}: {err.message}") from err
        except jsonschema.SchemaError as err:
            raise PolicyError(f"{template.location}: invalid parameter schema: {err.message}") \
                from err
    action = spec.get("enforcementAction", "deny")
    if action == "scoped":
        actions = [a.get("action") for a in spec.get("scopedEnforcementActions") or []
                   if isinstance(a, dict)]
        known = [a for a in actions if a in ACTIONS]
        action = max(known, key=lambda a: ACTIONS[a]) if known else "deny"
    if action not in ACTIONS:
        raise _fail(res, f"unknown enforcementAction {action!r} (expected deny, warn, dryrun)")
    return Constraint(
        kind=res.kind, name=res.name, match=match, parameters=params,
        enforcement_action=action, location=res.location, body=res.body,
    )
