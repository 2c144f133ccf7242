"""Bounded and loud evaluation: hostile templates (tests/fixtures/hostile) end as findings or
errors that name template, constraint and object; nothing they print reaches the output."""

from __future__ import annotations

from pathlib import Path

import pytest

from checker.load.loader import load_paths
from checker.model import Resource, SourceLocation
from checker.policy.evaluate import RULE_EVAL_ERROR, Evaluator
from checker.policy.packs import repository_policies

HOSTILE = Path(__file__).parent / "fixtures" / "hostile"


def pod(name: str = "web") -> Resource:
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]}}
    return Resource("v1", "Pod", "default", name, body, SourceLocation("pod.yaml", 1))


def hostile(*names: str) -> tuple[list, list[str]]:  # type: ignore[type-arg]
    loaded = load_paths([HOSTILE / f"{n}.yaml" for n in names], HOSTILE)
    assert not loaded.findings
    return repository_policies(loaded.resources)


@pytest.mark.parametrize("batch", [True, False])
def test_print_and_trace_output_never_reaches_stdout_or_stderr(
        batch: bool, capfd: pytest.CaptureFixture[str]) -> None:
    policies, errors = hostile("prints")
    assert errors == []
    evaluation = Evaluator(policies, batch=batch).run([pod("a"), pod("b")], workers=1)
    assert [f.message for f in evaluation.findings] == ["printed", "printed"]
    out, err = capfd.readouterr()
    assert "::" not in out + err, (out, err)


@pytest.mark.parametrize("batch", [True, False])
def test_violation_that_is_not_a_set_is_an_error_on_every_path(batch: bool) -> None:
    policies, errors = hostile("not-a-set")
    assert errors == []
    evaluation = Evaluator(policies, batch=batch).run([pod()], workers=1)
    assert [(f.rule_id, f.resource) for f in evaluation.findings] == [
        (RULE_EVAL_ERROR, "Pod default/web")]
    message = evaluation.findings[0].message
    assert "hostilenotaset" in message and "HostileNotASet/not-a-set" in message
    assert "not a set" in message


def test_http_send_is_refused_when_the_template_loads() -> None:
    policies, errors = hostile("http-send")
    assert policies == []
    assert any("http-send.yaml:2" in e and "calls http.send (line 4" in e
               and "--disable-opa-builtin" in e for e in errors), errors


def test_http_send_in_a_lib_or_a_string_is_told_apart() -> None:
    from checker.policy.limits import refused_calls

    lib = 'package lib.net\nget(u) = r { r := http.send({"url": u, "method": "get"}) }\n'
    text = 'package p\nviolation[{"msg": "http.send(x) is not called here"}] { true }\n'
    assert refused_calls([text, lib], rego_v1=False) == [(1, "http.send", 2)]
    assert refused_calls([text], rego_v1=False) == []


def test_refusal_check_is_linear_on_nested_brackets() -> None:
    """regorus's parser needs exponential time here; the check must not parse with it."""
    from checker.policy.limits import code_only, refused_calls

    deep = "package p\nviolation[{\"msg\": m}] { m := " + "[" * 40 + "1" + "]" * 40 + " }\n"
    assert refused_calls([deep + "x := http . send({})\n"], rego_v1=False) == [
        (0, "http.send", 3)]
    assert code_only('a := "x # y\\" z" # c\nb := `r\nr`') == 'a := "" \nb := \n``'
