"""The Action's safe defaults: four eyes in pull requests, no drift in pull-request runs."""

from __future__ import annotations

import io
import json
from pathlib import Path

from checker.action import entrypoint as action_entrypoint
from tests.accept.test_four_eyes import OWN, git, pod, put


def _workspace(tmp_path: Path) -> tuple[Path, str]:
    ws = tmp_path / "ws"
    put(ws, "apps/base.yaml", pod("Deployment", "base-app").replace(
        "privileged: true", "privileged: false"))
    git(ws, "init", "-q", "-b", "main")
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "base")
    base = git(ws, "rev-parse", "HEAD")
    put(ws, "apps/sneaky.yaml", pod("Deployment", "sneaky", {OWN: "trust me"}))
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "pull request")
    return ws, base


def _run(ws: Path, extra: dict[str, str]) -> tuple[int, str, dict[str, object]]:
    env = {"GITHUB_WORKSPACE": str(ws), "INPUT_PACKS": "pss-baseline",
           "INPUT_JSON-FILE": "out/report.json", "INPUT_SARIF-FILE": "",
           "INPUT_JUNIT-FILE": "", "INPUT_MARKDOWN-FILE": "", **extra}
    out = io.StringIO()
    code = action_entrypoint.run(env, out)
    report = ws / "out/report.json"
    return code, out.getvalue(), json.loads(report.read_text()) if report.exists() else {}


def test_pull_request_run_does_not_take_the_authors_own_acceptance(tmp_path: Path) -> None:
    """Default inputs, a pull_request event: the new annotation accepts nothing."""
    ws, base = _workspace(tmp_path)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"base": {"sha": base}}}))
    code, log, report = _run(ws, {"GITHUB_EVENT_NAME": "pull_request",
                                  "GITHUB_EVENT_PATH": str(event)})
    assert code == 1, log
    findings = report["findings"]
    assert isinstance(findings, list)
    rules = {f["rule"] for f in findings}
    assert "pss-privileged" in rules and "acceptance.pending-approval" in rules
    # the same commit on a push: the (by then merged, reviewed) annotation counts
    code, log, report = _run(ws, {"GITHUB_EVENT_NAME": "push"})
    assert code == 0, log
    # and acceptance-base none opts out explicitly
    event_env = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event),
                 "INPUT_ACCEPTANCE-BASE": "none"}
    assert _run(ws, event_env)[0] == 0


def test_drift_is_refused_in_a_pull_request_run(tmp_path: Path) -> None:
    ws, _ = _workspace(tmp_path)
    put(ws, "snapshot.json", "{}")
    code, log, _ = _run(ws, {"GITHUB_EVENT_NAME": "pull_request_target", "INPUT_MODE": "drift",
                             "INPUT_SNAPSHOT": "snapshot.json"})
    assert code == 2
    assert "refused in a pull-request run (GITHUB_EVENT_NAME=pull_request_target)" in log
