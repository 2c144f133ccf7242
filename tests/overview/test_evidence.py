"""Evidence per change: ``scan --evidence`` / ``--evidence-statement`` and the Action inputs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.overview import evidence
from tests.action.test_entrypoint import run_action

DAEMONSET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: monitoring}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers:
      - name: agent
        image: registry.example.com/agent:1.0
        securityContext: {privileged: true}
"""
ACCEPTANCE = """\
acceptances:
  - id: RA-1
    policy: pss-privileged
    resources:
      - {namespace: monitoring, kind: DaemonSet, name: agent}
    justification: Reads host metrics.
    owner: team-platform
    approver: ciso-office
    ticket: SEC-42
    expires: "2027-06-30"
"""
CONFIG = """\
clusters:
  - name: prod
    environment: production
    paths: [deploy]
    packs: [pss-baseline, best-practice]
"""


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "deploy").mkdir(parents=True)
    (root / "deploy" / "agent.yaml").write_text(DAEMONSET, encoding="utf-8")
    (root / ".gitops-checker" / "acceptances").mkdir(parents=True)
    (root / ".gitops-checker" / "acceptances" / "a.yaml").write_text(ACCEPTANCE, "utf-8")
    (root / ".gitops-checker.yaml").write_text(CONFIG, encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "remote", "add", "origin", "https://user:s3cret-token@git.example.com/acme/x.git")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


def scan(root: Path, *extra: str) -> tuple[int, dict[str, object], dict[str, object]]:
    out = root.parent / "out"
    out.mkdir(exist_ok=True)
    result = CliRunner().invoke(cli, [
        "scan", "--root", str(root), "--today", "2026-12-01",
        "--evidence", str(out / "evidence.json"),
        "--evidence-statement", str(out / "statement.json"), *extra])
    assert result.exit_code in (0, 1), result.output
    return (result.exit_code, json.loads((out / "evidence.json").read_text("utf-8")),
            json.loads((out / "statement.json").read_text("utf-8")))


def test_record_validates_and_says_what_ran_on_which_commit(repo: Path) -> None:
    code, record, statement = scan(repo)
    jsonschema.Draft7Validator(evidence.schema()).validate(record)
    assert record["repository"] == {
        "url": "https://git.example.com/acme/x.git",  # the credentials are not recorded
        "commit": git(repo, "rev-parse", "HEAD"), "ref": None, "source": "git"}
    assert "s3cret" not in json.dumps(record)
    assert record["acceptanceDate"] == "2026-12-01"
    assert record["clusters"] == [{"name": "prod", "environment": "production"}]
    assert record["result"]["exitCode"] == code
    by_id = {p["policy"]: p for p in record["policies"]}
    assert by_id["pss-privileged"]["constraint"] == "GcPssPrivileged/pss-privileged"
    assert by_id["pss-privileged"]["enforcementAction"] == "deny"
    assert by_id["pss-privileged"]["digest"].startswith("sha256:")
    assert {p["name"] for p in record["packs"]} == {"pss-baseline", "best-practice", "lib"}
    assert record["engines"] and all("regorus" in e or "OPA" in e for e in record["engines"])
    [accepted] = record["acceptances"]
    assert (accepted["owner"], accepted["approver"], accepted["ticket"], accepted["expires"]) == (
        "team-platform", "ciso-office", "SEC-42", "2027-06-30")
    assert accepted["findings"]
    assert all(f["delta"] is None for f in record["findings"])
    assert record["delta"]["available"] is False
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == evidence.PREDICATE_TYPE
    assert statement["subject"][0]["digest"] == {"gitCommit": record["repository"]["commit"]}
    assert statement["predicate"] == record


def test_record_is_byte_identical_between_runs(repo: Path) -> None:
    scan(repo)
    first = (repo.parent / "out" / "evidence.json").read_bytes()
    scan(repo)
    assert (repo.parent / "out" / "evidence.json").read_bytes() == first


def test_a_changed_policy_setting_changes_only_that_digest(repo: Path) -> None:
    _, before, _ = scan(repo)
    (repo / ".gitops-checker.yaml").write_text(
        CONFIG + "    overrides:\n      image-tag:\n"
                 "        parameters: {disallowedTags: [latest, main]}\n", encoding="utf-8")
    _, after, _ = scan(repo)
    old = {p["policy"]: p["digest"] for p in before["policies"]}
    new = {p["policy"]: p["digest"] for p in after["policies"]}
    assert {pid for pid in old if old[pid] != new[pid]} == {"image-tag"}
    assert any("differs from the commit" in n for n in after["notChecked"]["provenance"])


def test_exemptions_and_not_checked_inputs_are_in_the_record(repo: Path) -> None:
    _, record, _ = scan(repo)
    [group] = [g for g in record["notChecked"]["exemptions"] if "pss-privileged" in g["policies"]]
    assert group["namespaces"] == ["kube-system"] and group["cluster"] == "prod"


def test_github_environment_names_repository_and_commit(repo: Path) -> None:
    from checker.model import Report

    sha = "0123456789abcdef0123456789abcdef01234567"
    prov = evidence.collect(repo, Report((), {}, 0, 0), None, "", {
        "GITHUB_REPOSITORY": "acme/platform", "GITHUB_SHA": sha,
        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REF": "refs/pull/7/merge"})
    assert (prov.repository, prov.commit, prov.ref, prov.source) == (
        "https://github.com/acme/platform", sha, "refs/pull/7/merge", "github")


def test_base_ref_is_resolved_to_its_commit(repo: Path) -> None:
    _, record, _ = scan(repo, "--accept-base", "main")
    assert record["base"] == {"ref": "main", "commit": git(repo, "rev-parse", "main")}


def test_without_a_commit_the_statement_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(DAEMONSET, encoding="utf-8")
    out = tmp_path / "evidence.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env["GIT_CEILING_DIRECTORIES"] = str(tmp_path.parent)
    result = CliRunner(env=env).invoke(cli, ["scan", "--root", str(tmp_path), str(tmp_path),
                                             "--evidence", str(out)])
    assert result.exit_code == 1, result.output
    record = json.loads(out.read_text("utf-8"))
    assert record["repository"]["commit"] is None
    assert any("commit is unknown" in n for n in record["notChecked"]["provenance"])
    result = CliRunner(env=env).invoke(cli, ["scan", "--root", str(tmp_path), str(tmp_path),
                                             "--evidence-statement", str(tmp_path / "s.json")])
    assert result.exit_code == 2
    assert "cannot write an evidence statement" in result.output


def test_action_writes_the_record_and_names_it_in_its_outputs(repo: Path) -> None:
    run = run_action(repo, {"evidence": "out/evidence.json",
                            "evidence-statement": "out/statement.json"})
    assert run.outputs["evidence"] == "out/evidence.json", run.stdout + run.stderr
    assert run.outputs["evidence-statement"] == "out/statement.json"
    record = json.loads((repo / "out" / "evidence.json").read_text("utf-8"))
    jsonschema.Draft7Validator(evidence.schema()).validate(record)
    assert record["repository"]["url"] == "https://github.com/acme/platform"
    assert record["repository"]["source"] == "github"
    assert record["result"]["exitCode"] == int(run.outputs["exit-code"])


def test_record_carries_the_delta_against_the_base(repo: Path) -> None:
    """With --base, each finding says new or unchanged and the fixed ones are listed."""
    text = (repo / "deploy" / "agent.yaml").read_text("utf-8")
    (repo / "deploy" / "agent.yaml").write_text(
        text + "---\n" + text.replace("name: agent", "name: agent-two", 1), "utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a second agent")
    _code, record, _ = scan(repo, "--base", "HEAD~1")
    jsonschema.Draft7Validator(evidence.schema()).validate(record)
    delta = record["delta"]
    assert isinstance(delta, dict)
    assert delta["available"] is True and delta["base"] == git(repo, "rev-parse", "HEAD~1")
    findings = record["findings"]
    assert isinstance(findings, list)
    states = {f["delta"] for f in findings}
    assert states == {"new", "unchanged"}
    counts = delta["counts"]
    assert counts["new"] == sum(f["delta"] == "new" for f in findings) > 0
    assert counts["unchanged"] == sum(f["delta"] == "unchanged" for f in findings) > 0
    assert counts["fixed"] == 0 and delta["fixed"] == []
