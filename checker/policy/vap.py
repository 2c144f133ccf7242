"""Kubernetes ValidatingAdmissionPolicy + Binding, evaluated on the objects of their cluster.

A ``ValidatingAdmissionPolicy`` and the ``ValidatingAdmissionPolicyBinding``s that name it
(admissionregistration.k8s.io/v1; v1beta1 reads the same) found among a cluster's objects are
applied as the API server applies them, to every object of that cluster, reviewed as a CREATE:

- matching: the policy's ``matchConstraints`` and the binding's ``matchResources`` (both must
  match): ``resourceRules`` (apiGroups, apiVersions, resources by plural name - CRDs in the
  repository give theirs -, operations, scope, resourceNames), ``excludeResourceRules``,
  ``namespaceSelector`` (the labels of the object's Namespace among the cluster's objects, as
  Gatekeeper matching reads them; an object whose Namespace is not there is not decided and
  gets a note) and ``objectSelector``; ``matchPolicy: Equivalent`` (the default) matches a
  rule's resource in any version, ``Exact`` only in the versions named;
- ``paramKind``/``paramRef``: params objects of that kind from the cluster's objects, by
  ``name`` or ``selector``, in ``namespace`` (else the reviewed object's namespace for a
  namespaced kind); none found follows ``parameterNotFoundAction`` (Deny: a violation);
- ``matchConditions``, ``variables``, ``validations`` (message, messageExpression, reason) on
  Google's CEL runtime with Kubernetes' libraries (``checker.policy.cel``);
- ``validationActions``: Deny -> error, Warn -> warning, Audit -> note (the strongest given);
- ``failurePolicy`` (Fail by default): an evaluation error is a violation, Ignore drops it.

A finding names the policy and the binding and points at the object's field the failing
expression names (``object.spec.x``), else at the object. Nothing is skipped silently: an
invalid policy or binding, an expression that calls the authorizer, and a binding whose policy
is not in the repository are findings on the policy or binding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from checker.errors import PolicyError
from checker.model import FieldPath, Finding, Resource, Rule, Severity
from checker.parallel import DEFAULT_LIMITS, Failure, Guard, Limits, available_cpus, run_guarded
from checker.policy import k8scel, opa
from checker.policy.cel import (
    VARIABLES,
    CelSource,
    Program,
    read_failure_policy,
    read_validations,
)
from checker.policy.evaluate import admission_request
from checker.policy.match import (
    MatchError,
    is_namespace,
    namespace_labels,
    selector_matches,
    stored_namespace,
)

GROUP = "admissionregistration.k8s.io"
POLICY_KIND = "ValidatingAdmissionPolicy"
BINDING_KIND = "ValidatingAdmissionPolicyBinding"
VERSIONS = ("v1", "v1beta1")
RULE_VAP_INVALID = "vap.invalid"
RULE_VAP_NOT_EVALUATED = "vap.not-evaluated"
RULE_VAP_ERROR = "vap.evaluation-error"
ACTIONS = {"Deny": Severity.ERROR, "Warn": Severity.WARNING, "Audit": Severity.NOTE}
_OBJECT_PATH = re.compile(r"(?<![\w.])object\.((?:[A-Za-z_]\w*)(?:\.[A-Za-z_]\w*)*)")
# kinds whose plural is not the lower-cased kind + "s" (the rest follow Kubernetes' rule)
_PLURALS = {"Endpoints": "endpoints", "NetworkPolicy": "networkpolicies",
            "PodSecurityPolicy": "podsecuritypolicies", "Ingress": "ingresses",
            "IngressClass": "ingressclasses", "StorageClass": "storageclasses",
            "PriorityClass": "priorityclasses", "RuntimeClass": "runtimeclasses"}


def is_policy(res: Resource) -> bool:
    """A ValidatingAdmissionPolicy."""
    return res.group == GROUP and res.kind == POLICY_KIND


def is_binding(res: Resource) -> bool:
    """A ValidatingAdmissionPolicyBinding."""
    return res.group == GROUP and res.kind == BINDING_KIND


def plural(kind: str) -> str:
    """Kubernetes' default plural resource name of a kind."""
    if kind in _PLURALS:
        return _PLURALS[kind]
    lower = kind.lower()
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    return lower + "s"


@dataclass(frozen=True)
class VapPolicy:
    """A ValidatingAdmissionPolicy, parsed."""

    name: str
    resource: Resource
    source: CelSource
    match: Mapping[str, Any]
    param_kind: tuple[str, str] | None  # (apiVersion, kind)


@dataclass(frozen=True)
class Binding:
    """A ValidatingAdmissionPolicyBinding, parsed."""

    name: str
    resource: Resource
    policy: str
    match: Mapping[str, Any] | None
    param_ref: Mapping[str, Any] | None
    actions: tuple[str, ...]

    @property
    def severity(self) -> Severity:
        """The strongest severity its validationActions map to."""
        return max(ACTIONS[a] for a in self.actions)


def _spec(res: Resource) -> Mapping[str, Any]:
    spec = res.body.get("spec")
    if not isinstance(spec, Mapping):
        raise PolicyError("spec must be a mapping")
    return spec


def parse_policy(res: Resource) -> VapPolicy:
    """A policy validated as the API server validates it (the parts evaluation reads)."""
    spec = _spec(res)
    match = spec.get("matchConstraints")
    if not isinstance(match, Mapping) or not match.get("resourceRules"):
        raise PolicyError("spec.matchConstraints.resourceRules is required")
    param_kind = None
    if spec.get("paramKind") is not None:
        pk = spec["paramKind"]
        if not isinstance(pk, Mapping) or not pk.get("apiVersion") or not pk.get("kind"):
            raise PolicyError("spec.paramKind needs apiVersion and kind")
        param_kind = (str(pk["apiVersion"]), str(pk["kind"]))
    variables = spec.get("variables") or []
    conditions = spec.get("matchConditions") or []
    for what, entries in (("variables", variables), ("matchConditions", conditions)):
        if not isinstance(entries, list) or not all(
                isinstance(e, Mapping) and e.get("name") for e in entries):
            raise PolicyError(f"spec.{what} must be a list of {{name, expression}}")
    validations = read_validations(spec.get("validations"), "spec.validations")
    if not validations and not spec.get("auditAnnotations"):
        raise PolicyError("spec.validations or spec.auditAnnotations is required")
    source = CelSource(
        validations=validations,
        variables=tuple((str(e["name"]), str(e.get("expression") or "")) for e in variables),
        match_conditions=tuple((str(e["name"]), str(e.get("expression") or ""))
                               for e in conditions),
        failure_policy=read_failure_policy(spec.get("failurePolicy")),
    )
    return VapPolicy(res.name, res, source, match, param_kind)


def parse_binding(res: Resource) -> Binding:
    """A binding validated as the API server validates it."""
    spec = _spec(res)
    policy = spec.get("policyName")
    if not isinstance(policy, str) or not policy:
        raise PolicyError("spec.policyName is required")
    actions = spec.get("validationActions")
    if not isinstance(actions, list) or not actions or any(a not in ACTIONS for a in actions):
        raise PolicyError("spec.validationActions must list Deny, Warn and/or Audit")
    if "Deny" in actions and "Warn" in actions:
        raise PolicyError("spec.validationActions: Deny and Warn may not be used together")
    ref = spec.get("paramRef")
    if ref is not None:
        if not isinstance(ref, Mapping):
            raise PolicyError("spec.paramRef must be a mapping")
        if ("name" in ref) == ("selector" in ref):
            raise PolicyError("spec.paramRef needs exactly one of name and selector")
        if ref.get("parameterNotFoundAction", "Deny") not in ("Allow", "Deny"):
            raise PolicyError("spec.paramRef.parameterNotFoundAction must be Allow or Deny")
    match = spec.get("matchResources")
    if match is not None and not isinstance(match, Mapping):
        raise PolicyError("spec.matchResources must be a mapping")
    return Binding(res.name, res, policy, match, ref, tuple(str(a) for a in actions))


# --- matching -----------------------------------------------------------------------------------


@dataclass
class Scope:
    """What matching needs to know about a cluster: its Namespaces and CRD plurals."""

    namespaces: dict[str, Resource]
    plurals: dict[tuple[str, str], str] = field(default_factory=dict)  # (group, kind)

    def resource_of(self, res: Resource) -> str:
        """The plural resource name of ``res``'s kind."""
        return self.plurals.get((res.group, res.kind)) or plural(res.kind)


def _rule_matches(rule: Mapping[str, Any], res: Resource, resource: str, operation: str,
                  exact: bool) -> bool:
    def has(key: str, value: str) -> bool:
        values = rule.get(key) or []
        return "*" in values or value in values

    if not has("apiGroups", res.group):
        return False
    if exact and not has("apiVersions", res.version):
        return False
    resources = rule.get("resources") or []
    if not ("*" in resources or resource in resources or "*/*" in resources):
        return False
    if operation and not has("operations", operation):
        return False
    scope = rule.get("scope") or "*"
    namespaced = bool(res.namespace)
    if (scope == "Cluster" and namespaced) or (scope == "Namespaced" and not namespaced):
        return False
    names = rule.get("resourceNames") or []
    return not names or res.name in names


def matches(criteria: Mapping[str, Any], res: Resource, scope: Scope,
            operation: str) -> tuple[bool, str | None]:
    """(matched, why undecided): ``matchConstraints``/``matchResources`` against ``res``."""
    exact = criteria.get("matchPolicy") == "Exact"
    resource = scope.resource_of(res)
    rules = criteria.get("resourceRules")
    if rules is not None and not any(
            isinstance(r, Mapping) and _rule_matches(r, res, resource, operation, exact)
            for r in rules):
        return False, None
    if any(isinstance(r, Mapping) and _rule_matches(r, res, resource, operation, exact)
           for r in criteria.get("excludeResourceRules") or []):
        return False, None
    meta = res.body.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    labels = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}
    selector = criteria.get("objectSelector")
    if selector and not selector_matches(selector, labels):
        return False, None
    selector = criteria.get("namespaceSelector")
    if selector:
        if is_namespace(res):
            ns_labels = namespace_labels(res)
        elif not res.namespace:
            return True, None  # cluster-scoped objects are not filtered by namespace
        else:
            ns = scope.namespaces.get(res.namespace)
            if ns is None:
                return False, (f"namespaceSelector: Namespace {res.namespace!r} is not in the "
                               "scanned manifests")
            ns_labels = namespace_labels(ns)
        if not selector_matches(selector, ns_labels):
            return False, None
    return True, None


# --- evaluation ---------------------------------------------------------------------------------


@dataclass
class VapEvaluation:
    """Findings of the VAPs of one cluster, the rules they use, and errors (exit code 2)."""

    findings: list[Finding] = field(default_factory=list)
    rules: dict[str, Rule] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    engines: tuple[str, ...] = ()


def rule_for(policy: VapPolicy) -> Rule:
    """The rule a policy's findings carry."""
    return Rule(id=f"vap/{policy.name}", title=f"ValidatingAdmissionPolicy {policy.name}",
                severity=Severity.ERROR,
                description="A Kubernetes ValidatingAdmissionPolicy found in the repository, "
                            "evaluated on the objects its bindings match.")


def field_path(expression: str,
               variables: Sequence[tuple[str, str]] = ()) -> FieldPath | None:
    """The object field an expression names (``object.spec.x`` -> spec, x), looking into the
    variables it reads too: the first one under ``spec``, else the first one."""
    texts = [expression] + [expr for name, expr in variables
                            if re.search(rf"\bvariables\.{re.escape(name)}\b", expression)]
    paths = [tuple(m.group(1).split(".")) for text in texts
             for m in _OBJECT_PATH.finditer(text)]
    if not paths:
        return None
    return next((p for p in paths if p[0] == "spec"), paths[0])


def _params(policy: VapPolicy, binding: Binding, res: Resource,
            candidates: Sequence[Resource],
            memo: dict[str, list[Any] | None]) -> list[Any] | None:
    """The params objects for one review ([None] without paramKind; None: not found);
    ``candidates`` are the objects of the policy's paramKind, ``memo`` the results so far by
    namespace."""
    if policy.param_kind is None:
        return [None]
    ref = binding.param_ref
    if ref is None:
        return None
    namespace = ref.get("namespace")
    if namespace is None:
        namespaced = any(r.namespace for r in candidates)
        namespace = res.namespace if namespaced else ""
    if namespace in memo:
        return memo[namespace]
    memo[namespace] = found = _select(ref, candidates, namespace)
    return found


def _select(ref: Mapping[str, Any], candidates: Sequence[Resource],
            namespace: str) -> list[Any] | None:
    candidates = [r for r in candidates if r.namespace == (namespace or "")]
    if "name" in ref:
        chosen = [r for r in candidates if r.name == ref.get("name")]
    else:
        chosen = [r for r in candidates
                  if selector_matches(ref.get("selector") or {}, {
                      str(k): str(v) for k, v in
                      ((r.body.get("metadata") or {}).get("labels") or {}).items()})]
    return [r.body for r in sorted(chosen, key=lambda r: r.name)] or None


def _finding(rule: Rule, severity: Severity, message: str, res: Resource,
             path: FieldPath | None, details: dict[str, str]) -> Finding:
    return Finding(rule_id=rule.id, category="policy", severity=severity, message=message,
                   location=res.locate(path), resource=res.display, field_path=path or (),
                   cluster=res.cluster, details=details, ref=res.ref)


def _policy_note(rule_id: str, severity: Severity, res: Resource, message: str) -> Finding:
    return Finding(rule_id=rule_id, category="policy", severity=severity, message=message,
                   location=res.location, cluster=res.cluster)


def evaluate(resources: Sequence[Resource], operation: str = "CREATE",
             limits: Limits = DEFAULT_LIMITS) -> VapEvaluation:
    """Every VAP binding among ``resources`` applied to ``resources`` (one cluster's).

    Each binding is evaluated in a bounded worker (``checker.parallel``): one that runs too
    long or takes too much memory is stopped, and the binding gives an error.
    """
    out = VapEvaluation()
    policies: dict[str, VapPolicy] = {}
    bindings: list[Binding] = []
    for res in resources:
        if res.group != GROUP or res.kind not in (POLICY_KIND, BINDING_KIND):
            continue
        if res.version not in VERSIONS:
            out.findings.append(_policy_note(
                RULE_VAP_NOT_EVALUATED, Severity.WARNING, res,
                f"{res.kind} {res.name!r} ({res.api_version}) not evaluated: only "
                f"{', '.join(f'{GROUP}/{v}' for v in VERSIONS)} are read"))
            continue
        try:
            if is_policy(res):
                policies[res.name] = parse_policy(res)
                if (res.body.get("spec") or {}).get("auditAnnotations"):
                    out.findings.append(_policy_note(
                        RULE_VAP_NOT_EVALUATED, Severity.NOTE, res,
                        f"ValidatingAdmissionPolicy {res.name!r}: spec.auditAnnotations are "
                        "not evaluated (they annotate the audit log and do not change the "
                        "admission verdict)"))
            elif is_binding(res):
                bindings.append(parse_binding(res))
        except PolicyError as err:
            out.findings.append(_policy_note(RULE_VAP_INVALID, Severity.ERROR, res,
                                             f"{res.kind} {res.name!r} is invalid: {err}"))
    if not policies and not bindings:
        return out
    out.engines = (f"{k8scel.runtime_version()} (ValidatingAdmissionPolicy)",)
    bound: set[str] = set()
    items: list[tuple[VapPolicy, Binding]] = []
    for binding in sorted(bindings, key=lambda b: b.name):
        policy = policies.get(binding.policy)
        if policy is None:
            out.findings.append(_policy_note(
                RULE_VAP_NOT_EVALUATED, Severity.WARNING, binding.resource,
                f"ValidatingAdmissionPolicyBinding {binding.name!r} names policy "
                f"{binding.policy!r}, which is not among this cluster's objects: not "
                "evaluated"))
            continue
        bound.add(policy.name)
        items.append((policy, binding))
    for name in sorted(set(policies) - bound):
        out.findings.append(_policy_note(
            RULE_VAP_NOT_EVALUATED, Severity.NOTE, policies[name].resource,
            f"ValidatingAdmissionPolicy {name!r} has no binding among this cluster's objects: "
            "the API server does not apply it"))
    scope = Scope({r.name: r for r in resources if is_namespace(r)})
    for res in resources:
        if res.kind == "CustomResourceDefinition":
            spec = res.body.get("spec") or {}
            names = spec.get("names") or {}
            if isinstance(spec.get("group"), str) and names.get("kind") and names.get("plural"):
                scope.plurals[(spec["group"], str(names["kind"]))] = str(names["plural"])

    def run(item: tuple[VapPolicy, Binding], guard: Guard) -> list[Finding]:
        return _run_binding(item[0], item[1], resources, scope, operation, guard)

    results: list[list[Finding] | Failure] = []
    if opa.loaded():  # Go's runtime hangs in a forked child: evaluate here (see evaluate.py)
        results = [run(item, Guard()) for item in items]
    width = available_cpus()
    for start in range(0, len(items) if not results else 0, width):  # a worker per CPU
        results += run_guarded(run, items[start:start + width], limits, quiet=True)
    seen: set[tuple[object, ...]] = set()
    for (policy, binding), result in zip(items, results, strict=True):
        rule = rule_for(policy)
        out.rules[rule.id] = rule
        if isinstance(result, Failure):
            where = (f" on {resources[result.key[0]].display}" if result.key[0] >= 0 else "")
            message = (f"ValidatingAdmissionPolicy {policy.name!r} (binding {binding.name!r}): "
                       f"the evaluation{where} {result.reason}; the objects it matches are not "
                       "checked")
            out.errors.append(f"{policy.resource.location}: {message}")
            out.findings.append(_policy_note(RULE_VAP_ERROR, Severity.ERROR, policy.resource,
                                             message))
            continue
        for finding in result:
            key = (finding.rule_id, finding.message, finding.location, finding.resource)
            if key not in seen:
                seen.add(key)
                out.findings.append(finding)
    return out


def _run_binding(policy: VapPolicy, binding: Binding, resources: Sequence[Resource],
                 scope: Scope, operation: str, guard: Guard | None = None) -> list[Finding]:
    """One binding on every object: each object one guarded step (index, 0); compiling is
    step (-1, 0)."""
    guard = guard or Guard()
    rule = rule_for(policy)
    label = f"ValidatingAdmissionPolicy {policy.name!r} (binding {binding.name!r})"
    guard.begin(-1, 0)
    try:
        program = Program(policy.source, f"ValidatingAdmissionPolicy {policy.name!r}")
    except PolicyError as err:
        return [_policy_note(RULE_VAP_INVALID, Severity.ERROR, policy.resource, str(err))]
    finally:
        guard.end()
    candidates = ([r for r in resources if (r.api_version, r.kind) == policy.param_kind]
                  if policy.param_kind is not None else [])
    memo: dict[str, list[Any] | None] = {}
    out = [_policy_note(RULE_VAP_NOT_EVALUATED, Severity.WARNING, policy.resource, why)
           for why in program.unsupported]
    details = {"policy": policy.name, "binding": binding.name,
               "validationActions": ",".join(binding.actions)}
    undecided: set[str] = set()
    for number, res in enumerate(resources):
        guard.begin(number, 0)
        out.extend(_review(policy, binding, program, res, scope, operation,
                           lambda r: _params(policy, binding, r, candidates, memo),
                           undecided, rule, label, details))
        guard.end()
    return out


def _review(policy: VapPolicy, binding: Binding, program: Program, res: Resource,
            scope: Scope, operation: str, params_of: Callable[[Resource], list[Any] | None],
            undecided: set[str], rule: Rule, label: str,
            details: dict[str, str]) -> list[Finding]:
    """One binding on one object."""
    out: list[Finding] = []
    try:
        ok, why = matches(policy.match, res, scope, operation)
        if ok and binding.match is not None:
            ok, why = matches(binding.match, res, scope, operation)
    except MatchError as err:
        return [_policy_note(RULE_VAP_INVALID, Severity.ERROR, binding.resource,
                             f"{label}: invalid selector: {err}")]
    if why is not None and res.namespace not in undecided:
        undecided.add(res.namespace)
        out.append(Finding(rule_id=RULE_VAP_NOT_EVALUATED, category="policy",
                           severity=Severity.NOTE,
                           message=f"{label} not evaluated for namespace "
                                   f"{res.namespace!r}: {why}",
                           location=res.location, resource=res.display,
                           cluster=res.cluster, ref=res.ref))
    if not ok:
        return out
    params_list = params_of(res)
    if params_list is None:
        action = (binding.param_ref or {}).get("parameterNotFoundAction", "Deny")
        if action == "Deny":
            out.append(_finding(rule, binding.severity,
                                f"{label}: no params found for policy binding with `Deny` "
                                "parameterNotFoundAction", res, None, details))
        return out
    request = admission_request(res, operation or "CREATE")
    namespace = scope.namespaces.get(res.namespace) if res.namespace else None
    base = {
        "object": res.body, "oldObject": None,
        "request": {k: v for k, v in request.items() if k not in ("object", "oldObject")}
        | {"resource": {"group": res.group, "version": res.version,
                        "resource": scope.resource_of(res)}},
        "namespaceObject": stored_namespace(namespace) if namespace is not None else None,
    }
    for params in params_list:
        data = {**base, "params": params}
        for decision in program.run(data):
            expression = decision.validation.expression if decision.validation else ""
            path = field_path(expression, policy.source.variables)
            message = f"{label}: {decision.message}"
            if decision.validation is not None and decision.validation.reason \
                    and not decision.error:
                message += f" (reason: {decision.validation.reason})"
            out.append(_finding(rule, binding.severity, message, res, path, details))
    return out


__all__ = ["VARIABLES", "VapEvaluation", "evaluate", "matches", "parse_binding",
           "parse_policy", "plural"]
