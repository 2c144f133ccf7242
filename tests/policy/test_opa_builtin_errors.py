"""A failing built-in is undefined, as in Gatekeeper; real OPA computes every value.

Gatekeeper's Rego driver evaluates without ``rego.StrictBuiltinErrors`` (frameworks/constraint,
``pkg/client/drivers/rego/driver.go``), so OPA's default holds: a built-in that fails makes its
expression undefined and evaluation goes on. The binding runs strictly, so
``checker.policy.opa`` evaluates a template again with stand-ins when a built-in fails.

The oracle is real OPA on the same template in which each call that fails on the case's input is
replaced by a call, with the same arguments, of a function of the module that is never defined
(``gitops_checker_undef([args])``): a call with no result, which is what OPA's non-strict
evaluation makes of the failing built-in (the error is recorded, the expression gets no value).
A call and not a reference, because OPA evaluates a call nested in another expression before
that expression, also under ``not``: ``not to_number("x") == 5`` fails in Gatekeeper, where
``not to_number("x")`` succeeds. Each case also shows that the binding on its own raises, so
that the case really hits a failing built-in.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from checker.load.objects import make_resource
from checker.model import SourceLocation
from checker.policy import evaluate, opa
from checker.policy.evaluate import Evaluator
from checker.policy.packs import repository_policies

pytestmark = pytest.mark.skipif(not opa.available(), reason="the OPA binding is not installed")

# never defined; its value would be of any type, so no use of it fails the type check
UNDEF = "\ngitops_checker_undef(_) = v {\n  false\n  v := input.review\n}\n"
# (name, template, failing calls (or (operation, its replacement)), object, parameters)
CASES: list[tuple[str, str, list[Any], dict[str, Any], dict[str, Any]]] = [
    ("to_number in a body", """package t
violation[{"msg": m}] {
  n := to_number(input.review.object.spec.replicas)
  n > 3
  m := sprintf("replicas %v", [n])
}
violation[{"msg": "replicas given"}] {
  input.review.object.spec.replicas
}
""", ['to_number(input.review.object.spec.replicas)'], {"spec": {"replicas": "many"}}, {}),
    ("to_number under not", """package t
violation[{"msg": "replicas is not a number"}] {
  not to_number(input.review.object.spec.replicas)
}
violation[{"msg": "replicas is not five"}] {
  not to_number(input.review.object.spec.replicas) == 5
}
""", ['to_number(input.review.object.spec.replicas)'], {"spec": {"replicas": "x"}}, {}),
    ("regex.match with a bad pattern", """package t
violation[{"msg": m}] {
  image := input.review.object.spec.image
  not regex.match(input.parameters.pattern, image)
  m := sprintf("image %v does not match", [image])
}
violation[{"msg": "matched"}] {
  regex.match(input.parameters.pattern, input.review.object.spec.image)
}
""", ['regex.match(input.parameters.pattern, image)',
      'regex.match(input.parameters.pattern, input.review.object.spec.image)'],
     {"spec": {"image": "nginx"}}, {"pattern": "(unclosed"}),
    ("v0 re_match and split of a number", """package t
violation[{"msg": "registry"}] {
  parts := split(input.review.object.spec.image, "/")
  count(parts) > 1
}
violation[{"msg": "tagged"}] {
  not re_match(input.parameters.pattern, "x:1")
}
violation[{"msg": "always"}] {
  true
}
""", ['split(input.review.object.spec.image, "/")', 're_match(input.parameters.pattern, "x:1")'],
     {"spec": {"image": 5}}, {"pattern": "["}),
    ("a failing call in a helper function", """package t
cpu(x) = n {
  n := to_number(trim_suffix(x, "m"))
}
violation[{"msg": "too much cpu"}] {
  cpu(input.review.object.spec.cpu) > 100
}
violation[{"msg": "cpu unreadable"}] {
  not cpu(input.review.object.spec.cpu)
}
""", ['to_number(trim_suffix(x, "m"))'], {"spec": {"cpu": "1.5.3m"}}, {}),
    ("division by zero and arithmetic on a string", """package t
violation[{"msg": "ratio"}] {
  input.review.object.spec.max / input.review.object.spec.min > 2
}
violation[{"msg": "no ratio"}] {
  not input.review.object.spec.max / input.review.object.spec.min
}
violation[{"msg": m}] {
  total := (input.review.object.spec.max + input.review.object.spec.unit) * 2
  m := sprintf("total %v", [total])
}
violation[{"msg": "nested"}] {
  x := 10 % (input.review.object.spec.min * 3)
  x >= 0
}
""", [('input.review.object.spec.max / input.review.object.spec.min',
       'gitops_checker_undef([input.review.object.spec.max, input.review.object.spec.min])'),
      ('(input.review.object.spec.max + input.review.object.spec.unit)',
       'gitops_checker_undef([input.review.object.spec.max, input.review.object.spec.unit])'),
      ('10 % (input.review.object.spec.min * 3)',
       'gitops_checker_undef([10, input.review.object.spec.min * 3])')],
     {"spec": {"max": 10, "min": 0, "unit": "Gi"}}, {}),
]


def _messages(rego: str, review: dict[str, Any], parameters: dict[str, Any]) -> Any:
    compiled = opa.OpaEngine().compile("t", [("t.rego", rego)], rego_v1=False, data_json=None)
    got = compiled.evaluate(json.dumps({"review": review, "parameters": parameters}))
    return got if isinstance(got, evaluate.EvalError) else sorted(v["msg"] for v in got)


def _strict(rego: str, review: dict[str, Any], parameters: dict[str, Any]) -> str:
    """The binding alone: the error the failing built-in raises."""
    from opa_bindings import OpaEngine as Binding
    from opa_bindings import OpaError

    engine = Binding()
    engine.add_policy("t.rego", opa.as_v1(rego, False))
    with pytest.raises(OpaError) as raised:
        engine.eval_document("t.violation", {"review": review, "parameters": parameters})
    return str(raised.value)


@pytest.mark.parametrize(("name", "rego", "failing", "obj", "params"), CASES,
                         ids=[c[0] for c in CASES])
def test_failing_builtin_gives_gatekeepers_verdict(name: str, rego: str, failing: list[Any],
                                                   obj: dict[str, Any],
                                                   params: dict[str, Any]) -> None:
    review = {"object": obj, "operation": "CREATE"}
    assert any(kind in _strict(rego, review, params) for kind in opa.BUILTIN_ERRORS)
    oracle_rego = rego + UNDEF
    for call in failing:
        text, undefined = (call if isinstance(call, tuple) else
                           (call, f"gitops_checker_undef([{call.split('(', 1)[1][:-1]}])"))
        assert text in oracle_rego
        oracle_rego = oracle_rego.replace(text, undefined)
    oracle = _messages(oracle_rego, review, params)
    assert not isinstance(oracle, evaluate.EvalError)
    assert _messages(rego, review, params) == oracle


def test_the_cases_decide_something() -> None:
    """The oracle's verdicts are not all empty: both readings of ``not`` are exercised."""
    got = {c[0]: _messages(c[1], {"object": c[3], "operation": "CREATE"}, c[4]) for c in CASES}
    assert got == {
        "to_number in a body": ["replicas given"],
        # the nested call is evaluated before the negation: its failure fails the body
        "to_number under not": ["replicas is not a number"],
        "regex.match with a bad pattern": ["image nginx does not match"],
        "v0 re_match and split of a number": ["always", "tagged"],
        "a failing call in a helper function": ["cpu unreadable"],
        "division by zero and arithmetic on a string": ["no ratio"],
    }


def test_well_typed_input_keeps_the_strict_result() -> None:
    rego = CASES[0][1]
    assert _messages(rego, {"object": {"spec": {"replicas": "5"}}}, {}) == [
        "replicas 5", "replicas given"]


@pytest.mark.parametrize("expression", ["object.keys(input.review.object.spec.n)",
                                        "input.review.object.spec.n - 1"])
def test_failure_outside_the_lax_builtins_fails_closed(expression: str) -> None:
    """A built-in outside ``LAX`` (and ``-``, which may be a set difference) is not rerouted:
    its failure is an error that says why."""
    rego = f'package t\nviolation[{{"msg": "m"}}] {{\n  x := {expression}\n  x\n}}\n'
    got = _messages(rego, {"object": {"spec": {"n": "five"}}}, {})
    assert isinstance(got, evaluate.EvalError)
    assert "eval_type_error" in got.message and "fails closed" in got.message


def test_a_conflict_is_still_an_error() -> None:
    """Not a built-in's failure: Gatekeeper's driver turns it into a violation carrying the
    error; here it is an evaluation error (the run fails)."""
    rego = ('package t\nx := input.review.object.a\nx := input.review.object.b\n'
            'violation[{"msg": "m"}] {\n  x\n}\n')
    got = _messages(rego, {"object": {"a": 1, "b": 2}}, {})
    assert isinstance(got, evaluate.EvalError) and "conflict" in got.message


def test_scan_of_a_repository_template_reports_no_error(monkeypatch: pytest.MonkeyPatch,
                                                        ) -> None:
    """Through the evaluator (the scan's path for a repository template): Gatekeeper's
    verdict, no ``policy.evaluation-error``."""
    monkeypatch.delenv(opa.SWITCH, raising=False)
    template = {
        "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
        "metadata": {"name": "replicas"},
        "spec": {"crd": {"spec": {"names": {"kind": "Replicas"}}},
                 "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": CASES[1][1]}]},
    }
    constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "Replicas",
                  "metadata": {"name": "replicas"},
                  "spec": {"match": {"kinds": [{"apiGroups": ["apps"],
                                                "kinds": ["Deployment"]}]}}}
    policies, errors = repository_policies([
        make_resource(template, SourceLocation("policies/t.yaml"), {}),
        make_resource(constraint, SourceLocation("policies/c.yaml"), {})])
    assert errors == []
    deployment = make_resource({"apiVersion": "apps/v1", "kind": "Deployment",
                                "metadata": {"name": "web", "namespace": "apps"},
                                "spec": {"replicas": "x"}}, SourceLocation("d.yaml"), {})
    result = Evaluator(policies).run([deployment], workers=1)
    assert result.errors == []
    assert sorted(f.message for f in result.findings) == ["replicas is not a number"]
