"""The Action in a pull request that changes a policy: the impact leads the job summary."""

from __future__ import annotations

import json
from pathlib import Path

from tests.accept.test_four_eyes import git, put
from tests.action.test_entrypoint import run_action
from tests.impact.test_what_if import base_tree, labels


def _pull_request(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    ws = tmp_path / "workspace"
    base_tree(ws)
    git(ws, "init", "-q", "-b", "main")
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "reviewed policies")
    base = git(ws, "rev-parse", "HEAD")
    git(ws, "checkout", "-q", "-b", "pr")
    put(ws, "policies/owner.yaml", labels("owner", ["owner", "team"]))
    git(ws, "commit", "-q", "-am", "tighten the owner constraint")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7, "base": {"sha": base}}}),
                     encoding="utf-8")
    return ws, {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event)}


def test_the_summary_leads_with_the_policy_change_impact(tmp_path: Path) -> None:
    ws, env = _pull_request(tmp_path)
    run = run_action(ws, {"fail-on": "never", "json-file": "out/report.json"}, env)
    assert run.code == 0, run.stdout + run.stderr
    first = run.summary.index("### Policy change impact")
    assert first < run.summary.index("Checked ")
    # web fails the tightened constraint in both clusters, and live in prod (its snapshot)
    assert "3 newly failing" in run.summary
    assert "K8sRequiredLabels/owner changed" in run.summary
    data = json.loads((ws / "out/report.json").read_text(encoding="utf-8"))
    fails = [e for e in data["impact"]["entries"] if e["outcome"] == "fails"]
    assert sorted((e["cluster"], e["against"], e["object"]["name"]) for e in fails) == [
        ("prod", "desired", "web"), ("prod", "live", "web"), ("stage", "desired", "web")]
    # only the base's policies decide: the tightened constraint does not fail web in the check
    gate = {(f["cluster"], f["resource"]) for f in data["findings"]
            if f["rule"].endswith("owner") and f["category"] == "policy"}
    assert gate == {("prod", "Deployment shop/db"), ("stage", "Deployment shop/db")}


def test_policy_impact_false_turns_it_off(tmp_path: Path) -> None:
    ws, env = _pull_request(tmp_path)
    run = run_action(ws, {"fail-on": "never", "policy-impact": "false",
                          "json-file": "out/report.json"}, env)
    assert run.code == 0, run.stdout + run.stderr
    assert "Policy change impact" not in run.summary
    assert "impact" not in json.loads((ws / "out/report.json").read_text(encoding="utf-8"))
