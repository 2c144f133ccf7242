"""ConstraintTemplates and Constraints, parsed and validated as Gatekeeper does."""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from checker.errors import PolicyError
from checker.model import Resource, Severity, SourceLocation
from checker.policy.cel import ENGINE as CEL_ENGINE
from checker.policy.cel import CelSource, parse_source
from checker.policy.limits import DISABLED_BUILTINS, NETWORK_BUILTINS, refused_calls

TEMPLATE_GROUP = "templates.gatekeeper.sh"
CONSTRAINT_GROUP = "constraints.gatekeeper.sh"
TARGET = "admission.k8s.gatekeeper.sh"
ACTIONS = {"deny": Severity.ERROR, "warn": Severity.WARNING, "dryrun": Severity.NOTE}
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)", re.MULTILINE)
_DATA_REF = re.compile(r"(?<![\w.$])data\.([A-Za-z_]\w*)")
SYNC_ANNOTATION = "metadata.gatekeeper.sh/requires-sync-data"
# Gatekeeper's enforcement points; "*" names them all
WEBHOOK_POINT = "validation.gatekeeper.sh"
AUDIT_POINT = "audit.gatekeeper.sh"
GATOR_POINT = "gator.gatekeeper.sh"
VAP_POINT = "vap.k8s.io"
ENFORCEMENT_POINTS = (WEBHOOK_POINT, AUDIT_POINT, GATOR_POINT, VAP_POINT)
# CI reviews objects as gator does: gator's client and reviews use the gator point only
CI_POINTS = (GATOR_POINT,)
SOURCES = ("All", "Generated", "Original")


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
    # the code[] entry with engine K8sNativeValidation (CEL), when there is one
    cel: CelSource | None = field(default=None, compare=False)

    @property
    def has_rego(self) -> bool:
        """Whether the template has Rego code."""
        return bool(self.rego.strip())

    def runs_cel(self, prefer_cel: bool = True) -> bool:
        """Whether the CEL code runs: Gatekeeper prefers it (its K8sNativeValidation driver
        comes first) unless ``prefer_cel`` is off and there is Rego."""
        return self.cel is not None and (prefer_cel or not self.has_rego)

    @property
    def uses_inventory(self) -> bool:
        """Whether any module reads referential data (``data.inventory``)."""
        return any("data.inventory" in m for m in (self.rego, *self.libs))

    @property
    def uses_namespace_object(self) -> bool:
        """Whether any module reads ``input.review.namespaceObject``."""
        return any("namespaceObject" in m for m in (self.rego, *self.libs)) or (
            self.cel is not None and "namespaceObject" in json.dumps(self.body.get("spec")))


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
    # enforcementAction "scoped": the points its scopedEnforcementActions name (else empty)
    scoped_points: tuple[str, ...] = ()
    # False when the constraint is scoped to enforcement points CI does not count as
    enforced: bool = True

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


def _rego_source(res: Resource, target: Mapping[str, Any],
                 ) -> tuple[Any, Any, str, tuple[str, ...]]:
    """The Rego Gatekeeper runs: (rego, libs, version, notes).

    As Gatekeeper converts a template: a non-empty legacy ``rego`` field replaces the source of
    the first ``code[]`` entry with ``engine: Rego`` (its libs become the legacy ``libs``, and
    no version is kept, so it is v0); otherwise that first entry's ``source`` is used. The Rego
    driver reads ``version: v1`` as v1 and every other value as v0.
    """
    codes = [c for c in target.get("code") or []
             if isinstance(c, Mapping) and c.get("engine") == "Rego"]
    legacy = target.get("rego")
    notes: list[str] = []
    if isinstance(legacy, str) and legacy:
        if codes:
            notes.append("both spec.targets[0].rego and a code[] Rego entry are set; Gatekeeper "
                         "runs the legacy rego field (and its libs, as Rego v0), as here")
        return legacy, target.get("libs") or [], "v0", tuple(notes)
    if not codes:
        return legacy, target.get("libs") or [], "v0", ()
    source = codes[0].get("source")
    if not isinstance(source, Mapping):
        raise _fail(res, "code[] Rego entry has no source")
    if "rego" not in source:
        raise _fail(res, "code[] Rego entry: source.rego is required")
    version = source.get("version") or "v0"
    if not isinstance(version, str):
        raise _fail(res, "code[] Rego entry: source.version must be a string")
    if version not in ("v0", "v1"):
        notes.append(f"Rego source.version {version!r} is read as v0, as Gatekeeper reads "
                     "every version other than v1")
        version = "v0"
    return source.get("rego"), source.get("libs") or [], version, tuple(notes)


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
    cel_source = None
    cel_codes = [c for c in target.get("code") or []
                 if isinstance(c, Mapping) and c.get("engine") == CEL_ENGINE]
    if cel_codes:
        try:
            cel_source = parse_source(cel_codes[0])
        except PolicyError as err:
            raise _fail(res, f"code[] {CEL_ENGINE} entry: {err}") from err
    rego, libs, version, notes = _rego_source(res, target)
    if cel_source is not None and not (isinstance(rego, str) and rego.strip()):
        schema = _dig(body, "spec", "crd", "spec", "validation", "openAPIV3Schema")
        return Template(
            name=res.name, kind=kind, package="", rego="", libs=(), rego_v1=False,
            schema=schema if isinstance(schema, dict) else None, location=res.location,
            body=body, notes=notes, cel=cel_source)
    if not isinstance(rego, str) or not rego.strip():
        raise _fail(res, "no Rego source (spec.targets[0].rego or code[].source.rego) and no "
                         f"{CEL_ENGINE} (CEL) code")
    if not isinstance(libs, list) or not all(isinstance(lib, str) for lib in libs):
        raise _fail(res, "libs must be a list of Rego sources")
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
    for index, name, line in refused_calls((rego, *libs), rego_v1=version == "v1",
                                           disabled=DISABLED_BUILTINS | NETWORK_BUILTINS):
        where = "the Rego" if index == 0 else f"libs[{index - 1}]"
        if name in NETWORK_BUILTINS:
            raise _fail(res, f"{where} calls {name} (line {line} of that source), which reaches "
                             f"the network (a DNS query); Gatekeeper allows it, but repository "
                             f"content must not reach the network from CI (docs/security.md)")
        raise _fail(res, f"{where} calls {name} (line {line} of that source), which Gatekeeper's "
                         f"Rego driver refuses (--disable-opa-builtin, the default since 3.8; "
                         f"use external data instead)")
    schema = _dig(body, "spec", "crd", "spec", "validation", "openAPIV3Schema")
    sync, sync_notes = _sync(res)
    return Template(
        name=res.name, kind=kind, package=package, rego=rego, libs=tuple(libs),
        rego_v1=version == "v1", schema=schema if isinstance(schema, dict) else None,
        location=res.location, body=body, sync=sync, notes=(*notes, *sync_notes),
        cel=cel_source,
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
    if "source" in match and match.get("source") not in SOURCES:
        raise _fail(res, f"spec.match.source must be one of {', '.join(SOURCES)}, not "
                         f"{match.get('source')!r}")
    action = spec.get("enforcementAction") or "deny"
    points: tuple[str, ...] = ()
    enforced = True
    if action == "scoped":
        action, points, enforced = _scoped(res, spec.get("scopedEnforcementActions"))
    if action not in ACTIONS:
        raise _fail(res, f"unknown enforcementAction {action!r} (expected deny, warn, dryrun "
                         "or scoped)")
    return Constraint(
        kind=res.kind, name=res.name, match=match, parameters=params,
        enforcement_action=action, location=res.location, body=res.body,
        scoped_points=points, enforced=enforced,
    )


def _scoped(res: Resource, entries: Any) -> tuple[str, tuple[str, ...], bool]:
    """``scopedEnforcementActions`` validated as Gatekeeper's webhook validates a constraint,
    then read for CI's enforcement points: (strongest action there, points named, enforced).

    An entry applies at a point when its ``enforcementPoints`` name it or ``*``; a constraint
    none of whose entries applies at the points CI counts as (gator's) is not enforced, and
    gator skips it.
    """
    shape = "scopedEnforcementActions must be a list of {action, enforcementPoints: [{name}]}"
    if entries is None:
        raise _fail(res, "enforcementAction scoped requires spec.scopedEnforcementActions")
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise _fail(res, shape)
    actions: set[str] = set()
    named: dict[str, None] = {}
    for entry in entries:
        action, eps = entry.get("action"), entry.get("enforcementPoints") or []
        if action not in ACTIONS:
            raise _fail(res, f"scopedEnforcementActions: unknown action {action!r} (expected "
                             "deny, warn or dryrun)")
        if not isinstance(eps, list) or not all(isinstance(e, Mapping) for e in eps):
            raise _fail(res, shape)
        if not eps:
            raise _fail(res, f"scopedEnforcementActions: action {action!r} names no "
                             "enforcement point")
        for ep in eps:
            name = ep.get("name")
            if name not in (*ENFORCEMENT_POINTS, "*"):
                raise _fail(res, f"scopedEnforcementActions: unknown enforcement point "
                                 f"{name!r} (expected one of {', '.join(ENFORCEMENT_POINTS)} "
                                 "or *)")
            named[str(name)] = None
            if name == "*" or name in CI_POINTS:
                actions.add(str(action))
    if not actions:
        return "deny", tuple(named), False
    return max(actions, key=lambda a: ACTIONS[a]), tuple(named), True


CONFIG_GROUP = "config.gatekeeper.sh"
CONFIG_NAME = "config"  # Gatekeeper reads only the Config of this name, in its own namespace
GATEKEEPER_NAMESPACE = "gatekeeper-system"  # its default namespace
PROCESSES = ("audit", "webhook", "mutation-webhook", "sync")


def is_config(res: Resource) -> bool:
    """A Gatekeeper Config (config.gatekeeper.sh)."""
    return res.kind == "Config" and res.group == CONFIG_GROUP


@dataclass(frozen=True)
class Exclusions:
    """The namespaces a Gatekeeper ``Config`` excludes, per process.

    ``spec.match`` entries give ``excludedNamespaces`` (globs with ``*`` at the start and/or
    end) and ``processes`` (audit, webhook, mutation-webhook, sync; ``*`` is all of them), as
    Gatekeeper's process excluder reads them. A Namespace is excluded by its own name, any
    other object by its namespace (a cluster-scoped object by the empty name, which only
    patterns such as ``*`` match).
    """

    patterns: Mapping[str, tuple[str, ...]]
    config: str  # namespace/name of the Config
    location: SourceLocation

    def excluded(self, process: str, res: Resource) -> bool:
        """Whether ``process`` ignores ``res``."""
        ns = res.name if res.kind == "Namespace" and res.group == "" else res.namespace
        return any(_glob(p, ns) for p in self.patterns.get(process, ()))


def _glob(pattern: str, value: str) -> bool:
    """Gatekeeper's wildcard: ``*`` at the start and/or end; ``*`` alone matches anything,
    the empty namespace of a cluster-scoped object included."""
    if pattern.startswith("*") and pattern.endswith("*"):
        return pattern.strip("*") in value
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return pattern == value


def gatekeeper_config(resources: Iterable[Resource],
                      ) -> tuple[Exclusions | None, list[tuple[SourceLocation, str]]]:
    """The Config Gatekeeper would read among ``resources``, and notes on the others.

    Gatekeeper reads the Config named ``config`` in its own namespace, which is set at install
    time; here that is the one in ``gatekeeper-system`` if there is one, else the only Config
    named ``config``. Several candidates in other namespaces are ambiguous: none is used, and
    a note says so.
    """
    configs = [r for r in resources if is_config(r)]
    notes = [(r.location, f"Gatekeeper Config {r.namespace}/{r.name} is ignored: Gatekeeper "
                          f"reads only the Config named {CONFIG_NAME!r}") for r in configs
             if r.name != CONFIG_NAME]
    named = [r for r in configs if r.name == CONFIG_NAME]
    preferred = [r for r in named if r.namespace == GATEKEEPER_NAMESPACE]
    chosen = preferred[0] if preferred else named[0] if len(named) == 1 else None
    if chosen is None:
        if named:
            notes.append((named[0].location,
                          f"{len(named)} Gatekeeper Configs named {CONFIG_NAME!r} in "
                          f"namespaces other than {GATEKEEPER_NAMESPACE} ("
                          + ", ".join(sorted(r.namespace for r in named))
                          + "): which one Gatekeeper reads depends on its install namespace, "
                            "so no namespace exclusions are applied"))
        return None, notes
    patterns: dict[str, dict[str, None]] = {p: {} for p in PROCESSES}
    entries = _dig(chosen.body, "spec", "match")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        namespaces = [str(n) for n in entry.get("excludedNamespaces") or []]
        for process in entry.get("processes") or []:
            for target in PROCESSES if process == "*" else (
                    (process,) if process in PROCESSES else ()):
                patterns[target].update(dict.fromkeys(namespaces))
    return Exclusions(
        patterns={p: tuple(v) for p, v in patterns.items() if v},
        config=f"{chosen.namespace}/{chosen.name}", location=chosen.location,
    ), notes
