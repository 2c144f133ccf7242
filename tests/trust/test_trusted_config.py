"""A pull request cannot switch off its own check through the config it changes.

With a base ref, the policy selection, limits, not-checked severity, acceptance settings and
guardrails come from the config on the base ref; the change's edits to them are findings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.model import Severity
from tests.accept.test_four_eyes import git, put

PRIVILEGED = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: apps\nspec:\n"
              "  containers:\n    - name: c\n      image: registry.example.com/web:1.0\n"
              "      securityContext:\n        privileged: true\n")
BASE = ("clusters:\n  - name: prod\n    paths: [prod]\n    packs: [pss-baseline]\n"
        "  - name: stage\n    paths: [stage]\n    packs: [pss-baseline]\n"
        "coverage:\n  notChecked: error\nacceptances:\n  mode: files-only\n")


def _repo(tmp_path: Path, change: str | None) -> Path:
    """main holds BASE; the branch ``change`` replaces it with ``change`` (None: deletes it)."""
    r = tmp_path / "repo"
    put(r, "prod/pod.yaml", PRIVILEGED)
    put(r, "stage/pod.yaml", PRIVILEGED)
    put(r, ".gitops-checker.yaml", BASE)
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "base")
    git(r, "checkout", "-q", "-b", "change")
    if change is None:
        git(r, "rm", "-q", ".gitops-checker.yaml")
    else:
        put(r, ".gitops-checker.yaml", change)
    git(r, "commit", "-q", "-am", "change the config", "--allow-empty")
    return r


def _scan(repo: Path, *extra: str) -> tuple[int, list[dict[str, Any]]]:
    result = CliRunner().invoke(cli, ["scan", "--root", str(repo), "--format", "json",
                                      *extra])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)["findings"]


def _privileged(findings: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in findings:
        if f["category"] == "policy" and "privileged" in f["rule"]:
            cluster = f.get("cluster") or ""
            counts[cluster] = counts.get(cluster, 0) + 1
    return counts


def _untrusted(findings: list[dict[str, Any]]) -> list[str]:
    return sorted(f["message"] for f in findings if f["rule"] == "input.untrusted-config")


def test_switching_packs_off_does_not_switch_off_the_check(tmp_path: Path) -> None:
    repo = _repo(tmp_path, BASE.replace("packs: [pss-baseline]\n  - name: stage",
                                        "packs: [none]\n  - name: stage"))
    code, with_base = _scan(repo, "--accept-base", "main")
    assert code == 1
    assert _privileged(with_base) == {"prod": 1, "stage": 1}
    messages = _untrusted(with_base)
    assert len(messages) == 1 and "cluster prod" in messages[0] and "packs" in messages[0]
    assert "'none'" in messages[0] and "'pss-baseline'" in messages[0]
    # Without a base ref (a push to the default branch) the checked-out config is the truth.
    _code, without = _scan(repo, "--fail-on", "never")
    assert "prod" not in _privileged(without)
    assert not _untrusted(without)


def test_lowering_a_severity_through_an_override_is_not_applied(tmp_path: Path) -> None:
    change = BASE.replace("packs: [pss-baseline]\n  - name: stage",
                          "packs: [pss-baseline]\n    overrides:\n"
                          "      pss-baseline-privileged:\n        severity: note\n"
                          "  - name: stage")
    repo = _repo(tmp_path, change)
    _code, findings = _scan(repo, "--accept-base", "main")
    severities = {f["severity"] for f in findings
                  if f["category"] == "policy" and "privileged" in f["rule"]}
    assert severities == {"error"}
    assert any("overrides" in m for m in _untrusted(findings))


def test_global_settings_come_from_the_base(tmp_path: Path) -> None:
    change = (BASE.replace("notChecked: error", "notChecked: note")
              .replace("mode: files-only", "mode: all\n  paths: [stage]")
              + "limits:\n  evaluationSeconds: 1\n")
    repo = _repo(tmp_path, change)
    _code, findings = _scan(repo, "--accept-base", "main")
    keys = {m.split(":")[0] for m in _untrusted(findings)}
    assert keys == {"coverage.notChecked", "limits", "acceptances"}


def test_the_merged_config_keeps_base_settings(tmp_path: Path) -> None:
    from checker.accept import BaseApproval
    from checker.config import load_config
    from checker.trust import trusted_config

    repo = _repo(tmp_path, BASE.replace("notChecked: error", "notChecked: note"))
    head = load_config(repo)
    assert head.not_checked is Severity.NOTE
    config, findings = trusted_config(head, BaseApproval(repo, "main"), repo)
    assert config.not_checked is Severity.ERROR
    assert [f.location.path for f in findings] == [".gitops-checker.yaml"]


def test_a_removed_cluster_is_still_checked(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "clusters:\n  - name: stage\n    paths: [stage]\n"
                           "    packs: [pss-baseline]\ncoverage:\n  notChecked: error\n"
                           "acceptances:\n  mode: files-only\n")
    code, findings = _scan(repo, "--accept-base", "main")
    assert code == 1
    assert _privileged(findings) == {"prod": 1, "stage": 1}
    assert any("cluster prod is removed" in m for m in _untrusted(findings))


def test_deleting_the_config_keeps_the_base_config(tmp_path: Path) -> None:
    repo = _repo(tmp_path, None)
    code, findings = _scan(repo, "--accept-base", "main")
    assert code == 1
    assert _privileged(findings) == {"prod": 1, "stage": 1}


def test_moved_paths_are_checked_with_a_note(tmp_path: Path) -> None:
    repo = _repo(tmp_path, BASE.replace("paths: [prod]", "paths: [stage]"))
    _code, findings = _scan(repo, "--accept-base", "main")
    notes = [f for f in findings if f["rule"] == "input.untrusted-config"]
    assert len(notes) == 1 and notes[0]["severity"] == "note"
    assert "from ['prod']" in notes[0]["message"] and "to ['stage']" in notes[0]["message"]


def test_an_unchanged_config_gives_no_finding(tmp_path: Path) -> None:
    repo = _repo(tmp_path, BASE)
    _code, findings = _scan(repo, "--accept-base", "main")
    assert not _untrusted(findings)
    assert _privileged(findings) == {"prod": 1, "stage": 1}


@pytest.mark.parametrize("broken", ["clusters: [", "clusters:\n  - name: 3\n"])
def test_a_base_config_that_cannot_be_read_fails_the_run(tmp_path: Path, broken: str) -> None:
    r = tmp_path / "repo"
    put(r, "prod/pod.yaml", PRIVILEGED)
    put(r, ".gitops-checker.yaml", broken)
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "broken base")
    git(r, "checkout", "-q", "-b", "change")
    put(r, ".gitops-checker.yaml", "clusters:\n  - name: prod\n    paths: [prod]\n")
    git(r, "commit", "-q", "-am", "fix")
    code, findings = _scan(r, "--accept-base", "main", "--fail-on", "never")
    errors = [f for f in findings if f["rule"] == "input.untrusted-config"]
    assert code == 1 and len(errors) == 1 and errors[0]["severity"] == "error"


NEED_TEAM = """apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: needteam
spec:
  crd:
    spec:
      names:
        kind: NeedTeam
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package needteam

        violation[{"msg": "label team is required"}] {
          not input.review.object.metadata.labels.team
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: NeedTeam
metadata:
  name: team
spec:
  match:
    kinds:
      - apiGroups: [""]
        kinds: ["Pod"]
"""
ST = ("apiVersion: securitytower.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: prod\n"
      "spec:\n  policies:\n    path: {path}\n")


def test_security_tower_policy_folders_come_from_the_base(tmp_path: Path) -> None:
    """A Security Tower Cluster file is config too: pointing it at a folder without the
    policy does not drop the policy in the pull request's own check."""
    r = tmp_path / "repo"
    put(r, "prod/pod.yaml", PRIVILEGED)
    put(r, "strict/team.yaml", NEED_TEAM)
    put(r, "lax/README.md", "nothing here\n")
    put(r, ".securitytower/prod.yaml", ST.format(path="strict"))
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "base")
    git(r, "checkout", "-q", "-b", "change")
    put(r, ".securitytower/prod.yaml", ST.format(path="lax"))
    git(r, "commit", "-q", "-am", "point prod at an empty folder")
    _code, findings = _scan(r, str(r / "prod"), "--accept-base", "main", "--fail-on", "never")
    assert [f["rule"] for f in findings if f["category"] == "policy"] == ["NeedTeam/team"]
    (changed,) = _untrusted(findings)
    assert "cluster prod" in changed and "'lax'" in changed and "'strict'" in changed
    _code, without = _scan(r, str(r / "prod"), "--fail-on", "never")
    assert not [f for f in without if f["category"] == "policy"]


def test_a_policy_the_change_edits_away_still_runs_as_on_the_base(tmp_path: Path) -> None:
    """The Rego in a policies folder is part of the pull request too: editing the violation
    away does not make the change's own check green."""
    r = tmp_path / "repo"
    put(r, "prod/pod.yaml", PRIVILEGED)
    put(r, "policies/team.yaml", NEED_TEAM)
    put(r, ".gitops-checker.yaml", "clusters:\n  - name: prod\n    paths: [prod]\n"
                                   "    packs: [none]\n    policies: [policies]\n")
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "base")
    git(r, "checkout", "-q", "-b", "change")
    put(r, "policies/team.yaml", NEED_TEAM.replace(
        "not input.review.object.metadata.labels.team", "false"))
    git(r, "commit", "-q", "-am", "relax the policy")
    _code, findings = _scan(r, "--accept-base", "main", "--fail-on", "never")
    policy = [f for f in findings if f["category"] == "policy"]
    assert [f["rule"] for f in policy] == ["NeedTeam/team"]
    assert policy[0]["location"]["path"] == "prod/pod.yaml"
    (edited,) = _untrusted(findings)
    assert "policies folder policies" in edited and "team.yaml" in edited
    _code, without = _scan(r, "--fail-on", "never")
    assert not [f for f in without if f["category"] == "policy"]
    # a folder the change leaves alone gives no finding
    git(r, "checkout", "-q", "main")
    _code, same = _scan(r, "--accept-base", "main", "--fail-on", "never")
    assert not _untrusted(same) and [f["rule"] for f in same if f["category"] == "policy"] == [
        "NeedTeam/team"]


def test_drift_settings_come_from_the_base_ref(tmp_path: Path) -> None:
    """``drift.fieldManagers: []`` would hide every field a tool applied that Git dropped, and
    ``drift.fieldTypes`` changes what compares equal: in a pull request both are the base
    ref's, and the change's edit is a finding naming the key."""
    from checker.accept import BaseApproval
    from checker.config import load_config
    from checker.trust import trusted_config

    change = BASE + ("drift:\n  fieldManagers: []\n  fieldTypes:\n    - {group: x.io, kind: "
                     "Thing, path: /spec/size, type: quantity}\n")
    repo = _repo(tmp_path, change)
    head = load_config(repo)
    assert head.drift_field_managers == ()
    assert head.drift_field_types
    config, findings = trusted_config(head, BaseApproval(repo, "main"), repo)
    assert config.drift_field_managers is None and not config.drift_field_types
    messages = sorted(f.message for f in findings)
    assert any(m.startswith("drift.fieldManagers: the change sets []") and
               "(the default managers)" in m for m in messages), messages
    assert any(m.startswith("drift.fieldTypes:") and "x.io/Thing /spec/size: quantity" in m
               for m in messages), messages
