"""The Action on a pull_request event: the delta against the event's base, by default."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from checker.action import entrypoint as action_entrypoint
from tests.accept.test_four_eyes import git, put
from tests.pipeline.test_delta import pod


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """main: web privileged. The pull request adds db, privileged too."""
    w = tmp_path / "ws"
    put(w, "apps/web.yaml", pod("web", privileged=True))
    git(w, "init", "-q", "-b", "main")
    git(w, "add", "-A")
    git(w, "commit", "-q", "-m", "base")
    put(w, "apps/db.yaml", pod("db", privileged=True))
    git(w, "add", "-A")
    git(w, "commit", "-q", "-m", "pull request")
    return w


def event(tmp_path: Path, base: str) -> dict[str, str]:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"pull_request": {"base": {"sha": base}}}))
    return {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(path)}


def run(ws: Path, extra: dict[str, str]) -> tuple[int, str, dict[str, object], str]:
    env = {"GITHUB_WORKSPACE": str(ws), "INPUT_PACKS": "pss-baseline",
           "INPUT_JSON-FILE": "out/report.json", "INPUT_SARIF-FILE": "out/report.sarif",
           "INPUT_JUNIT-FILE": "", "INPUT_MARKDOWN-FILE": "", **extra}
    out = io.StringIO()
    code = action_entrypoint.run(env, out)
    report = ws / "out/report.json"
    sarif = ws / "out/report.sarif"
    return (code, out.getvalue(), json.loads(report.read_text()) if report.exists() else {},
            sarif.read_text() if sarif.exists() else "")


def states(report: dict[str, object]) -> dict[str, str]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return {f["resource"]: f["baseline"] for f in findings if f["category"] == "policy"}


def test_pull_request_event_gets_the_delta_by_default(ws: Path, tmp_path: Path) -> None:
    base = git(ws, "rev-parse", "HEAD~1")
    code, log, report, sarif = run(ws, event(tmp_path, base))
    assert code == 1, log
    assert states(report) == {"Pod apps/db": "new", "Pod apps/web": "unchanged"}
    delta = report["delta"]
    assert isinstance(delta, dict) and delta["base"] == base
    results = json.loads(sarif)["runs"][0]["results"]
    assert sorted(r["baselineState"] for r in results if r["ruleId"] == "pss-privileged") == [
        "new", "unchanged"]
    # gate new: the existing finding is shown but does not fail; the new one does
    assert run(ws, {**event(tmp_path, base), "INPUT_GATE": "new"})[0] == 1
    git(ws, "rm", "-q", "apps/db.yaml")
    git(ws, "commit", "-q", "-m", "no db")
    code, log, report, _ = run(ws, {**event(tmp_path, base), "INPUT_GATE": "new"})
    assert code == 0, log
    assert states(report) == {"Pod apps/web": "unchanged"}


def test_push_event_has_no_delta(ws: Path) -> None:
    code, _log, report, sarif = run(ws, {"GITHUB_EVENT_NAME": "push"})
    assert code == 1
    assert "delta" not in report
    assert "baselineState" not in sarif


def test_base_none_turns_the_delta_off(ws: Path, tmp_path: Path) -> None:
    base = git(ws, "rev-parse", "HEAD~1")
    _code, _log, report, _ = run(ws, {**event(tmp_path, base), "INPUT_BASE": "none"})
    assert "delta" not in report


def test_shallow_checkout_names_the_fetch_depth(ws: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{ws}", str(clone))
    base = git(ws, "rev-parse", "HEAD~1")
    code, log, _report, _ = run(clone, event(tmp_path, base))
    assert code == 2
    assert "fetch-depth: 0" in log and "shallow" in log


def test_cache_dir_inside_the_workspace_is_refused(ws: Path, tmp_path: Path) -> None:
    base = git(ws, "rev-parse", "HEAD~1")
    code, log, _report, _ = run(ws, {**event(tmp_path, base), "INPUT_CACHE-DIR": ".cache"})
    assert code == 2
    assert "input cache-dir" in log and "inside the workspace" in log


def test_cache_dir_is_filled_and_reused(ws: Path, tmp_path: Path) -> None:
    base = git(ws, "rev-parse", "HEAD~1")
    cache = tmp_path / "cache"
    env = {**event(tmp_path, base), "INPUT_CACHE-DIR": str(cache)}
    first = run(ws, env)
    entries = list(cache.glob("base-*.json"))
    assert len(entries) == 1
    second = run(ws, env)
    assert first[2] == second[2]  # the same report from the cached base
    assert list(cache.glob("base-*.json")) == entries
    # the entry is what the second run read: emptied, the base had nothing, all is new
    data = json.loads(entries[0].read_text())
    data["findings"] = []
    entries[0].write_text(json.dumps(data))
    assert states(run(ws, env)[2]) == {"Pod apps/db": "new", "Pod apps/web": "new"}
