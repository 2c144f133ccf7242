"""Bounded and loud evaluation: hostile templates (tests/fixtures/hostile) end as findings or
errors that name template, constraint and object; nothing they print reaches the output."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.load.loader import load_paths
from checker.model import Resource, SourceLocation
from checker.parallel import (
    DEFAULT_LIMITS,
    Failure,
    Guard,
    Limits,
    WorkerError,
    can_fork,
    fork_map,
    run_guarded,
)
from checker.policy.evaluate import RULE_EVAL_ERROR, Evaluator
from checker.policy.packs import repository_policies
from tests.conftest import FIXTURES

HOSTILE = FIXTURES / "hostile"
needs_fork = pytest.mark.skipif(not can_fork(), reason="bounded workers need fork")


@pytest.fixture(autouse=True)
def _on_regorus(monkeypatch: pytest.MonkeyPatch) -> None:
    """These hostile templates run on regorus: this process may have loaded OPA for other
    tests, and Go's runtime does not survive a fork (tests/test_bounded_opa.py runs them on
    OPA in fresh processes, as the CLI does)."""
    from checker.policy import opa

    monkeypatch.setenv(opa.SWITCH, "0")


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


def test_a_dns_lookup_is_refused_when_the_template_loads() -> None:
    """net.lookup_ip_addr sends a DNS query for a name the policy builds: repository content
    (and a pull request's policies, which the what-if runs) must not reach the network."""
    policies, errors = hostile("dns-lookup")
    assert policies == []
    assert any("dns-lookup.yaml:3" in e and "calls net.lookup_ip_addr (line 4" in e
               and "reaches the network" in e for e in errors), errors


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


# --- per-evaluation limits: each hostile template ends as a finding and an error ----------

FAST = Limits(seconds=1.0, memory_mb=512)
HOSTILE_CASES = {
    "recursion": ("hostilerecursion", "HostileRecursion/recursion", "crashed"),
    "huge-range": ("hostilerange", "HostileRange/huge-range", ""),  # memory or time
    "comprehension": ("hostilecomprehension", "HostileComprehension/comprehension",
                      "time limit of 1 s"),
}


@needs_fork
@pytest.mark.parametrize("name", sorted(HOSTILE_CASES))
@pytest.mark.parametrize("batch", [True, False])
def test_runaway_evaluation_is_an_error_naming_template_constraint_and_object(
        name: str, batch: bool) -> None:
    template, constraint, why = HOSTILE_CASES[name]
    policies, errors = hostile(name, "prints")  # a well-behaved template alongside
    assert errors == []
    started = time.monotonic()
    evaluation = Evaluator(policies, batch=batch, limits=FAST).run(
        [pod("web"), pod("api")], workers=1)
    assert time.monotonic() - started < 60  # a guard against hanging, not a speed target
    errors_found = [f for f in evaluation.findings if f.rule_id == RULE_EVAL_ERROR]
    assert [f.resource for f in errors_found] == ["Pod default/web", "Pod default/api"]
    first, second = (f.message for f in errors_found)
    assert template in first and constraint in first and "Pod default/web" in first
    assert why in first
    assert "not evaluated" in second and "on Pod default/web" in second
    # the other template still ran on both objects
    assert [f.message for f in evaluation.findings if f.rule_id != RULE_EVAL_ERROR] == [
        "printed", "printed"]
    assert len(evaluation.errors) == 1
    assert template in evaluation.errors[0] and "Pod default/web" in evaluation.errors[0]


@needs_fork
def test_memory_limit_stops_a_huge_range() -> None:
    policies, _ = hostile("huge-range")
    evaluation = Evaluator(policies, limits=Limits(seconds=120, memory_mb=256)).run(
        [pod()], workers=1)
    assert [f.rule_id for f in evaluation.findings] == [RULE_EVAL_ERROR]
    assert "memory over the limit of 256 MiB" in evaluation.findings[0].message


@needs_fork
def test_runaway_evaluation_in_parallel_shares_is_isolated() -> None:
    policies, _ = hostile("recursion", "prints")
    pods = [pod(f"p{i}") for i in range(6)]
    evaluation = Evaluator(policies, limits=FAST).run(pods, workers=2)
    stopped = [f.resource for f in evaluation.findings if f.rule_id == RULE_EVAL_ERROR]
    assert stopped == [p.display for p in pods]  # in input order, as a serial run
    assert sum(f.rule_id == RULE_EVAL_ERROR for f in evaluation.findings) == 6
    assert sum(f.message == "printed" for f in evaluation.findings) == 6
    assert len(evaluation.errors) == 1


@needs_fork
def test_scan_with_a_runaway_template_exits_2(tmp_path: Path, runner: CliRunner) -> None:
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: default}\n"
        "spec: {containers: [{name: app, image: nginx:1.25}]}\n", encoding="utf-8")
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "recursion.yaml").write_text((HOSTILE / "recursion.yaml").read_text())
    (tmp_path / ".gitops-checker.yaml").write_text("limits:\n  evaluationSeconds: 2\n"
                                                   "  memoryMiB: 512\n")
    result = runner.invoke(cli, ["scan", str(tmp_path), "--root", str(tmp_path),
                                 "--pack", "none", "--policies", str(policies)])
    assert result.exit_code == 2, result.output
    assert "policy.evaluation-error" in result.output
    assert "HostileRecursion/recursion" in result.output and "Pod default/web" in result.output


def test_limits_come_from_the_config_and_the_command_line(tmp_path: Path) -> None:
    from checker.config import load_config
    from checker.errors import ConfigError
    from checker.options import ScanOptions
    from checker.pipeline import evaluation_limits

    (tmp_path / ".gitops-checker.yaml").write_text("limits:\n  evaluationSeconds: 2.5\n"
                                                   "  memoryMiB: 700\n")
    config = load_config(tmp_path, None, (tmp_path,))
    assert config.limits == Limits(seconds=2.5, memory_mb=700)
    options = ScanOptions(paths=(tmp_path,), root=tmp_path, eval_seconds=9.0)
    assert evaluation_limits(options, config) == Limits(seconds=9.0, memory_mb=700)
    assert load_config(tmp_path / "none", None, ()).limits == DEFAULT_LIMITS
    (tmp_path / ".gitops-checker.yaml").write_text("limits:\n  evaluationSeconds: 0\n")
    with pytest.raises(ConfigError, match="limits"):
        load_config(tmp_path, None, (tmp_path,))


# --- every wait on a worker has a deadline ------------------------------------------------

def _die(n: int) -> int:
    if n == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return n


def _sleep_in_step(n: int, guard: Guard) -> int:
    guard.begin(n, 7)
    if n == 1:
        time.sleep(30)
    guard.end()
    return n


def _sleep_outside_steps(n: int, guard: Guard) -> int:
    del guard
    time.sleep(30)
    return n


@needs_fork
def test_fork_map_fails_within_seconds_when_a_worker_is_killed() -> None:
    started = time.monotonic()
    with pytest.raises(WorkerError, match="SIGKILL"):
        fork_map(_die, [1, 2, 3])
    assert time.monotonic() - started < 20


@needs_fork
def test_a_step_past_its_time_limit_is_killed_and_named() -> None:
    started = time.monotonic()
    out = run_guarded(_sleep_in_step, [0, 1, 2], Limits(seconds=0.5))
    assert out[0] == 0 and out[2] == 2
    assert out[1] == Failure((1, 7), "ran past the time limit of 0.5 s")
    assert time.monotonic() - started < 20


@needs_fork
def test_a_worker_past_the_overall_deadline_is_an_error() -> None:
    started = time.monotonic()
    with pytest.raises(WorkerError, match=r"deadline of 0\.5 s"):
        run_guarded(_sleep_outside_steps, [0, 1], Limits(wait_seconds=0.5))
    assert time.monotonic() - started < 20


@needs_fork
def test_an_exception_in_a_worker_is_raised_here() -> None:
    def boom(n: int, guard: Guard) -> int:
        raise ValueError(f"bad {n}")

    with pytest.raises(ValueError, match="bad 0"):
        run_guarded(boom, [0])


@needs_fork
def test_loader_fails_when_a_parsing_worker_dies(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from checker.load import loader

    for i in range(8):
        (tmp_path / f"f{i}.yaml").write_text(f"apiVersion: v1\nkind: ConfigMap\n"
                                             f"metadata: {{name: c{i}}}\n")
    here = os.getpid()
    real = loader.read_documents

    def dying(*args: Any) -> Any:
        if os.getpid() != here:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args)

    monkeypatch.setattr(loader, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(loader, "available_cpus", lambda: 2)
    monkeypatch.setattr(loader, "read_documents", dying)
    with pytest.raises(WorkerError, match="SIGKILL"):
        load_paths([tmp_path], tmp_path)
