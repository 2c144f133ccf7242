"""scan --base: the base and the head evaluated in full, findings new / unchanged / fixed.

Real git repositories with two commits; the base side is read from git objects, never from
the working tree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checker.cli import cli
from tests.accept.test_four_eyes import git, put


def pod(name: str, *, privileged: bool = False, host_network: bool = False,
        lead: str = "") -> str:
    spec = "  hostNetwork: true\n" if host_network else ""
    security = ("      securityContext:\n        privileged: true\n" if privileged else "")
    return (f"{lead}apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: apps\n"
            f"spec:\n{spec}  containers:\n    - name: c\n"
            f"      image: registry.example.com/{name}:1.0\n{security}")


CONFIG = ("clusters:\n  - name: prod\n    paths: [prod]\n    packs: [pss-baseline]\n"
          "  - name: stage\n    paths: [stage]\n    packs: [pss-baseline]\n")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main: web privileged (prod), api on the host network (prod), stage's web privileged.
    The change: web moves down 3 lines (still privileged), api is fixed, db is new and
    privileged; stage is untouched."""
    r = tmp_path / "repo"
    put(r, ".gitops-checker.yaml", CONFIG)
    put(r, "prod/web.yaml", pod("web", privileged=True))
    put(r, "prod/api.yaml", pod("api", host_network=True))
    put(r, "stage/web.yaml", pod("web", privileged=True))
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "base")
    git(r, "checkout", "-q", "-b", "change")
    put(r, "prod/web.yaml", pod("web", privileged=True, lead="# moved\n# down\n# three\n"))
    put(r, "prod/api.yaml", pod("api"))
    put(r, "prod/db.yaml", pod("db", privileged=True))
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "change")
    return r


def scan(repo: Path, *extra: str, fmt: str = "json") -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["scan", "--root", str(repo), "--format", fmt,
                                      "--today", "2026-01-01", *extra])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, result.stdout


def policy(findings: list[dict[str, Any]]) -> list[tuple[str, str, str, int]]:
    return sorted((f.get("cluster", ""), f["resource"], f.get("baseline", ""),
                   f["location"]["line"] if "location" in f else f["line"])
                  for f in findings if f["category"] == "policy")


def test_delta_marks_new_unchanged_and_fixed(repo: Path) -> None:
    code, out = scan(repo, "--base", "main")
    data = json.loads(out)
    base = git(repo, "rev-parse", "main")
    assert data["delta"]["base"] == base
    rows = policy(data["findings"])
    states = {(c, r): s for c, r, s, _line in rows}
    assert states == {("prod", "Pod apps/web"): "unchanged", ("prod", "Pod apps/db"): "new",
                      ("stage", "Pod apps/web"): "unchanged"}
    # the moved finding is unchanged, and reported at its new line
    (line,) = [ln for c, r, _s, ln in rows if (c, r) == ("prod", "Pod apps/web")]
    assert line > 3
    fixed = [(f["cluster"], f["resource"], f["baseline"]) for f in data["delta"]["fixed"]]
    assert fixed == [("prod", "Pod apps/api", "absent")]
    assert data["delta"]["counts"] == {"new": 1, "unchanged": 2, "fixed": 1}
    # the report leads with the new finding
    assert data["findings"][0]["baseline"] == "new"
    assert code == 1


def test_gate_new_fails_only_on_new_findings(repo: Path) -> None:
    assert scan(repo, "--base", "main", "--gate", "new")[0] == 1
    git(repo, "rm", "-q", "prod/db.yaml")
    git(repo, "commit", "-q", "-m", "no db")
    code, out = scan(repo, "--base", "main", "--gate", "new")
    data = json.loads(out)
    assert code == 0  # the existing privileged pods are counted and shown, not gated
    assert data["delta"]["counts"]["unchanged"] == 2
    assert scan(repo, "--base", "main")[0] == 1  # --gate all still fails on them
    # fail-on still applies to the new ones: a new warning does not fail at --fail-on error
    put(repo, "prod/db.yaml", pod("db", host_network=True))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "db on the host network")
    assert scan(repo, "--base", "main", "--gate", "new", "--fail-on", "never")[0] == 0
    assert scan(repo, "--base", "main", "--gate", "new")[0] == 1


def test_base_is_read_from_git_objects_not_the_working_tree(repo: Path) -> None:
    # an uncommitted edit of the checkout (the head) must not leak into the base side
    put(repo, "prod/api.yaml", pod("api", host_network=True, lead="# edited\n"))
    _code, out = scan(repo, "--base", "main")
    data = json.loads(out)
    states = {(f["cluster"], f["resource"]): f["baseline"] for f in data["findings"]
              if f["category"] == "policy"}
    assert states[("prod", "Pod apps/api")] == "unchanged"
    assert data["delta"]["fixed"] == []


def test_missing_base_commit_names_the_checkout_depth(repo: Path) -> None:
    result = CliRunner().invoke(cli, ["scan", "--root", str(repo), "--base", "0" * 40])
    assert result.exit_code == 2
    assert "fetch-depth: 0" in result.output and "0" * 40 in result.output


def test_accept_base_must_be_the_base(repo: Path) -> None:
    git(repo, "branch", "other", "change")
    result = CliRunner().invoke(cli, ["scan", "--root", str(repo), "--base", "main",
                                      "--accept-base", "other"])
    assert result.exit_code == 2
    assert "different commits" in result.output
    # the same commit under another name is fine
    base = git(repo, "rev-parse", "main")
    assert scan(repo, "--base", "main", "--accept-base", base)[0] == 1


def test_config_change_of_the_pull_request_does_not_change_the_delta(repo: Path) -> None:
    """The head runs with the base's config: switching its packs off does not fix anything."""
    put(repo, ".gitops-checker.yaml", CONFIG.replace("packs: [pss-baseline]", "packs: [none]"))
    git(repo, "commit", "-q", "-am", "switch the packs off")
    _code, out = scan(repo, "--base", "main")
    data = json.loads(out)
    assert [f["resource"] for f in data["delta"]["fixed"]] == ["Pod apps/api"]
    assert any(f["rule"] == "input.untrusted-config" and f["baseline"] == "new"
               for f in data["findings"])


def test_against_itself_everything_is_unchanged(repo: Path) -> None:
    """Base == head: no new, no fixed, even for messages naming absolute paths (a cluster
    path that does not exist: the base side's text names the head's root, not a temporary
    folder)."""
    put(repo, ".gitops-checker.yaml", CONFIG + "  - name: gone\n    paths: [gone]\n")
    git(repo, "commit", "-q", "-am", "a cluster with a missing path")
    _code, out = scan(repo, "--base", "HEAD")
    data = json.loads(out)
    assert data["delta"]["counts"]["new"] == 0 and data["delta"]["fixed"] == []
    assert any(f["rule"] == "input.missing-path" for f in data["findings"])
    assert "gitops-checker-base-" not in out


@pytest.mark.parametrize("fmt", ["text", "markdown", "junit"])
def test_every_format_leads_with_new_findings(repo: Path, fmt: str) -> None:
    _code, out = scan(repo, "--base", "main", fmt=fmt)
    assert out.index("Pod apps/db") < out.index("Pod apps/web")
    assert "Pod apps/api" in out  # the fixed finding is listed


def test_head_settings_evaluate_the_changes_own_config(repo: Path) -> None:
    """For the policy-change what-if: the same head, with the base's settings or its own."""
    from dataclasses import replace

    from checker.errors import ConfigError
    from checker.model import Finding
    from checker.options import ScanOptions
    from checker.pipeline import run

    put(repo, ".gitops-checker.yaml", CONFIG.replace("packs: [pss-baseline]\n  - name: stage",
                                                     "packs: [none]\n  - name: stage"))
    git(repo, "commit", "-q", "-am", "prod: no packs")
    options = ScanOptions(paths=(repo,), root=repo, accept_base="main")

    def prod(findings: tuple[Finding, ...]) -> set[str]:
        return {f.resource for f in findings if f.category == "policy" and f.cluster == "prod"}

    trusted = run(options)
    assert prod(trusted.findings) == {"Pod apps/web", "Pod apps/db"}
    own = run(replace(options, settings="head"))
    assert prod(own.findings) == set()  # the change's own config: prod has no packs
    assert not any(f.rule_id == "input.untrusted-config" for f in own.findings)
    with pytest.raises(ConfigError, match="settings"):
        run(replace(options, settings="both"))


def test_a_base_that_cannot_be_evaluated_is_an_error(tmp_path: Path) -> None:
    """The base's config is broken: exit 2 naming the base, never a pass with all 'new'."""
    r = tmp_path / "broken"
    put(r, ".gitops-checker.yaml", "clusters: [\n")
    put(r, "prod/web.yaml", pod("web"))
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "base")
    git(r, "checkout", "-q", "-b", "change")
    put(r, ".gitops-checker.yaml", CONFIG)
    git(r, "commit", "-q", "-am", "fix the config")
    result = CliRunner().invoke(cli, ["scan", "--root", str(r), "--base", "main"])
    assert result.exit_code == 2
    assert "the base main (" in result.output and "cannot be evaluated" in result.output
    assert str(tmp_path) not in result.output.replace(str(r), "")
