"""Four eyes: an acceptance the change under review introduces does not accept anything."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checker.cli import cli


def pod(kind: str, name: str, annotations: dict[str, str] | None = None) -> str:
    notes = "".join(f"\n    {k}: \"{v}\"" for k, v in (annotations or {}).items())
    meta = f"  name: {name}\n  namespace: agents" + (f"\n  annotations:{notes}" if notes else "")
    return (f"apiVersion: apps/v1\nkind: {kind}\nmetadata:\n{meta}\nspec:\n"
            f"  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata:\n"
            f"      labels: {{app: {name}}}\n    spec:\n      containers:\n"
            f"        - name: c\n          image: registry.example.com/{name}:1.0\n"
            f"          securityContext: {{privileged: true}}\n")


ST = "securitytower.io/policy.exclusion.gcpssprivileged"
OWN = "gitops-checker.io/accept.pss-privileged"


def entry(ident: str, name: str, expires: str = "2027-06-30") -> str:
    return (f"  - id: {ident}\n    policy: pss-privileged\n    resources:\n"
            f"      - {{namespace: agents, name: {name}}}\n"
            f"    justification: Needs the host to collect node metrics.\n"
            f"    owner: team-platform\n    approver: security\n    expires: \"{expires}\"\n")


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "A",
           "GIT_COMMITTER_EMAIL": "a@x"}
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True, env=env).stdout.strip()


def put(repo: Path, rel: str, text: str) -> None:
    path = repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main: two reviewed acceptances. The pull request adds three of its own."""
    r = tmp_path / "repo"
    put(r, "apps/agent.yaml", pod("DaemonSet", "agent", {ST: "node agent, reviewed"}))
    put(r, "apps/exporter.yaml", pod("DaemonSet", "exporter"))
    put(r, "apps/collector.yaml", pod("DaemonSet", "collector"))
    put(r, ".gitops-checker/acceptances/platform.yaml",
        "acceptances:\n" + entry("RA-1", "exporter") + entry("RA-3", "collector"))
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "reviewed baseline")
    git(r, "checkout", "-q", "-b", "pr")
    put(r, "apps/sneaky.yaml", pod("Deployment", "sneaky", {OWN: "trust me"}))
    put(r, "apps/sneaky2.yaml", pod("Deployment", "sneaky2"))
    put(r, ".gitops-checker/acceptances/platform.yaml",
        "acceptances:\n" + entry("RA-1", "exporter") + entry("RA-2", "sneaky2")
        + entry("RA-3", "collector", expires="2099-12-31"))  # RA-3 renewed by the author
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "add workloads")
    return r


def scan(repo: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["scan", str(repo / "apps"), "--root", str(repo),
                                      "--pack", "pss-baseline", "--today", "2026-12-01",
                                      "--format", "json", *extra])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def privileged(data: dict[str, Any], key: str) -> set[str]:
    return {f["resource"].split("/")[-1] for f in data[key] if f["rule"] == "pss-privileged"}


def test_self_approved_acceptances_do_not_make_the_check_green(repo: Path) -> None:
    """With the base ref, only what main already had accepts; the rest is pending."""
    unguarded, before = scan(repo)  # the attack without four eyes: everything waived
    assert unguarded == 0
    assert privileged(before, "accepted") == {"agent", "exporter", "collector", "sneaky",
                                              "sneaky2"}
    code, data = scan(repo, "--accept-base", "main")
    assert code == 1
    # Security Tower's reviewed annotation and the unchanged file entry still accept
    assert privileged(data, "accepted") == {"agent", "exporter"}
    assert privileged(data, "findings") == {"sneaky", "sneaky2", "collector"}
    pending = sorted((f["details"]["acceptance"], f["location"]["path"])
                     for f in data["findings"] if f["rule"] == "acceptance.pending-approval")
    assert pending == [
        ("RA-2", ".gitops-checker/acceptances/platform.yaml"),
        ("RA-3", ".gitops-checker/acceptances/platform.yaml"),
        (OWN, "apps/sneaky.yaml"),
    ]
    message = next(f["message"] for f in data["findings"]
                   if f["rule"] == "acceptance.pending-approval")
    assert "not on main as it is here" in message and "accepts nothing yet" in message


def test_once_merged_the_acceptances_count(repo: Path) -> None:
    """After review and merge the same content is on the base: the check is green."""
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "pr")
    code, data = scan(repo, "--accept-base", "main")
    assert code == 0
    assert not [f for f in data["findings"] if f["rule"] == "acceptance.pending-approval"]


def test_unknown_base_is_an_error(repo: Path) -> None:
    result = CliRunner().invoke(cli, ["scan", str(repo / "apps"), "--root", str(repo),
                                      "--accept-base", "nowhere"])
    assert result.exit_code == 2
    assert "acceptance base nowhere: no such commit" in result.stderr
