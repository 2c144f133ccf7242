"""Repository templates run on real OPA by default, and OPA is bounded like regorus.

Each evaluation worker starts its own Go runtime under the worker's limits. The scans run in a
fresh process (``python -m checker``), as in CI: this test process may already have loaded OPA
for other tests, and Go's runtime does not survive a fork.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from checker.policy import opa
from tests.conftest import ROOT

needs_opa = pytest.mark.skipif(not opa.available(), reason="the OPA binding is not installed")

POD = ("apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: default}\n"
       "spec: {containers: [{name: app, image: nginx:1.25}]}\n")


def _template(kind: str, body: str) -> str:
    lines = "\n".join("        " + line for line in body.strip("\n").splitlines())
    return (f"apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\n"
            f"metadata:\n  name: {kind.lower()}\nspec:\n  crd:\n    spec:\n      names:\n"
            f"        kind: {kind}\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n"
            f"      rego: |\n        package {kind.lower()}\n\n{lines}\n---\n"
            f"apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: {kind}\nmetadata:\n"
            f"  name: c\nspec:\n  match:\n    kinds:\n      - apiGroups: [\"\"]\n"
            f"        kinds: [\"Pod\"]\n")


MEMORY = 'violation[{"msg": msg}] {\n  r := numbers.range(1, 1e9)\n  msg := sprintf("%v", [count(r)])\n}\n'
TIME = ('violation[{"msg": "never"}] {\n  r := numbers.range(1, 30000)\n  x := r[_]\n'
        '  y := r[_]\n  x == 0 - y\n}\n')  # 9e8 steps in little memory
NEGATED = ('violation[{"msg": "no owner"}] {\n'
           '  not startswith(input.review.object.metadata.annotations.owner, "team-")\n}\n')


def _scan(tmp_path: Path, templates: dict[str, str], limits: str,
          env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    (tmp_path / "pod.yaml").write_text(POD)
    policies = tmp_path / "policies"
    policies.mkdir()
    for kind, body in templates.items():
        (policies / f"{kind.lower()}.yaml").write_text(_template(kind, body))
    (tmp_path / ".gitops-checker.yaml").write_text(limits)
    proc = subprocess.run(
        [sys.executable, "-m", "checker", "scan", str(tmp_path / "pod.yaml"), "--root",
         str(tmp_path), "--pack", "none", "--policies", str(policies), "--format", "json"],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    return proc.returncode, json.loads(proc.stdout)


def _engines(report: dict[str, Any]) -> str:
    return json.dumps(report)


@needs_opa
def test_repository_templates_run_on_opa_by_default(tmp_path: Path) -> None:
    """A missing field under a negation: OPA (Gatekeeper) reports no violation; with OPA
    switched off, regorus reports one and says where the engines differ."""
    code, report = _scan(tmp_path, {"Owner": NEGATED}, "limits:\n  memoryMiB: 512\n")
    assert code == 0, report
    assert [f["rule"] for f in report["findings"]] == []
    assert "opa v1.20.2" in _engines(report)
    off = tmp_path / "off"
    off.mkdir()
    code, report = _scan(off, {"Owner": NEGATED}, "limits:\n  memoryMiB: 512\n",
                         {opa.SWITCH: "0"})
    assert sorted(f["rule"] for f in report["findings"]) == [
        "Owner/c", "policy.engine-difference"]
    assert "regorus" in _engines(report)


@needs_opa
def test_opa_past_its_memory_or_time_limit_is_an_error_and_the_rest_still_runs(
        tmp_path: Path) -> None:
    code, report = _scan(
        tmp_path, {"Memory": MEMORY, "Slow": TIME, "Owner": NEGATED.replace("not ", "")},
        "limits:\n  evaluationSeconds: 3\n  memoryMiB: 256\n")
    assert code == 2, report
    stopped = {f["message"].split("'")[1]: f["message"] for f in report["findings"]
               if f["rule"] == "policy.evaluation-error"}
    assert set(stopped) == {"memory", "slow"}
    assert "time limit of 3 s" in stopped["slow"]
    # Go's runtime ends past the cap with its fatal-error exit (2), an abort or, now and then,
    # SIGQUIT from its crash handler: each is a stop of that template, never a pass
    assert "256 MiB" in stopped["memory"] or "was killed (SIGQUIT)" in stopped["memory"]
    # the well-behaved template ran on OPA in the same scan: the annotation is missing, so
    # startswith is undefined and OPA (as Gatekeeper) reports nothing for it
    assert not any(f["rule"].startswith("Owner/") for f in report["findings"])
    assert "opa v1.20.2" in _engines(report)
