"""Network hosts a pull request adds to its own config are not contacted (four eyes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from checker import accept
from checker.cli import cli
from checker.config import load_config
from checker.trust import trusted_config
from tests.accept.test_four_eyes import git, put

POD = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: apps\nspec:\n"
       "  containers:\n    - name: c\n      image: registry.example.com/web:1.0\n")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main allows one chart host; the pull request adds a chart host and a Kustomize host."""
    r = tmp_path / "repo"
    put(r, "apps/pod.yaml", POD)
    put(r, ".gitops-checker.yaml", "helm:\n  allowedHosts: [charts.example.com]\n")
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "base")
    put(r, ".gitops-checker.yaml",
        "helm:\n  allowedHosts: [charts.example.com, evil.example.net]\n"
        "kustomize:\n  remoteHosts: [github.com]\n")
    git(r, "checkout", "-q", "-b", "change")
    git(r, "commit", "-q", "-am", "allow more hosts")
    return r


def test_hosts_the_change_adds_are_dropped_with_a_finding(repo: Path) -> None:
    config = load_config(repo)
    assert config.helm.allowed_hosts == ("charts.example.com", "evil.example.net")
    trusted, findings = trusted_config(config, accept.BaseApproval(repo, "main"), repo)
    assert trusted.helm.allowed_hosts == ("charts.example.com",)
    assert trusted.remote_hosts == ()
    assert sorted(f.message.split(" entry ")[1].split(" ")[0] for f in findings) == [
        "'evil.example.net'", "'github.com'"]
    assert {f.rule_id for f in findings} == {"input.untrusted-host"}
    assert all(f.location.path == ".gitops-checker.yaml" for f in findings)


def test_a_base_without_the_config_trusts_no_host(repo: Path) -> None:
    git(repo, "checkout", "-q", "--orphan", "empty")
    git(repo, "rm", "-q", "-rf", "--cached", ".")
    git(repo, "commit", "-q", "--allow-empty", "-m", "empty")
    git(repo, "checkout", "-q", "-f", "change")
    trusted, findings = trusted_config(load_config(repo), accept.BaseApproval(repo, "empty"),
                                       repo)
    assert trusted.helm.allowed_hosts == () and len(findings) == 3


def test_scan_with_a_base_reports_them_and_without_one_does_not(repo: Path) -> None:
    args = ["scan", str(repo / "apps"), "--root", str(repo), "--fail-on", "never",
            "--format", "json"]
    with_base = CliRunner().invoke(cli, [*args, "--accept-base", "main"])
    without = CliRunner().invoke(cli, args)
    rules = [[f["rule"] for f in json.loads(r.stdout)["findings"]] for r in (with_base, without)]
    assert rules[0].count("input.untrusted-host") == 2, with_base.output
    assert "input.untrusted-host" not in rules[1]
