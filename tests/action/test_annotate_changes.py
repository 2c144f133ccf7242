"""Annotations where the change is: a 500-resource repository, a pull request adds one file.

Before, annotations went most severe first and then by path: with 1,000 errors in the
repository, the pull request's own file got none of GitHub's 10 error annotations. The
repository here is a real git repository checked out as GitHub does for a pull request (the
merge commit, its first parent the base), and the event file names the base and head.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.action.test_entrypoint import Run, run_action

POD = """apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: apps
spec:
  containers:
    - name: c
      image: nginx:latest
      securityContext:
        privileged: true
"""
NEW_FILE = "zz-team/new-pod.yaml"  # sorts after every other file: path order never reached it


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@example.com"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


@pytest.fixture(scope="module")
def pull_request(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, dict[str, str]]:
    root = tmp_path_factory.mktemp("pr")
    ws = root / "workspace"
    (ws / "apps").mkdir(parents=True)
    git(ws, "init", "-q", "-b", "main")
    for f in range(50):  # 500 violating Pods: 1,000 errors and 4,500 warnings
        (ws / "apps" / f"f{f:02d}.yaml").write_text("---\n".join(
            POD.format(name=f"p{f}-{i}") for i in range(10)), encoding="utf-8")
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "base")
    base = git(ws, "rev-parse", "HEAD")
    git(ws, "checkout", "-q", "-b", "topic")
    (ws / NEW_FILE).parent.mkdir()
    (ws / NEW_FILE).write_text(POD.format(name="added"), encoding="utf-8")
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "the pull request")
    head = git(ws, "rev-parse", "HEAD")
    git(ws, "checkout", "-q", "--detach", base)
    git(ws, "merge", "-q", "--no-ff", "-m", "Merge head into base", head)  # refs/pull/N/merge
    event = root / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 9, "base": {"sha": base},
                                                  "head": {"sha": head}}}), encoding="utf-8")
    run = run_action(ws, {"fail-on": "never"}, {
        "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event),
        "GITHUB_SHA": git(ws, "rev-parse", "HEAD")})
    return run, {"base": base, "head": head}


def test_the_pull_requests_file_is_annotated_first(
        pull_request: tuple[Run, dict[str, str]]) -> None:
    run, _ = pull_request
    assert run.code == 0, run.stdout[-2000:]
    total = int(run.outputs["total-count"])
    assert total > 5000
    annotated = [a for a in run.annotations if "file" in a[1]]
    on_new = [a for a in annotated if a[1]["file"] == NEW_FILE]
    # the added Pod's findings (2 errors and 9 warnings) come first, all of them
    assert len(on_new) == 11
    assert annotated[:len(on_new)] == on_new
    assert Counter(a[0] for a in on_new) == {"error": 2, "warning": 9}
    # within GitHub's per-step limits
    kinds = Counter(a[0] for a in run.annotations)
    assert all(n <= 10 for n in kinds.values()) and sum(kinds.values()) <= 50
    assert run.annotations[-1][2].startswith(f"{total - len(annotated)} more findings are not")


def test_the_summary_names_what_did_not_fit_and_links_the_head(
        pull_request: tuple[Run, dict[str, str]]) -> None:
    run, sha = pull_request
    summary = run.summary
    annotated = sum(1 for a in run.annotations if "file" in a[1])
    assert "### Annotations" in summary
    assert (f"{annotated} findings annotated, 11 on the 11 lines this pull request changed "
            f"(against `{sha['base'][:12]}`).") in summary
    assert f"{int(run.outputs['total-count']) - annotated} more did not fit" in summary
    assert "…and " in summary  # more than the table holds: counted
    # links go to the pull request's head commit, not the merge commit
    assert f"/blob/{sha['head']}/apps/f00.yaml#L" in summary
    assert f"/blob/{sha['base']}/" not in summary


def test_a_missing_base_is_said_not_silent(tmp_path: Path) -> None:
    ws = tmp_path / "workspace"
    ws.mkdir()
    (ws / "pod.yaml").write_text(POD.format(name="a"), encoding="utf-8")
    git(ws, "init", "-q", "-b", "main")
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "only")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"base": {"sha": "1" * 40},
                                                  "head": {"sha": "2" * 40}}}))
    run = run_action(ws, {"fail-on": "never", "acceptance-base": "none"}, {
        "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event)})
    assert run.code == 0, run.stdout[-2000:]
    assert "The changed lines could not be read (the base commit 1111111111111111111111111111111111111111 is not in the checkout: check out with fetch-depth: 2" in run.summary
    assert any(a[1].get("file") == "pod.yaml" for a in run.annotations)
