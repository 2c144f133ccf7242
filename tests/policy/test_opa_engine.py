"""Which engine judges a repository's own templates, and what the reports say about it.

With OPA installed a repository template runs on OPA (Gatekeeper's semantics, exactly); without
it, on regorus, where each known difference is either made to work (multi-body rules) or
reported (a ``policy.engine-difference`` warning, a template that does not compile). Each known
difference listed in README has a test here.
"""

from __future__ import annotations

from typing import Any

import pytest

from checker.errors import PolicyError
from checker.load.objects import make_resource
from checker.model import Severity, SourceLocation
from checker.policy import evaluate, opa
from checker.policy.evaluate import RULE_ENGINE_DIFFERENCE, Evaluator
from checker.policy.gatekeeper import parse_constraint, parse_template
from checker.policy.model import Policy
from checker.policy.packs import repository_policies
from checker.policy.regorus_engine import RegorusEngine
from checker.policy.semantics import split_bodies

needs_opa = pytest.mark.skipif(not opa.available(), reason="the OPA binding is not installed")

NEGATED = """package negated

violation[{"msg": msg}] {
  not startswith(input.review.object.metadata.annotations.owner, "team-")
  msg := "owner annotation must start with team-"
}
"""
MULTI_BODY = """package multibody

violation[{"msg": msg}] {
  input.review.object.metadata.name == "a"
  msg := "name a"
} {
  input.review.object.metadata.name == "b"
  msg := "name b"
}
"""
PAREN_LINE = """package paren

violation[{"msg": msg}] {
  n := 1
  m := input.review.object.spec.replicas
  (m - n) > 1
  msg := "too many"
}
"""
SPRINTF = """package fewargs

violation[{"msg": msg}] {
  msg := sprintf("%v has %v", [input.review.object.metadata.name])
}
"""


def _policy(rego: str, kind: str = "Probe") -> Policy:
    template = {
        "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
        "metadata": {"name": kind.lower()},
        "spec": {"crd": {"spec": {"names": {"kind": kind}}},
                 "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": rego}]},
    }
    constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind,
                  "metadata": {"name": "probe"},
                  "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["ConfigMap"]}]}}}
    policies, errors = repository_policies([
        make_resource(template, SourceLocation("policies/t.yaml"), {}),
        make_resource(constraint, SourceLocation("policies/c.yaml"), {})])
    assert errors == []
    return policies[0]


def _object(**spec: Any) -> Any:
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": spec.pop("name", "a"), "namespace": "team"}, "spec": spec}
    return make_resource(body, SourceLocation("cm.yaml"), {})


@pytest.fixture
def without_opa(monkeypatch: pytest.MonkeyPatch) -> None:
    """Evaluators behave as on an installation without the OPA binding."""
    monkeypatch.setattr(opa, "exact_engine", lambda: None)


@pytest.fixture
def with_opa(monkeypatch: pytest.MonkeyPatch) -> None:
    """Repository templates on OPA (the default where it is installed)."""
    monkeypatch.delenv(opa.SWITCH, raising=False)


def test_opa_for_repository_templates_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(opa.SWITCH, raising=False)
    assert (opa.exact_engine() is not None) == opa.available()
    monkeypatch.setenv(opa.SWITCH, "1")
    assert (opa.exact_engine() is not None) == opa.available()
    monkeypatch.setenv(opa.SWITCH, "0")  # a comparison with regorus
    assert opa.exact_engine() is None


@needs_opa
def test_repository_template_runs_on_opa_when_installed(with_opa: None) -> None:
    evaluator = Evaluator([_policy(NEGATED)])
    result = evaluator.run([_object()])
    # OPA: the undefined argument makes the negation fail, so no violation (as Gatekeeper)
    assert [f.rule_id for f in result.findings] == []
    assert result.engines == (f"opa {opa.version()} (repository templates)",)


def test_without_opa_the_difference_is_a_warning_not_a_silent_verdict(without_opa: None) -> None:
    result = Evaluator([_policy(NEGATED)]).run([_object()])
    notes = [f for f in result.findings if f.rule_id == RULE_ENGINE_DIFFERENCE]
    assert len(notes) == 1 and notes[0].severity is Severity.WARNING
    assert "line 4" in notes[0].message and "not startswith(" in notes[0].message
    assert notes[0].location.path == "policies/t.yaml"
    # regorus's reading: the violation is reported (Gatekeeper would not report it)
    assert [f.message for f in result.findings if f.rule_id != RULE_ENGINE_DIFFERENCE] == [
        "owner annotation must start with team-"]
    assert result.engines[0].startswith("regorus ")


def test_shipped_templates_stay_on_the_fast_path() -> None:
    from checker.policy.packs import load_catalog, pack_policies

    policies = pack_policies(load_catalog(), ["pss-baseline"])
    evaluator = Evaluator(policies)
    assert all(evaluator.engine_for(p.template).name == "regorus" for p in policies)
    assert evaluator.engines([p.template for p in policies]) == (
        f"regorus {RegorusEngine().version} (shipped templates, compiled RVM)",)


@pytest.mark.parametrize("engine", ["opa", "regorus"])
def test_multi_body_set_rule(engine: str, without_opa: None) -> None:
    if engine == "opa" and not opa.available():
        pytest.skip("the OPA binding is not installed")
    chosen = opa.OpaEngine() if engine == "opa" else RegorusEngine()
    evaluator = Evaluator([_policy(MULTI_BODY)], engine=chosen)
    found = [f.message for f in evaluator.run([_object(name="a"), _object(name="b"),
                                               _object(name="c")]).findings]
    assert found == ["name a", "name b"]


def test_split_bodies_keeps_heads_comments_and_else() -> None:
    source = ('package t\n\nviolation[{"msg": m}] {\n  x := {"a": "}"}  # { brace\n  m := "1"\n'
              '} {\n  m := "2"\n}\n\nf(x) = 1 {\n  x\n} else = 2 {\n  true\n}\n')
    out = split_bodies(source)
    assert out.count('violation[{"msg": m}] {') == 2
    assert "} else = 2 {" in out
    assert split_bodies(out) == out


@needs_opa
def test_line_starting_with_parenthesis_on_opa(with_opa: None) -> None:
    evaluator = Evaluator([_policy(PAREN_LINE)])
    assert [f.message for f in evaluator.run([_object(replicas=5)]).findings] == ["too many"]
    assert evaluator.run([_object(replicas=1)]).findings == []


def test_line_starting_with_parenthesis_in_regorus(without_opa: None) -> None:
    """regorus reads a ``(`` line as a call continuing the previous line, OPA as a statement
    of its own (a call needs its ``(`` right after the name); the module is given to regorus
    with the statements separated, so both engines give the verdicts above."""
    evaluator = Evaluator([_policy(PAREN_LINE)])
    assert [f.message for f in evaluator.run([_object(replicas=5)]).findings] == ["too many"]
    assert evaluator.run([_object(replicas=1)]).findings == []
    assert evaluator.run([_object(replicas=5)]).engines[0].startswith("regorus ")


def test_separated_paren_lines_keep_everything_else() -> None:
    from checker.policy.semantics import separate_paren_lines

    source = ('package t\nx := y {\n  y := [1,\n    (2)]\n  z := "a (b"  # c\n'
              '  (count(y) + 1) > 1\n  w := `\n(raw)`\n}\n')
    out = separate_paren_lines(source)
    assert out == source.replace('z := "a (b"  # c', 'z := "a (b";  # c')
    assert separate_paren_lines(out) == out


@needs_opa
def test_sprintf_with_too_few_arguments_on_opa(with_opa: None) -> None:
    found = Evaluator([_policy(SPRINTF)]).run([_object(name="web")]).findings
    assert [f.message for f in found] == ["web has %!v(MISSING)"]


def test_sprintf_with_too_few_arguments_in_regorus(without_opa: None) -> None:
    """regorus raises where Go prints ``%!v(MISSING)``: the missing arguments of plain
    ``%v``/``%s`` verbs are filled in with what Go prints, so regorus gives OPA's message."""
    found = Evaluator([_policy(SPRINTF)]).run([_object(name="web")]).findings
    assert [f.message for f in found] == ["web has %!v(MISSING)"]


@pytest.mark.parametrize("engine", ["opa", "regorus"])
def test_sprintf_padding_matches_opa(engine: str, without_opa: None) -> None:
    """The same messages on both engines, OPA's being the reference; a missing ``%d`` (Go
    prints ``%!d(MISSING)``, which a string argument cannot reproduce) stays an error on
    regorus."""
    if engine == "opa" and not opa.available():
        pytest.skip("the OPA binding is not installed")
    chosen = opa.OpaEngine() if engine == "opa" else RegorusEngine()
    rego = SPRINTF.replace('sprintf("%v has %v", [input.review.object.metadata.name])',
                           'sprintf(`%s: %v%% of %s`, [])')
    found = Evaluator([_policy(rego)], engine=chosen).run([_object(name="web")]).findings
    assert [f.message for f in found] == ["%!s(MISSING): %!v(MISSING)% of %!s(MISSING)"]
    digits = SPRINTF.replace("%v has %v", "%v has %d")
    found = Evaluator([_policy(digits)], engine=chosen).run([_object(name="web")]).findings
    if engine == "opa":
        assert [f.message for f in found] == ["web has %!d(MISSING)"]
    else:
        assert [f.rule_id for f in found] == [evaluate.RULE_EVAL_ERROR]


@needs_opa
def test_opa_compile_error_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="does not compile"):
        opa.OpaEngine().compile("t", [("t.rego", "package t\nviolation[x] { x := }\n")],
                                rego_v1=False, data_json=None)


def test_parse_helpers_still_validate() -> None:
    """The probe template is a valid Gatekeeper object (guards the helpers above)."""
    policy = _policy(NEGATED)
    assert parse_template(make_resource(dict(policy.template.body), policy.template.location, {}))
    assert parse_constraint(make_resource(dict(policy.constraint.body),
                                          policy.constraint.location, {}), policy.template)
