"""ConstraintTemplates with K8sNativeValidation (CEL) code, as Gatekeeper's driver runs them,
and a differential test of our CEL results against the CEL runtime driven directly."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cel_expr_python import cel as runtime
from click.testing import CliRunner

from checker.cli import cli as main
from checker.errors import PolicyError
from checker.load.objects import make_resource
from checker.model import Rule, Severity, SourceLocation
from checker.policy import k8scel
from checker.policy.cel import CelSource, CompiledTemplate, Validation, parse_source
from checker.policy.evaluate import Evaluator
from checker.policy.gatekeeper import parse_constraint, parse_template
from checker.policy.model import Policy
from tests.conftest import FIXTURES

FIXTURES = FIXTURES / "cel"
TEMPLATE = yaml.safe_load((FIXTURES / "suite" / "template.yaml").read_text())
CONSTRAINT = yaml.safe_load((FIXTURES / "suite" / "constraint.yaml").read_text())
LOC = SourceLocation("x.yaml", 1)


def _res(body: dict[str, Any]) -> Any:
    return make_resource(body, LOC, {})


def _pod(image: str, name: str = "p", **meta: Any) -> Any:
    return _res({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **meta},
                 "spec": {"containers": [{"name": "app", "image": image}]}})


def _policy(template: dict[str, Any], constraint: dict[str, Any]) -> Policy:
    t = parse_template(_res(template))
    c = parse_constraint(_res(constraint), t)
    return Policy(t, c, Rule("r", "r", Severity.ERROR), Severity.ERROR, "repository")


def _messages(template: dict[str, Any], obj: Any, prefer_cel: bool = True) -> list[str]:
    evaluation = Evaluator([_policy(template, CONSTRAINT)], cluster_view=False,
                           prefer_cel=prefer_cel).run([obj], workers=1)
    assert not evaluation.errors, evaluation.errors
    return [f.message for f in evaluation.findings if f.rule_id == "r"]


def _source(**source: Any) -> dict[str, Any]:
    t = copy.deepcopy(TEMPLATE)
    t["spec"]["targets"][0]["code"] = [{"engine": "K8sNativeValidation", "source": source}]
    return t


def test_cel_only_template_loads_and_names_its_engine() -> None:
    template = parse_template(_res(TEMPLATE))
    assert template.cel is not None and not template.has_rego
    evaluator = Evaluator([_policy(TEMPLATE, CONSTRAINT)])
    assert evaluator.engines([template])[0].startswith("cel-expr-python")


def test_violation_message_comes_from_message_expression_with_params() -> None:
    assert _messages(TEMPLATE, _pod("nginx:latest")) == [
        "container <app> uses a disallowed tag; constraint no-latest"]
    assert _messages(TEMPLATE, _pod("nginx:1.27")) == []


def test_match_condition_false_skips_the_object() -> None:
    job = _pod("nginx:latest", labels={"batch.kubernetes.io/job-name": "x"})
    assert _messages(TEMPLATE, job) == []


def test_message_falls_back_to_message_then_expression() -> None:
    t = _source(validations=[{"expression": "false", "message": " plain "},
                             {"expression": "1 == 2"},
                             {"expression": "false", "messageExpression": "'two\\nlines'",
                              "message": "fallback"}])
    assert sorted(_messages(t, _pod("x:1"))) == ["failed expression: 1 == 2", "fallback", "plain"]


@pytest.mark.parametrize(("policy", "expected"), [(None, 1), ("Fail", 1), ("Ignore", 0)])
def test_failure_policy(policy: str | None, expected: int) -> None:
    source: dict[str, Any] = {"validations": [{"expression": "object.spec.nope == 1"}]}
    if policy:
        source["failurePolicy"] = policy
    found = _messages(_source(**source), _pod("x:1"))
    assert len(found) == expected
    if expected:
        assert "resulted in error" in found[0] and "nope" in found[0]


def test_error_in_a_variable_names_the_variable() -> None:
    t = _source(variables=[{"name": "bad", "expression": "object.spec.nope"}],
                validations=[{"expression": "variables.bad == 1"}])
    assert "variable 'bad'" in _messages(t, _pod("x:1"))[0]


def test_gatekeeper_variables_and_delete() -> None:
    t = _source(validations=[
        {"expression": "variables.anyObject.metadata.name == 'p'", "message": "anyObject"},
        {"expression": "variables.params.tags == ['latest']", "message": "params"},
        {"expression": "request.kind.kind == 'Pod'", "message": "request"},
        {"expression": "oldObject == null", "message": "oldObject"},
    ])
    assert _messages(t, _pod("x:1")) == []


def test_reserved_names_are_refused_as_gatekeeper_refuses_them() -> None:
    with pytest.raises(PolicyError, match="reserved"):
        parse_source({"source": {"variables": [{"name": "params", "expression": "1"}]}})
    with pytest.raises(PolicyError, match="reserved"):
        parse_source({"source": {"matchCondition": [
            {"name": "gatekeeper_internal_x", "expression": "true"}]}})
    with pytest.raises(PolicyError, match="failurePolicy"):
        parse_source({"source": {"failurePolicy": "Maybe"}})


def test_authorizer_in_a_template_does_not_compile() -> None:
    with pytest.raises(PolicyError, match="authorizer"):
        CompiledTemplate(CelSource((Validation("authorizer.serviceAccount('a', 'b')"
                                               ".group('').resource('pods').check('get')"
                                               ".allowed()"),)), "t")


def test_template_with_both_runs_cel_by_default_and_rego_when_chosen() -> None:
    t = copy.deepcopy(TEMPLATE)
    t["spec"]["targets"][0]["code"].append({"engine": "Rego", "source": {"rego": (
        "package k8sdisallowedtagscel\n"
        "violation[{\"msg\": \"from rego\"}] { true }\n")}})
    assert _messages(t, _pod("nginx:1.27")) == []
    assert _messages(t, _pod("nginx:1.27"), prefer_cel=False) == ["from rego"]


def test_verify_runs_a_cel_suite() -> None:
    result = CliRunner().invoke(main, ["verify", str(FIXTURES / "suite" / "suite.yaml")])
    assert result.exit_code == 0, result.output
    assert "3 passed, 0 failed" in result.output


def test_scan_of_a_cel_only_template_is_not_an_error() -> None:
    root = FIXTURES / "repo"
    result = CliRunner().invoke(main, [
        "scan", str(root / "apps"), "--root", str(root), "--policies", str(root / "policies"),
        "--pack", "none", "--format", "json", "--fail-on", "error"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    found = [(f["rule"], f["message"]) for f in report["findings"]]
    assert ("K8sDisallowedTagsCel/no-latest",
            "container <web> uses a disallowed tag; constraint no-latest") in found
    assert report["tool"]["regoEngines"][0].startswith("cel-expr-python")
    assert "K8sNativeValidation" in report["tool"]["regoEngines"][0]


# --- differential: our evaluation against the CEL runtime driven directly --------------------

DIFFERENTIAL = [
    "object.spec.containers.all(c, c.image.contains(':'))",
    "object.spec.containers.exists(c, c.name == 'app')",
    "object.spec.containers.map(c, c.image).filter(i, i.endsWith(':latest')).size()",
    "has(object.spec.hostNetwork) && object.spec.hostNetwork",
    "object.metadata.name.startsWith('p') ? 'yes' : 'no'",
    "object.spec.containers[0].image.split(':')",
    "object.spec.containers[0].nope",
    "size(object.metadata.name) > 100",
    "object.spec.containers.exists_one(c, c.image.matches('^nginx'))",
    "object.metadata.?labels.orValue({}).size()",
    "int(object.spec.replicas) * 2",
    "object.spec.replicas / 0",
    "'%s/%s'.format([object.kind, object.metadata.name])",
    "[1, 2, 3].map(x, x * object.spec.replicas)",
]
OBJECTS = [
    {"kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
     "spec": {"replicas": 2, "containers": [{"name": "app", "image": "nginx:latest"}]}},
    {"kind": "Pod", "metadata": {"name": "q"},
     "spec": {"replicas": 0, "hostNetwork": True,
              "containers": [{"name": "x", "image": "busybox"}, {"name": "app",
                                                                 "image": "nginx:1"}]}},
]


@pytest.mark.parametrize("expression", DIFFERENTIAL)
def test_differential_against_the_runtime(expression: str) -> None:
    from cel_expr_python.ext import ext_optional, ext_strings

    direct = runtime.NewEnv(variables={"object": runtime.Type.DYN},
                            extensions=[ext_strings.ExtStrings(version=2),
                                        ext_optional.ExtOptional()]).compile(expression)
    ours = k8scel.environment(("object",)).compile(expression, "t")
    for obj in OBJECTS:
        result = direct.eval(data={"object": obj})
        mine, error = k8scel.evaluate(ours, {"object": obj})
        if result.type() == runtime.Type.ERROR:
            assert error is not None and mine is None
        else:
            assert error is None
            assert mine == k8scel._plain(result.value())


def test_policies_export_keeps_a_cel_only_template(tmp_path: Path) -> None:
    import shutil

    from checker.policy.export import export_objects
    from checker.policy.packs import load_catalog, packs_dir

    shutil.copytree(packs_dir(), tmp_path / "packs")
    pack = tmp_path / "packs" / "cel-pack"
    (pack / "templates").mkdir(parents=True)
    (pack / "constraints").mkdir()
    shutil.copy(FIXTURES / "suite" / "template.yaml", pack / "templates" / "tags.yaml")
    shutil.copy(FIXTURES / "suite" / "constraint.yaml", pack / "constraints" / "tags.yaml")
    (pack / "pack.yaml").write_text(yaml.safe_dump({
        "name": "cel-pack", "title": "CEL", "standard": "Best practice", "description": "d",
        "policies": [{"id": "cel-tags", "title": "t", "severity": "error",
                      "template": "templates/tags.yaml", "constraint": "constraints/tags.yaml",
                      "rationale": "r", "remediation": "m",
                      "controls": [{"standard": "best-practice", "id": "Immutable images"}]}]}))
    files = export_objects(load_catalog(tmp_path / "packs"), ["cel-pack"], None)
    exported = parse_template(_res(yaml.safe_load(files["templates/k8sdisallowedtagscel.yaml"])))
    assert exported.cel == parse_template(_res(TEMPLATE)).cel
    assert exported.cel is not None and not exported.has_rego


@pytest.mark.parametrize("data", [
    {"object": {"a": 1}, "oldObject": None, "request": {"operation": "CREATE"},
     "params": {"spec": {"parameters": {"x": 1}}}},
    {"object": None, "oldObject": {"b": 2}, "request": {"operation": "DELETE"},
     "params": {"spec": {}}},
    {"object": {"a": 1}, "oldObject": {"b": 2}, "request": {"operation": "DELETE"},
     "params": {"metadata": {}}},
    {"object": {"a": 1}, "oldObject": None, "request": {}, "params": {"spec": {
        "parameters": None}}},
])
def test_gatekeeper_variables_equal_the_drivers_cel_expressions(data: dict[str, Any]) -> None:
    from checker.policy.cel import GATEKEEPER_VARIABLES, VARIABLES, gatekeeper_variables

    env = k8scel.environment(VARIABLES)
    full = {"namespaceObject": None, "variables": {}, **data}
    expected = {name: k8scel.evaluate(env.compile(expr, name), full)
                for name, expr in GATEKEEPER_VARIABLES}
    assert all(error is None for _, error in expected.values())
    assert gatekeeper_variables(data) == {k: v for k, (v, _) in expected.items()}


def test_variables_carry_kubernetes_values_between_expressions() -> None:
    t = _source(variables=[{"name": "q", "expression": "quantity('1Gi')"},
                           {"name": "ip", "expression": "cidr('10.0.0.0/8')"},
                           {"name": "t", "expression": "type(1)"}],
                validations=[{"expression": "variables.q.isGreaterThan(quantity('1G')) && "
                                            "variables.ip.containsIP('10.1.2.3')",
                              "message": "values"},
                             {"expression": "variables.t == int"}])
    found = _messages(t, _pod("x:1"))
    assert len(found) == 1 and "variable 't': its value is a type" in found[0]


@pytest.mark.parametrize(("engine", "expected"), [
    (None, "container <app> uses a disallowed tag; constraint no-latest"),
    ("K8sNativeValidation", "container <app> uses a disallowed tag; constraint no-latest"),
    ("Rego", "from rego")])
def test_repository_config_chooses_the_engine(tmp_path: Path, engine: str | None,
                                              expected: str) -> None:
    template = copy.deepcopy(TEMPLATE)
    template["spec"]["targets"][0]["code"].append({"engine": "Rego", "source": {"rego": (
        "package k8sdisallowedtagscel\n"
        "violation[{\"msg\": \"from rego\"}] { true }\n")}})
    (tmp_path / "policies").mkdir()
    (tmp_path / "apps").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(yaml.safe_dump_all([template, CONSTRAINT]))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "app", "image": "nginx:latest"}]}}
    (tmp_path / "apps" / "pod.yaml").write_text(yaml.safe_dump(pod))
    if engine:
        (tmp_path / ".gitops-checker.yaml").write_text(yaml.safe_dump(
            {"version": 1, "gatekeeper": {"templateEngine": engine}}))
    result = CliRunner().invoke(main, [
        "scan", str(tmp_path / "apps"), "--root", str(tmp_path), "--pack", "none",
        "--policies", str(tmp_path / "policies"), "--format", "json", "--fail-on", "never"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [f["message"] for f in report["findings"]
            if f["rule"] == "K8sDisallowedTagsCel/no-latest"] == [expected]
    engines = " ".join(report["tool"]["regoEngines"])
    assert ("K8sNativeValidation" in engines) is (engine != "Rego")
