"""Built-in policy packs (``policy-packs/<pack>/pack.yaml``) and repository policy folders.

A pack lists policies. A policy is defined once, in the pack that is its home, with its
metadata (id, title, severity, rationale, remediation, controls) and the paths of its
ConstraintTemplate, default Constraint and gator test suite. Other packs include it with
``- ref: <id>``, or include whole packs with ``include:``; one policy can so serve several
standards and is evaluated once.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from checker.errors import ConfigError, PolicyError
from checker.load import load_paths
from checker.load.objects import is_k8s_object, make_resource, read_documents
from checker.load.yamlfile import SAFE_LOADER
from checker.model import Control, Resource, Rule, Severity
from checker.policy.gatekeeper import (
    Constraint,
    Template,
    is_constraint,
    is_template,
    parse_constraint,
    parse_template,
)
from checker.policy.model import Policy

DEFAULT_PACKS = ("pss-restricted", "best-practice")
"""What runs when neither ``--pack`` nor the configuration names packs (see README, "Defaults")."""

DEFAULT_WARNING_PACK = "pss-restricted"
"""By default, the policies this pack adds to ``pss-baseline`` (running as root, privilege
escalation, seccomp, capabilities, volume types, /proc) report at ``warning``: visible in every
report, not failing a pipeline at the default ``--fail-on error``."""

PACK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "title", "standard"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9-]+$"},
        "title": {"type": "string"},
        "standard": {"type": "string"},
        "description": {"type": "string"},
        "url": {"type": "string"},
        "include": {"type": "array", "items": {"type": "string"}},
        "select": {"enum": ["mapped"]},
        "policies": {
            "type": "array",
            "items": {
                "oneOf": [
                    {"type": "object", "required": ["ref"], "additionalProperties": False,
                     "properties": {"ref": {"type": "string"}}},
                    {"type": "object",
                     "required": ["id", "title", "severity", "template", "constraint",
                                  "rationale", "remediation", "controls"],
                     "additionalProperties": False,
                     "properties": {
                         "id": {"type": "string", "pattern": "^[a-z0-9-]+$"},
                         "title": {"type": "string"},
                         "severity": {"enum": ["error", "warning", "note"]},
                         "template": {"type": "string"},
                         "constraint": {"type": "string"},
                         "tests": {"type": "string"},
                         "rationale": {"type": "string"},
                         "remediation": {"type": "string"},
                         "example": {"type": "string"},
                         "parameters": {"type": "string"},
                         "enabled": {"type": "boolean"},
                         "controls": {
                             "type": "array",
                             "items": {"type": "object", "required": ["standard", "id"],
                                       "additionalProperties": False,
                                       "properties": {"standard": {"type": "string"},
                                                      "id": {"type": "string"},
                                                      "title": {"type": "string"}}},
                         },
                     }},
                ]
            },
        },
    },
}


CHECKS = ("manifests", "partly", "outside")

STANDARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["key", "title", "edition", "url", "scope"],
    "additionalProperties": False,
    "properties": {
        "key": {"type": "string", "pattern": "^[a-z0-9-]+$"},
        "title": {"type": "string"},
        "edition": {"type": "string"},
        "url": {"type": "string"},
        "scope": {"type": "string"},
        "requirements": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "title", "checks", "note"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "title": {"type": "string", "minLength": 1},
                    "level": {"enum": ["basic", "standard", "elevated"]},
                    "checks": {"enum": list(CHECKS)},
                    "note": {"type": "string", "minLength": 1},
                    "policies": {"type": "array", "items": {"type": "string"},
                                 "uniqueItems": True},
                    # why the id could not be confirmed against the standard's publication
                    "unverified": {"type": "string", "minLength": 1},
                    # where and when the id and its criterion were checked
                    "source": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}


def bundled_packs_dir() -> Path | None:
    """The packs installed with this package (next to it, or in /usr/share), if any."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent.parent / "policy-packs", here.parent / "policy-packs",
                      Path("/usr/share/gitops-checker/policy-packs")):
        if candidate.is_dir():
            return candidate
    return None


def packs_dir() -> Path:
    """Where the built-in packs live: $GITOPS_CHECKER_PACKS, next to the package, or /usr/share."""
    env = os.environ.get("GITOPS_CHECKER_PACKS")
    if env and Path(env).is_dir():
        return Path(env)
    bundled = bundled_packs_dir()
    if bundled is not None:
        return bundled
    raise ConfigError("cannot find the built-in policy packs (set GITOPS_CHECKER_PACKS)")


@dataclass(frozen=True)
class PolicyDef:
    """A built-in policy: its rule metadata and the files that implement it."""

    rule: Rule
    home: Path
    template_path: Path
    constraint_path: Path
    tests_path: Path | None
    rationale: str
    remediation: str
    example: str
    parameters_doc: str
    enabled: bool = True


@dataclass(frozen=True)
class Requirement:
    """One requirement of a standard and how far manifests decide it.

    ``checks`` is ``manifests`` (the listed policies decide it), ``partly`` (they decide the
    part a manifest shows; ``note`` says what is left) or ``outside`` (not decidable from
    manifests: organisation, images, registries, nodes, run time; ``note`` says why).
    """

    id: str
    title: str
    checks: str
    note: str
    level: str = ""
    policies: tuple[str, ...] = ()
    unverified: str = ""  # why the id is not confirmed against the publication ("": it is)
    source: str = ""  # where and when the id was checked against a publication of the standard


@dataclass(frozen=True)
class Standard:
    """A security standard policies map to (``policy-packs/standards/<key>.yaml``).

    Standards with ``requirements`` list every requirement in scope, with the policies that serve
    each (those mappings are added to the policies' controls); the others name their controls in
    the policies' ``pack.yaml`` entries only.
    """

    key: str
    title: str
    edition: str
    url: str
    scope: str
    requirements: tuple[Requirement, ...] = ()

    @property
    def enumerated(self) -> bool:
        """Whether every requirement in scope is listed (coverage can count the gaps)."""
        return bool(self.requirements)


@dataclass
class Pack:
    """A pack: metadata and the ids of the policies it contains (after includes)."""

    name: str
    title: str
    standard: str
    description: str
    url: str
    policy_ids: list[str] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)
    mapped: bool = False  # ``select: mapped``: every policy with a control of this standard


@dataclass
class Catalog:
    """Every built-in pack, policy and standard."""

    packs: dict[str, Pack]
    policies: dict[str, PolicyDef]
    standards: dict[str, Standard] = field(default_factory=dict)

    def standard(self, key: str) -> Standard:
        """The standard of this key; an unknown key is ``invalid config`` naming the known."""
        found = self.standards.get(key)
        if found is None:
            known = ", ".join(sorted(self.standards))
            raise ConfigError(f"invalid config: unknown standard {key!r} (known: {known})")
        return found

    def serving(self, standard: str, requirement: str) -> list[str]:
        """Policy ids with a control of ``standard`` whose id is ``requirement``."""
        return [pid for pid, p in self.policies.items()
                if any(c.standard == standard and c.id == requirement for c in p.rule.controls)]

    def resolve(self, names: Sequence[str]) -> list[str]:
        """Policy ids of the named packs, includes followed, each id once, in pack order."""
        out: dict[str, None] = {}
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            pack = self.packs.get(name)
            if pack is None:
                known = ", ".join(sorted(self.packs))
                raise ConfigError(f"invalid config: unknown pack {name!r} (known: {known})")
            for inc in pack.includes:
                visit(inc)
            for pid in pack.policy_ids:
                out.setdefault(pid, None)

        for name in names:
            visit(name)
        return list(out)

    def packs_of(self, policy_id: str) -> list[str]:
        """Packs that contain a policy, directly or through includes."""
        return [p for p in sorted(self.packs) if policy_id in self.resolve([p])]


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise PolicyError(f"{path}: cannot read: {err}") from err


def load_standards(folder: Path) -> dict[str, Standard]:
    """Read and validate ``policy-packs/standards/*.yaml`` (none when the folder is absent)."""
    validator = jsonschema.Draft7Validator(STANDARD_SCHEMA)
    out: dict[str, Standard] = {}
    for file in sorted(folder.glob("*.yaml")):
        data = _read_yaml(file)
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path)
            raise PolicyError(f"{file}: invalid standard at {where or '(root)'}: "
                              f"{errors[0].message}")
        if data["key"] != file.stem:
            raise PolicyError(f"{file}: key {data['key']!r} must match the file name")
        requirements = []
        for n, req in enumerate(data.get("requirements", [])):
            policies = tuple(req.get("policies", []))
            if (req["checks"] == "outside") == bool(policies):
                raise PolicyError(
                    f"{file}: requirement {req['id']} (requirements/{n}): "
                    + ("'outside' lists no policies" if policies else
                       f"'{req['checks']}' needs the policies that serve it"))
            requirements.append(Requirement(req["id"], req["title"], req["checks"],
                                            " ".join(req["note"].split()), req.get("level", ""),
                                            policies,
                                            " ".join(req.get("unverified", "").split()),
                                            " ".join(req.get("source", "").split())))
        ids = [r.id for r in requirements]
        if len(ids) != len(set(ids)):
            raise PolicyError(f"{file}: a requirement id is listed twice")
        out[data["key"]] = Standard(data["key"], data["title"], " ".join(data["edition"].split()),
                                    data["url"], " ".join(data["scope"].split()),
                                    tuple(requirements))
    return out


def _add_mapped_controls(policies: dict[str, PolicyDef],
                         standards: Mapping[str, Standard]) -> None:
    """Add each enumerated standard's requirement to the controls of the policies serving it."""
    extra: dict[str, list[Control]] = {}
    for std in standards.values():
        for req in std.requirements:
            for pid in req.policies:
                if pid not in policies:
                    raise PolicyError(f"standard {std.key!r}: requirement {req.id} names "
                                      f"unknown policy {pid!r}")
                extra.setdefault(pid, []).append(Control(std.key, req.id, req.title))
    for pid, controls in extra.items():
        pdef = policies[pid]
        rule = replace(pdef.rule, controls=(*pdef.rule.controls, *controls))
        policies[pid] = replace(pdef, rule=rule)


def load_catalog(root: Path | None = None) -> Catalog:
    """Read and validate every ``pack.yaml`` and standard below the packs folder."""
    root = root or packs_dir()
    standards = load_standards(root / "standards")
    packs: dict[str, Pack] = {}
    policies: dict[str, PolicyDef] = {}
    refs: list[tuple[str, str]] = []
    validator = jsonschema.Draft7Validator(PACK_SCHEMA)
    for pack_file in sorted(root.glob("*/pack.yaml")):
        data = _read_yaml(pack_file)
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path)
            raise PolicyError(f"{pack_file}: invalid pack at {where or '(root)'}: "
                              f"{errors[0].message}")
        home = pack_file.parent
        pack = Pack(data["name"], data["title"], data["standard"], data.get("description", ""),
                    data.get("url", ""), includes=list(data.get("include", [])),
                    mapped=data.get("select") == "mapped")
        if pack.name != home.name:
            raise PolicyError(f"{pack_file}: name {pack.name!r} must match folder {home.name!r}")
        for entry in data.get("policies", []):
            if "ref" in entry:
                refs.append((pack.name, entry["ref"]))
                pack.policy_ids.append(entry["ref"])
                continue
            pid = entry["id"]
            if pid in policies:
                raise PolicyError(f"{pack_file}: policy id {pid!r} is defined twice")
            controls = tuple(Control(c["standard"], c["id"], c.get("title", ""))
                             for c in entry["controls"])
            rule = Rule(
                id=pid, title=entry["title"], severity=Severity.parse(entry["severity"]),
                description=entry["rationale"].strip(), help=entry["remediation"].strip(),
                pack=pack.name, controls=controls,
                help_uri=f"docs/policies/{pid}.md",
            )
            tests = entry.get("tests")
            policies[pid] = PolicyDef(
                rule=rule, home=home, template_path=home / entry["template"],
                constraint_path=home / entry["constraint"],
                tests_path=home / tests if tests else None,
                rationale=entry["rationale"].strip(), remediation=entry["remediation"].strip(),
                example=entry.get("example", "").strip(),
                parameters_doc=entry.get("parameters", "").strip(),
                enabled=bool(entry.get("enabled", True)),
            )
            pack.policy_ids.append(pid)
        packs[pack.name] = pack
    for pack_name, ref in refs:
        if ref not in policies:
            raise PolicyError(f"pack {pack_name!r} refers to unknown policy {ref!r}")
    for pack in packs.values():
        for inc in pack.includes:
            if inc not in packs:
                raise PolicyError(f"pack {pack.name!r} includes unknown pack {inc!r}")
    _add_mapped_controls(policies, standards)
    for pid, pdef in policies.items():
        if not pdef.rule.controls:
            raise PolicyError(f"policy {pid!r} maps to no control of any standard")
    if standards:
        for pid, pdef in policies.items():
            for c in pdef.rule.controls:
                std = standards.get(c.standard)
                if std is None:
                    raise PolicyError(f"policy {pid!r}: control of unknown standard "
                                      f"{c.standard!r} (known: {', '.join(sorted(standards))})")
                if std.enumerated and c.id not in {r.id for r in std.requirements}:
                    raise PolicyError(f"policy {pid!r}: {c.standard} has no requirement {c.id!r}")
    for pack in packs.values():
        if pack.mapped:
            if standards and pack.name not in standards:
                raise PolicyError(f"pack {pack.name!r} selects the policies mapped to an unknown "
                                  f"standard")
            mapped = [pid for pid, p in policies.items()
                      if any(c.standard == pack.name for c in p.rule.controls)]
            pack.policy_ids = list(dict.fromkeys([*pack.policy_ids, *mapped]))
    return Catalog(packs, policies, standards)


def default_overrides(catalog: Catalog,
                      overrides: Mapping[str, Mapping[str, Any]] | None = None,
                      ) -> dict[str, dict[str, Any]]:
    """Per-policy overrides of the default selection: the restricted-only policies at warning,
    under the configuration's own ``overrides`` (which win, key by key)."""
    out: dict[str, dict[str, Any]] = {}
    if DEFAULT_WARNING_PACK in catalog.packs:  # absent from a trimmed GITOPS_CHECKER_PACKS
        baseline = set(catalog.resolve(["pss-baseline"])) if "pss-baseline" in catalog.packs \
            else set()
        out = {pid: {"severity": "warning"} for pid in catalog.resolve([DEFAULT_WARNING_PACK])
               if pid not in baseline}
    for pid, override in (overrides or {}).items():
        out[pid] = {**out.get(pid, {}), **override}
    return out


def read_single_object(path: Path) -> Resource:
    """Read a file that must hold exactly one Kubernetes object."""
    docs, problems = read_documents(path, str(path))
    if problems:
        raise PolicyError(f"{problems[0].location}: {problems[0].message}")
    objects = [d for d in docs if is_k8s_object(d.data)]
    if len(objects) != 1:
        raise PolicyError(f"{path}: expected exactly one Kubernetes object, found {len(objects)}")
    doc = objects[0]
    return make_resource(doc.data, doc.location(str(path)), {})


LIBS_ANNOTATION = "gitops-checker.io/libs"


def with_libs(template: Resource, lib_dir: Path) -> Resource:
    """Embed the shared libraries a built-in template names, so it is self-contained.

    Templates in ``policy-packs/`` name their libraries in the ``gitops-checker.io/libs``
    annotation; the sources live once in ``policy-packs/lib/``. Gatekeeper needs them inline,
    in ``spec.targets[0].libs``, which is what this returns (and what ``export`` writes).
    """
    annotations = (template.body.get("metadata") or {}).get("annotations") or {}
    names = [n.strip() for n in str(annotations.get(LIBS_ANNOTATION, "")).split(",") if n.strip()]
    if not names:
        return template
    body = copy.deepcopy(dict(template.body))
    target = body["spec"]["targets"][0]
    libs = list(target.get("libs") or [])
    for name in names:
        lib = lib_dir / f"{name}.rego"
        try:
            libs.append(lib.read_text(encoding="utf-8"))
        except OSError as err:
            raise PolicyError(f"{template.location}: library {name!r} not found: {lib}") from err
    target["libs"] = libs
    return make_resource(body, template.location, template.marks)


def template_of(pdef: PolicyDef) -> Template:
    """The policy's ConstraintTemplate, with the pack libraries it names."""
    return parse_template(with_libs(read_single_object(pdef.template_path),
                                    pdef.home.parent / "lib"))


def pack_policies(catalog: Catalog, names: Sequence[str],
                  overrides: Mapping[str, Mapping[str, Any]] | None = None,
                  excluded_namespaces: Sequence[str] | None = None) -> list[Policy]:
    """Policies of the named packs, with optional per-policy overrides.

    An override may set ``parameters`` (merged over the constraint's own parameters, then
    validated by the template's schema), ``severity`` (error, warning or note), ``enabled``
    (policies marked ``enabled: false`` in their pack run only when an override enables them)
    and ``excludedNamespaces`` (replaces the constraint's ``spec.match.excludedNamespaces``).
    ``excluded_namespaces`` replaces that list for every policy without such an override
    (None keeps each pack's own list).
    """
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(catalog.policies))
    if unknown:
        raise ConfigError(f"invalid config: unknown policy id {unknown[0]!r}")
    out = []
    for pid in catalog.resolve(names):
        pdef = catalog.policies[pid]
        override = overrides.get(pid, {})
        if not bool(override.get("enabled", pdef.enabled)):
            continue
        template = template_of(pdef)
        cres = read_single_object(pdef.constraint_path)
        if "parameters" in override:
            params = override["parameters"]
            if not isinstance(params, Mapping):
                raise ConfigError(f"invalid config: parameters of policy {pid!r} must be a mapping")
            body = dict(cres.body)
            spec = dict(body.get("spec") or {})
            spec["parameters"] = {**(spec.get("parameters") or {}), **params}
            body["spec"] = spec
            cres = make_resource(body, cres.location, {})
        excluded = override.get("excludedNamespaces", excluded_namespaces)
        if excluded is not None:
            if not isinstance(excluded, Sequence) or isinstance(excluded, str) or not all(
                    isinstance(n, str) and n for n in excluded):
                raise ConfigError(f"invalid config: excludedNamespaces of policy {pid!r} must "
                                  "be a list of namespace names")
            cres = _with_excluded(cres, [str(n) for n in excluded])
        try:
            constraint = parse_constraint(cres, template)
        except PolicyError as err:
            if "parameters" in override:
                raise ConfigError(f"invalid config: policy {pid!r}: {err}") from err
            raise
        severity = pdef.rule.severity
        if "severity" in override:
            try:
                severity = Severity.parse(str(override["severity"]))
            except ValueError as err:
                raise ConfigError(f"invalid config: policy {pid!r}: {err}") from err
        out.append(Policy(template, constraint, pdef.rule, severity, f"pack:{pdef.rule.pack}"))
    return out


def _with_excluded(cres: Resource, excluded: list[str]) -> Resource:
    """The constraint with ``spec.match.excludedNamespaces`` replaced (removed when empty)."""
    body = dict(cres.body)
    spec = dict(body.get("spec") or {})
    match = dict(spec.get("match") or {})
    if excluded:
        match["excludedNamespaces"] = excluded
    else:
        match.pop("excludedNamespaces", None)
    spec["match"] = match
    body["spec"] = spec
    return make_resource(body, cres.location, {})


POLICY_ANNOTATION = "gitops-checker.io/policy"


def _user_rule(template: Template, constraint: Constraint) -> Rule:
    exported = _exported_rule(constraint)
    if exported is not None:
        return exported
    annotations = (template.body.get("metadata") or {}).get("annotations") or {}
    title = annotations.get("metadata.gatekeeper.sh/title") or template.kind
    description = annotations.get("description") or f"Gatekeeper ConstraintTemplate {template.name}"
    return Rule(
        id=f"{constraint.kind}/{constraint.name}", title=str(title),
        severity=constraint.severity, description=str(description).strip(),
        help=f"Repository policy: constraint {constraint.kind}/{constraint.name} "
             f"(template {template.name}, enforcementAction {constraint.enforcement_action}).",
        pack="repository",
    )


def _exported_rule(constraint: Constraint) -> Rule | None:
    """The built-in rule of a constraint that ``policies export`` wrote, found by its annotation.

    Scanning an exported folder then reports the same rule ids and controls as ``--pack``; the
    severity still follows the constraint's enforcementAction, as for any repository policy.
    """
    meta = constraint.body.get("metadata") or {}
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    pid = annotations.get(POLICY_ANNOTATION) if isinstance(annotations, Mapping) else None
    if not isinstance(pid, str) or not pid:
        return None
    try:
        policy = _builtin_catalog(packs_dir()).policies.get(pid)
    except (ConfigError, PolicyError):
        return None
    return policy.rule if policy is not None else None


@functools.lru_cache(maxsize=4)
def _builtin_catalog(root: Path) -> Catalog:
    return load_catalog(root)


def repository_policies(resources: Iterable[Resource]) -> tuple[list[Policy], list[str]]:
    """Policies from a folder of ConstraintTemplates and Constraints; errors are collected."""
    resources = list(resources)
    templates: dict[str, Template] = {}
    errors: list[str] = []
    for res in resources:
        if is_template(res):
            try:
                template = parse_template(res)
            except PolicyError as err:
                errors.append(str(err))
                continue
            templates[template.kind] = template
    out = []
    for res in resources:
        if not is_constraint(res):
            continue
        try:
            constraint = parse_constraint(res, templates.get(res.kind))
        except PolicyError as err:
            errors.append(str(err))
            continue
        template = templates[res.kind]
        out.append(Policy(template, constraint, _user_rule(template, constraint),
                          constraint.severity, "repository"))
    return out, errors


def load_repository_policies(folder: Path, root: Path) -> tuple[list[Policy], list[str]]:
    """Load ``--policies DIR``; unreadable files and invalid objects become errors."""
    if not folder.is_dir():
        raise ConfigError(f"policies folder does not exist: {folder}")
    loaded = load_paths([folder], root)
    policies, errors = repository_policies(loaded.resources)
    errors = [f"{f.location}: {f.message}" for f in loaded.findings
              if f.severity is Severity.ERROR] + errors
    return policies, errors


def template_digest(template: Template) -> str:
    """Identity of a template's Rego and libs."""
    return hashlib.sha256(json.dumps([template.rego, list(template.libs),
                                      template.rego_v1]).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def shipped_digests() -> frozenset[str]:
    """Digests of every template in the packs bundled with this installation."""
    root = bundled_packs_dir()
    if root is None:
        return frozenset()
    catalog = load_catalog(root)
    return frozenset(template_digest(template_of(pdef)) for pdef in catalog.policies.values())


def is_shipped(template: Template) -> bool:
    """Whether the template is byte for byte a shipped one: trusted Rego, and proven in CI on
    regorus's compiled VM and against real OPA (tests/policy/test_rvm_equivalence.py,
    tests/policy/test_opa_differential.py)."""
    return template_digest(template) in shipped_digests()
