"""The RVM path: v0 -> v1 rewrite, the undefined-assignment guard, who may use it, fallback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from checker.model import Resource, SourceLocation
from checker.policy import rewrite, rvm
from checker.policy.evaluate import Evaluator
from checker.policy.gatekeeper import Template
from checker.policy.model import Policy
from checker.policy.packs import (
    bundled_packs_dir,
    is_shipped,
    load_catalog,
    pack_policies,
    packs_dir,
)
from checker.policy.regorus_engine import RegorusEngine
from tests.conftest import RvmRuns

V0 = """package t

import future.keywords.in
import future.keywords.if

violation[{"msg": msg}] {
  some c in input.review.object.spec.containers
  not c.securityContext.runAsNonRoot
  msg := sprintf("container %v", [c.name])
}

violation[{"msg": msg}] {
  input.review.object.metadata.name == "é"
  msg := "named é"
}

double(x) = y { y := x * 2 }

size := "big" { count(input.review.object.spec.containers) > double(1) } else = "small" { true }

kinds[k] { k := input.review.object.spec.containers[_].name }

labels[k] = v { some k, v in input.review.object.metadata.labels }

default flag = false

flag if input.review.object.metadata.name == "x"
"""


def interpret(source: str, rule: str, input_doc: Any, *, rego_v1: bool) -> Any:
    program = RegorusEngine().program(rego_v1=rego_v1, data_json=None)
    program.add_module("t.rego", source)
    program.set_input(json.dumps(input_doc))
    return program.eval_rule(rule)


def compiled(source: str, rule: str, input_doc: Any, data: str = "{}") -> Any:
    return rvm.Compiled(data, [("t.rego", rewrite.to_v1(source))], rule).execute(
        json.dumps(input_doc))


def review(name: str, containers: list[dict[str, Any]],
           labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"review": {"object": {"metadata": {"name": name, "labels": labels or {}},
                                  "spec": {"containers": containers}}}}


INPUTS = [
    review("a", [{"name": "c1"}, {"name": "c2", "securityContext": {"runAsNonRoot": True}}]),
    review("é", [{"name": "c1"}, {"name": "c2"}, {"name": "c3"}], {"team": "x"}),
    review("x", []),
]


@pytest.mark.parametrize("rule", ["violation", "size", "kinds", "labels", "flag"])
@pytest.mark.parametrize("case", range(len(INPUTS)))
def test_v0_rewritten_to_v1_computes_the_same(rule: str, case: int) -> None:
    expected = interpret(V0, f"data.t.{rule}", INPUTS[case], rego_v1=False)
    assert compiled(V0, f"data.t.{rule}", INPUTS[case]) == expected


def test_rewrite_is_v1_syntax() -> None:
    v1 = rewrite.to_v1(V0)
    assert "violation contains {" in v1 and "kinds contains k if {" in v1
    assert "future.keywords" not in v1 and "import rego.v1" in v1
    assert 'else = "small" if {' in v1
    interpret(v1, "data.t.violation", INPUTS[0], rego_v1=True)  # the v1 parser accepts it


def test_guard_stops_a_body_at_an_undefined_assignment() -> None:
    source = """package t
import rego.v1
violation contains {"msg": msg} if {
  some c in input.review.object.spec.containers
  some env in c.env
  ref := env.valueFrom.secretKeyRef
  msg := sprintf("%v reads %v", [env.name, ref.name])
}
"""
    doc = {"review": {"object": {"spec": {"containers": [{"env": [
        {"name": "PLAIN", "value": "1"},
        {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s"}}}]}]}}}}
    expected = [{"msg": "SECRET reads s"}]
    assert interpret(source, "data.t.violation", doc, rego_v1=True) == expected
    assert compiled(source, "data.t.violation", doc) == expected
    # without the guard the VM keeps the body going with an undefined value
    raw = rvm.Compiled("{}", [("t.rego", source)], "data.t.violation")
    assert raw.execute(json.dumps(doc)) is None  # "<undefined>" in the result is refused


def test_guard_goes_after_a_closing_quote() -> None:
    source = 'package t\nimport rego.v1\nr := x if {\n  x := "é"\n}\n'
    assert 'x := "é"; x == x' in rewrite.to_v1(source, True)
    assert compiled(source, "data.t.r", {}) == "é"


def test_data_is_visible_at_run_time() -> None:
    source = "package t\nimport rego.v1\nr := data.inventory.cluster.v1.Namespace.a.x\n"
    data = json.dumps({"inventory": {"cluster": {"v1": {"Namespace": {"a": {"x": 7}}}}}})
    assert compiled(source, "data.t.r", {}, data) == 7


def test_only_shipped_templates_are_verified() -> None:
    policies = pack_policies(load_catalog(), ["pss-baseline"])
    assert policies and all(is_shipped(p.template) for p in policies)
    edited = Template(**{**policies[0].template.__dict__,
                         "rego": policies[0].template.rego + "\n# edited\n"})
    assert not is_shipped(edited)


def test_bundled_packs_ignore_the_environment(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_CHECKER_PACKS", str(tmp_path))
    assert packs_dir() == tmp_path
    assert bundled_packs_dir() != tmp_path


def _deployment() -> Resource:
    body = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "nginx", "securityContext": {"privileged": True}}]}}}}
    return Resource("apps/v1", "Deployment", "team", "web", body, SourceLocation("d.yaml", 1))


def _policies(edit: bool = False) -> list[Policy]:
    policies = pack_policies(load_catalog(), ["pss-baseline"])
    if not edit:
        return policies
    out = []
    for p in policies:
        template = Template(**{**p.template.__dict__, "rego": p.template.rego + "\n# mine\n"})
        out.append(Policy(template, p.constraint, p.rule, p.severity, "repository"))
    return out


def test_shipped_templates_run_on_the_rvm(rvm_runs: RvmRuns) -> None:
    result = Evaluator(_policies()).run([_deployment()], workers=1)
    assert rvm_runs.runs == 1 and rvm_runs.gave_up == 0
    assert any("privileged" in f.message for f in result.findings)


def test_other_templates_run_on_the_interpreter(rvm_runs: RvmRuns) -> None:
    mine = Evaluator(_policies(edit=True)).run([_deployment()], workers=1)
    assert rvm_runs.runs == 0
    shipped = Evaluator(_policies()).run([_deployment()], workers=1)
    assert [f.message for f in mine.findings] == [f.message for f in shipped.findings]


def test_failed_rvm_run_falls_back_to_the_interpreter(rvm_runs: RvmRuns) -> None:
    expected = Evaluator(_policies()).run([_deployment()], workers=1)
    rvm_runs.fail()
    result = Evaluator(_policies()).run([_deployment()], workers=1)
    assert rvm_runs.runs == 2 and rvm_runs.gave_up == 1
    assert result.findings == expected.findings and result.findings


def test_module_the_rvm_cannot_compile_is_left_to_the_interpreter() -> None:
    source = "package t\nimport rego.v1\nr contains e if {\n  some e in input.a[_].b\n}\n"
    engine = RegorusEngine()
    assert engine.executable("{}", [("t.rego", source)], "data.t.r", rego_v1=True) is None
    assert interpret(source, "data.t.r", {"a": [{"b": [1]}]}, rego_v1=True) == [1]
