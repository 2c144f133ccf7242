"""ValidatingAdmissionPolicy + Binding from the repository, evaluated as the API server does."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.load.objects import make_resource
from checker.model import Severity, SourceLocation
from checker.policy import vap
from tests.conftest import FIXTURES

LOC = SourceLocation("x.yaml", 1)
REPO = FIXTURES / "cel" / "repo"

POLICY: dict[str, Any] = {
    "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
    "metadata": {"name": "replicas"},
    "spec": {
        "matchConstraints": {"resourceRules": [{
            "apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
            "resources": ["deployments"]}]},
        "validations": [{"expression": "object.spec.replicas <= 5",
                         "message": "at most 5 replicas"}],
    },
}
BINDING: dict[str, Any] = {
    "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
    "metadata": {"name": "replicas-binding"},
    "spec": {"policyName": "replicas", "validationActions": ["Deny"]},
}


def _res(body: dict[str, Any]) -> Any:
    return make_resource(body, LOC, {})


def _deploy(replicas: int, name: str = "web", namespace: str = "apps",
            labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"replicas": replicas}}


def _ns(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels}}


def _run(*bodies: dict[str, Any]) -> vap.VapEvaluation:
    return vap.evaluate([_res(copy.deepcopy(b)) for b in bodies])


def _violations(result: vap.VapEvaluation) -> list[tuple[str, Severity, str]]:
    return [(f.resource, f.severity, f.message) for f in result.findings
            if f.rule_id.startswith("vap/")]


def _with(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return out


def test_deny_is_an_error_naming_policy_and_binding() -> None:
    result = _run(POLICY, BINDING, _deploy(9), _deploy(2, "small"))
    assert _violations(result) == [(
        "Deployment apps/web", Severity.ERROR,
        "ValidatingAdmissionPolicy 'replicas' (binding 'replicas-binding'): at most 5 replicas")]
    finding = next(f for f in result.findings if f.rule_id == "vap/replicas")
    assert finding.field_path == ("spec", "replicas")
    assert finding.details == {"policy": "replicas", "binding": "replicas-binding",
                               "validationActions": "Deny"}
    assert result.engines[0].startswith("cel-expr-python")


@pytest.mark.parametrize(("actions", "severity"), [
    (["Warn"], Severity.WARNING), (["Audit"], Severity.NOTE),
    (["Warn", "Audit"], Severity.WARNING), (["Deny", "Audit"], Severity.ERROR)])
def test_validation_actions_map_to_severities(actions: list[str], severity: Severity) -> None:
    binding = _with(BINDING, ("spec", "validationActions"), actions)
    assert [v[1] for v in _violations(_run(POLICY, binding, _deploy(9)))] == [severity]


def test_field_location_comes_from_the_manifest_marks() -> None:
    result = CliRunner().invoke(cli, [
        "scan", str(REPO / "apps"), "--root", str(REPO), "--pack", "none",
        "--policies", str(REPO / "policies"), "--format", "json", "--fail-on", "error"])
    assert result.exit_code == 1, result.output
    found = [(f["rule"], f["location"]["line"], f["message"])
             for f in json.loads(result.output)["findings"] if f["rule"].startswith("vap/")]
    # both point at spec.containers (line 14), the field the expressions (and the variable
    # the first reads) name under spec; debug-pod is allowed by the params ConfigMap
    assert found == [
        ("vap/no-privileged", 14, "ValidatingAdmissionPolicy 'no-privileged' (binding "
         "'no-privileged-apps'): containers must not listen on ports below 1024"),
        ("vap/no-privileged", 14, "ValidatingAdmissionPolicy 'no-privileged' (binding "
         "'no-privileged-apps'): privileged containers: web (reason: Forbidden)"),
    ]


def test_binding_match_resources_namespace_selector() -> None:
    binding = _with(BINDING, ("spec", "matchResources"),
                    {"namespaceSelector": {"matchLabels": {"env": "prod"}}})
    result = _run(POLICY, binding, _ns("prod", env="prod"), _ns("dev", env="dev"),
                  _deploy(9, namespace="prod"), _deploy(9, namespace="dev"))
    assert [v[0] for v in _violations(result)] == ["Deployment prod/web"]


def test_namespace_selector_without_the_namespace_is_a_note_not_a_pass() -> None:
    binding = _with(BINDING, ("spec", "matchResources"),
                    {"namespaceSelector": {"matchLabels": {"env": "prod"}}})
    result = _run(POLICY, binding, _deploy(9, namespace="elsewhere"))
    assert _violations(result) == []
    notes = [f for f in result.findings if f.rule_id == vap.RULE_VAP_NOT_EVALUATED]
    assert notes and "'elsewhere' is not in the scanned manifests" in notes[0].message


def test_object_selector_and_exclude_rules_and_match_policy() -> None:
    selected = _with(POLICY, ("spec", "matchConstraints", "objectSelector"),
                     {"matchExpressions": [{"key": "tier", "operator": "In",
                                            "values": ["web"]}]})
    result = _run(selected, BINDING, _deploy(9, "a", labels={"tier": "web"}),
                  _deploy(9, "b", labels={"tier": "db"}))
    assert [v[0] for v in _violations(result)] == ["Deployment apps/a"]
    excluded = _with(POLICY, ("spec", "matchConstraints", "excludeResourceRules"), [{
        "apiGroups": ["apps"], "apiVersions": ["*"], "operations": ["*"],
        "resources": ["deployments"], "resourceNames": ["a"]}])
    result = _run(excluded, BINDING, _deploy(9, "a"), _deploy(9, "b"))
    assert [v[0] for v in _violations(result)] == ["Deployment apps/b"]
    old = _deploy(9)
    old["apiVersion"] = "apps/v1beta2"
    assert len(_violations(_run(POLICY, BINDING, old))) == 1  # Equivalent (the default)
    exact = _with(POLICY, ("spec", "matchConstraints", "matchPolicy"), "Exact")
    assert _violations(_run(exact, BINDING, old)) == []


PARAMS_POLICY = _with(_with(POLICY, ("spec", "paramKind"), {"apiVersion": "v1",
                                                            "kind": "ConfigMap"}),
                      ("spec", "validations"),
                      [{"expression": "object.spec.replicas <= int(params.data.max)",
                        "messageExpression": "'at most ' + params.data.max + ' replicas'"}])


def _config_map(name: str, value: str, namespace: str = "apps",
                **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "data": {"max": value}}


def test_param_ref_by_name_in_the_object_namespace() -> None:
    binding = _with(BINDING, ("spec", "paramRef"),
                    {"name": "limits", "parameterNotFoundAction": "Deny"})
    result = _run(PARAMS_POLICY, binding, _config_map("limits", "3"), _deploy(4))
    assert [v[2].split(": ", 1)[1] for v in _violations(result)] == ["at most 3 replicas"]


def test_param_ref_selector_evaluates_each_params_object() -> None:
    binding = _with(BINDING, ("spec", "paramRef"),
                    {"selector": {"matchLabels": {"kind": "limit"}}, "namespace": "policy",
                     "parameterNotFoundAction": "Deny"})
    result = _run(PARAMS_POLICY, binding, _config_map("a", "3", "policy", kind="limit"),
                  _config_map("b", "8", "policy", kind="limit"), _deploy(4))
    assert [v[2].split(": ", 1)[1] for v in _violations(result)] == ["at most 3 replicas"]


@pytest.mark.parametrize(("action", "expected"), [("Deny", 1), ("Allow", 0)])
def test_parameter_not_found_action(action: str, expected: int) -> None:
    binding = _with(BINDING, ("spec", "paramRef"),
                    {"name": "missing", "parameterNotFoundAction": action})
    found = _violations(_run(PARAMS_POLICY, binding, _deploy(1)))
    assert len(found) == expected
    if expected:
        assert "no params found" in found[0][2]


@pytest.mark.parametrize(("policy", "expected"), [("Fail", 1), ("Ignore", 0)])
def test_failure_policy(policy: str, expected: int) -> None:
    body = _with(POLICY, ("spec", "failurePolicy"), policy)
    body = _with(body, ("spec", "validations"), [{"expression": "object.spec.nope > 1"}])
    found = _violations(_run(body, BINDING, _deploy(1)))
    assert len(found) == expected
    if expected:
        assert "resulted in error" in found[0][2]


def test_match_conditions_and_variables() -> None:
    body = _with(POLICY, ("spec", "matchConditions"),
                 [{"name": "not-system", "expression":
                   "!object.metadata.namespace.startsWith('kube-')"}])
    body = _with(body, ("spec", "variables"),
                 [{"name": "limit", "expression": "5"}])
    body = _with(body, ("spec", "validations"),
                 [{"expression": "object.spec.replicas <= variables.limit"}])
    result = _run(body, BINDING, _deploy(9, namespace="kube-system"), _deploy(9))
    assert [(v[0], v[2].split(": ", 1)[1]) for v in _violations(result)] == [
        ("Deployment apps/web", "failed expression: object.spec.replicas <= variables.limit")]


def test_nothing_is_skipped_silently() -> None:
    authz = _with(POLICY, ("spec", "validations"), [
        {"expression": "authorizer.group('apps').resource('deployments').check('scale')"
                       ".allowed()"},
        {"expression": "object.spec.replicas <= 5"}])
    orphan = _with(BINDING, ("spec", "policyName"), "absent")
    result = _run(authz, BINDING, orphan, _deploy(9), _with(POLICY, ("metadata", "name"),
                                                            "unbound"))
    messages = [(f.rule_id, f.severity, f.message) for f in result.findings
                if not f.rule_id.startswith("vap/")]
    assert any(r == vap.RULE_VAP_NOT_EVALUATED and s is Severity.WARNING and "authorizer" in m
               for r, s, m in messages)
    assert any("'absent', which is not among this cluster's objects" in m
               for _, _, m in messages)
    assert any("'unbound' has no binding" in m for _, _, m in messages)
    assert len(_violations(result)) == 1  # the decidable validation still runs


@pytest.mark.parametrize(("path", "value", "problem"), [
    (("spec", "matchConstraints"), None, "matchConstraints.resourceRules is required"),
    (("spec", "validations"), [{"expression": "object.x ==="}], "does not compile"),
])
def test_invalid_policy_is_an_error(path: tuple[str, ...], value: Any, problem: str) -> None:
    result = _run(_with(POLICY, path, value), BINDING, _deploy(9))
    errors = [f for f in result.findings if f.rule_id == vap.RULE_VAP_INVALID]
    assert errors and problem in errors[0].message and errors[0].severity is Severity.ERROR


def test_invalid_binding_is_an_error() -> None:
    result = _run(POLICY, _with(BINDING, ("spec", "validationActions"), ["Deny", "Warn"]))
    assert [f.rule_id for f in result.findings] == [vap.RULE_VAP_INVALID,
                                                    vap.RULE_VAP_NOT_EVALUATED]
    assert "Deny and Warn" in result.findings[0].message


def test_runaway_expression_is_an_evaluation_error() -> None:
    body = _with(POLICY, ("spec", "validations"), [{"expression": (
        "object.spec.items.map(a, object.spec.items.map(b, object.spec.items.map(c, a+b+c)))"
        ".size() > 0")}])
    deploy = _deploy(1)
    deploy["spec"]["items"] = list(range(100))
    found = _violations(_run(body, BINDING, deploy))
    assert len(found) == 1 and "budget" in found[0][2]


def test_plural_names() -> None:
    assert [vap.plural(k) for k in ("Pod", "Ingress", "NetworkPolicy", "Endpoints", "Policy",
                                    "Gateway", "Status")] == [
        "pods", "ingresses", "networkpolicies", "endpoints", "policies", "gateways",
        "statuses"]


def test_other_versions_and_audit_annotations_are_said() -> None:
    alpha = _with(POLICY, ("apiVersion",), "admissionregistration.k8s.io/v1alpha1")
    annotated = _with(POLICY, ("spec", "auditAnnotations"),
                      [{"key": "k", "valueExpression": "'v'"}])
    for body, needle in ((alpha, "only admissionregistration.k8s.io/v1"),
                         (annotated, "auditAnnotations are not evaluated")):
        result = _run(body, BINDING, _deploy(1))
        assert any(needle in f.message for f in result.findings
                   if f.rule_id == vap.RULE_VAP_NOT_EVALUATED), needle


def test_a_step_over_the_time_bound_stops_the_binding_with_an_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from checker.parallel import Limits, can_fork

    if not can_fork():
        pytest.skip("bounds need fork")
    # an earlier test may have loaded OPA into this process, which keeps evaluation here; the
    # forked worker below never calls into Go
    monkeypatch.setattr(vap.opa, "loaded", lambda: False)
    body = _with(POLICY, ("spec", "validations"), [
        {"expression": "object.spec.s.findAll('a').size() == 0"}])
    deploy = _deploy(1)
    deploy["spec"]["s"] = "a" * 3_000_000
    result = vap.evaluate([_res(body), _res(BINDING), _res(deploy)],
                          limits=Limits(seconds=0.2))
    assert result.errors and "Deployment apps/web" in result.errors[0]
    assert [f.rule_id for f in result.findings] == [vap.RULE_VAP_ERROR]
