"""Audit trail and repository guardrails on a repository built here with a scripted history."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.overview.audit import changed_fields, diff_objects

SECRET_VALUE = "c3VwZXItc2VjcmV0LXZhbHVl"  # base64 of a value that must never be printed
ROTATED_VALUE = "cm90YXRlZC12YWx1ZQ=="

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: apps
spec:
  replicas: {replicas}
  template:
    spec:
      containers:
        - name: podinfo
          image: ghcr.io/stefanprodan/podinfo:{tag}
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: podinfo
  namespace: apps
spec:
  ports: [{port: 80}]
"""
SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: apps
data:
  password: {value}
"""
CONFIGMAPS = """\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: one, namespace: apps}
    data: {a: "1"}
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: two, namespace: apps}
    data: {b: "2"}
"""
CRONJOB = """\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
  namespace: jobs
spec:
  schedule: "0 3 * * *"
"""


class Repo:
    """A throw-away repository; every commit has a fixed author, committer and date."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
        self.git("init", "-q", "-b", "main")
        self.git("config", "commit.gpgsign", "false")
        self.git("config", "user.name", "Setup")
        self.git("config", "user.email", "setup@example.com")

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True,
                              text=True, env={**self.env, **(env or {})}, check=True)
        return proc.stdout.strip()

    def write(self, rel: str, text: str) -> None:
        path = self.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def commit(self, message: str, who: str, day: int, *extra: str,
               committer: str = "CI Bot") -> str:
        date = f"2024-01-{day:02d}T10:00:00+00:00"
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message, *extra, env={
            "GIT_AUTHOR_NAME": who, "GIT_AUTHOR_EMAIL": f"{who.lower()}@example.com",
            "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_NAME": committer,
            "GIT_COMMITTER_EMAIL": "ci@example.com", "GIT_COMMITTER_DATE": date})
        return self.git("rev-parse", "HEAD")


@pytest.fixture()
def repo(tmp_path: Path) -> tuple[Repo, dict[str, str]]:
    r = Repo(tmp_path / "repo")
    shas: dict[str, str] = {}
    r.write("README.md", "# demo\n")
    r.write("apps/podinfo.yaml", DEPLOY.format(replicas=1, tag="6.7.0") + "---\n" + SERVICE)
    shas["add"] = r.commit("Add podinfo\n\nFirst deployment.", "Alice", 1)
    r.write("apps/podinfo.yaml", DEPLOY.format(replicas=1, tag="6.7.1") + "---\n" + SERVICE)
    r.write("apps/secret.yaml", SECRET.format(value=SECRET_VALUE))
    shas["bump"] = r.commit("Bump podinfo, add db secret", "Bob", 2)
    r.write("apps/podinfo.yaml", DEPLOY.format(replicas=3, tag="6.7.1"))
    r.write("apps/service.yaml", SERVICE)  # moved, unchanged: not a change of the object
    r.write("README.md", "# demo\n\nmore\n")
    shas["move"] = r.commit("Scale podinfo, move service", "Alice", 3)
    r.write("apps/secret.yaml", SECRET.format(value=ROTATED_VALUE))
    r.write("apps/configmaps.yaml", CONFIGMAPS)
    shas["rotate"] = r.commit("Rotate secret, add config", "Carol", 4)
    r.git("checkout", "-q", "-b", "feature")
    r.write("jobs/cronjob.yaml", CRONJOB)
    shas["feature"] = r.commit("Add nightly job", "Dave", 5)
    r.git("checkout", "-q", "main")
    r.git("merge", "-q", "--no-ff", "--no-commit", "feature")
    shas["merge"] = r.commit("Merge feature", "Alice", 6)
    (r.path / "apps/secret.yaml").unlink()
    shas["remove"] = r.commit("Remove db secret", "Carol", 7)
    return r, shas


def audit(r: Repo, *args: str) -> Any:
    return CliRunner().invoke(cli, ["audit", "--repo", str(r.path), *args])


def audit_json(r: Repo, *args: str) -> dict[str, Any]:
    result = audit(r, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def changes(commit: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(c["change"], c["kind"], c["namespace"], c["name"]) for c in commit["changes"]]


def test_history_by_object(repo: tuple[Repo, dict[str, str]]) -> None:
    r, shas = repo
    data = audit_json(r)
    subjects = [c["subject"] for c in data["commits"]]
    # the merge itself changes nothing (its changes are the feature commit's)
    assert subjects == ["Remove db secret", "Add nightly job", "Rotate secret, add config",
                        "Scale podinfo, move service", "Bump podinfo, add db secret",
                        "Add podinfo"]
    first = data["commits"][-1]
    assert first == {
        "sha": shas["add"], "parents": [],
        "author": {"name": "Alice", "email": "alice@example.com",
                   "date": "2024-01-01T10:00:00+00:00"},
        "committer": {"name": "CI Bot", "email": "ci@example.com",
                      "date": "2024-01-01T10:00:00+00:00"},
        "signature": {"status": "unsigned", "signer": ""},
        "subject": "Add podinfo", "message": "Add podinfo\n\nFirst deployment.",
        "changes": [
            {"change": "added", "apiVersion": "apps/v1", "kind": "Deployment",
             "namespace": "apps", "name": "podinfo", "path": "apps/podinfo.yaml",
             "oldPath": "", "fields": []},
            {"change": "added", "apiVersion": "v1", "kind": "Service", "namespace": "apps",
             "name": "podinfo", "path": "apps/podinfo.yaml", "oldPath": "", "fields": []},
        ],
    }
    by_subject = {c["subject"]: c for c in data["commits"]}
    bump = by_subject["Bump podinfo, add db secret"]
    assert bump["parents"] == [shas["add"]]
    assert changes(bump) == [("modified", "Deployment", "apps", "podinfo"),
                             ("added", "Secret", "apps", "db")]
    assert bump["changes"][0]["fields"] == ["spec.template.spec.containers[0].image"]
    move = by_subject["Scale podinfo, move service"]
    assert changes(move) == [("modified", "Deployment", "apps", "podinfo")]  # Service moved only
    assert move["changes"][0]["fields"] == ["spec.replicas"]
    rotate = by_subject["Rotate secret, add config"]
    assert changes(rotate) == [("added", "ConfigMap", "apps", "one"),
                               ("added", "ConfigMap", "apps", "two"),
                               ("modified", "Secret", "apps", "db")]
    assert rotate["changes"][2]["fields"] == ["data.password"]
    assert changes(by_subject["Add nightly job"]) == [("added", "CronJob", "jobs", "nightly")]
    assert changes(by_subject["Remove db secret"]) == [("removed", "Secret", "apps", "db")]
    assert data["summary"] == {"commits": 6, "added": 6, "modified": 3, "removed": 1,
                               "unreadable": 0}
    assert data["guardrails"] == {} and data["violations"] == []


def test_secret_values_never_appear(repo: tuple[Repo, dict[str, str]]) -> None:
    r, _ = repo
    for fmt in ("json", "markdown"):
        output = audit(r, "--format", fmt).output
        assert SECRET_VALUE not in output and ROTATED_VALUE not in output
        assert "data.password" in output


def test_filters(repo: tuple[Repo, dict[str, str]]) -> None:
    r, _ = repo
    secrets = audit_json(r, "--kind", "secret")
    assert [changes(c) for c in secrets["commits"]] == [
        [("removed", "Secret", "apps", "db")], [("modified", "Secret", "apps", "db")],
        [("added", "Secret", "apps", "db")]]
    assert secrets["filters"]["kinds"] == ["secret"]
    removed = audit_json(r, "--change", "removed")
    assert [c["subject"] for c in removed["commits"]] == ["Remove db secret"]
    bob = audit_json(r, "--author", "BOB@example")
    assert [c["subject"] for c in bob["commits"]] == ["Bump podinfo, add db secret"]
    window = audit_json(r, "--since", "2024-01-02T12:00:00Z", "--until", "2024-01-04T12:00:00Z")
    assert [c["subject"] for c in window["commits"]] == ["Rotate secret, add config",
                                                         "Scale podinfo, move service"]
    jobs = audit_json(r, "--namespace", "jobs")
    assert [changes(c) for c in jobs["commits"]] == [[("added", "CronJob", "jobs", "nightly")]]
    named = audit_json(r, "--name", "t*")
    assert [changes(c) for c in named["commits"]] == [[("added", "ConfigMap", "apps", "two")]]
    paths = audit_json(r, str(r.path / "jobs"))
    assert paths["paths"] == ["jobs"]
    assert [c["subject"] for c in paths["commits"]] == ["Add nightly job"]
    ranged = audit_json(r, "--rev", "HEAD~2..HEAD")
    assert [c["subject"] for c in ranged["commits"]] == ["Remove db secret", "Add nightly job"]


def test_first_parent_attributes_merged_changes_to_the_merge(
        repo: tuple[Repo, dict[str, str]]) -> None:
    r, shas = repo
    data = audit_json(r, "--first-parent")
    merge = next(c for c in data["commits"] if c["subject"] == "Merge feature")
    assert merge["sha"] == shas["merge"]
    assert len(merge["parents"]) == 2
    assert changes(merge) == [("added", "CronJob", "jobs", "nightly")]
    assert "Add nightly job" not in [c["subject"] for c in data["commits"]]


def test_markdown(repo: tuple[Repo, dict[str, str]]) -> None:
    r, shas = repo
    md = audit(r, "--format", "markdown").output
    assert md.startswith("# Audit trail\n\n6 commits changed Kubernetes objects in `HEAD`: "
                         "6 added, 3 modified, 1 removed.\n")
    assert f"## `{shas['bump'][:12]}` Bump podinfo, add db secret" in md
    assert "| modified | Deployment | apps | podinfo | `apps/podinfo.yaml` | " \
           "`spec.template.spec.containers[0].image` |" in md
    assert "- Author: Bob <bob@example.com>, 2024-01-02T10:00:00+00:00" in md
    assert "- Signature: unsigned" in md
    assert audit(r, "--format", "markdown").output == md  # deterministic


def test_guardrail_unsigned_commits(repo: tuple[Repo, dict[str, str]]) -> None:
    r, shas = repo
    result = audit(r, "--format", "json", "--base", shas["rotate"], "--require-signed")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    unsigned = data["guardrails"]["signatures"]["unsigned"]
    assert [u["sha"] for u in unsigned] == [shas["remove"], shas["merge"], shas["feature"]]
    assert unsigned[0] == {"sha": shas["remove"], "author": "Carol <carol@example.com>",
                           "date": "2024-01-07T10:00:00+00:00", "signature": "unsigned",
                           "subject": "Remove db secret"}
    assert data["guardrails"]["history"]["rewritten"] is False
    assert data["violations"] == [f"3 commit(s) without a good signature in "
                                  f"{shas['rotate']}..HEAD"]
    assert "guardrail: 3 commit(s) without a good signature" in result.stderr
    # Without --require-signed the unsigned commits are reported but do not fail.
    relaxed = audit(r, "--format", "json", "--base", shas["rotate"])
    assert relaxed.exit_code == 0
    assert len(json.loads(relaxed.stdout)["guardrails"]["signatures"]["unsigned"]) == 3


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is not installed")
def test_signed_commits_pass(repo: tuple[Repo, dict[str, str]], tmp_path: Path) -> None:
    r, shas = repo
    key = tmp_path / "signing-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "eve@example.com",
                    "-f", str(key)], check=True)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"eve@example.com {key.with_suffix('.pub').read_text()}")
    # signing key of the repository; verification needs gpg.ssh.allowedSignersFile
    r.git("config", "user.signingkey", str(key))
    r.git("config", "gpg.format", "ssh")
    r.write("apps/podinfo.yaml", DEPLOY.format(replicas=5, tag="6.7.1"))
    signed = r.commit("Scale to 5 (signed)", "Eve", 9, "-S")
    unverifiable = audit_json(r, "--rev", f"{shas['remove']}..HEAD")
    assert unverifiable["commits"][0]["signature"]["status"] == "unverifiable"
    r.git("config", "gpg.ssh.allowedSignersFile", str(allowed))
    result = audit(r, "--format", "json", "--base", signed + "~1", "--require-signed")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["commits"][0]["signature"] == {"status": "good", "signer": "eve@example.com"}
    assert data["guardrails"]["signatures"]["unsigned"] == []


def test_guardrail_rewritten_history(repo: tuple[Repo, dict[str, str]]) -> None:
    r, shas = repo
    r.write("apps/extra.yaml", CRONJOB.replace("nightly", "weekly"))
    dropped = r.commit("Add weekly job", "Mallory", 8)
    r.git("reset", "-q", "--hard", "HEAD~1")
    r.write("apps/extra.yaml", CRONJOB.replace("nightly", "hourly"))
    r.commit("Add hourly job", "Mallory", 9)
    result = audit(r, "--format", "json", "--base", dropped)
    assert result.exit_code == 1
    history = json.loads(result.stdout)["guardrails"]["history"]
    assert history["rewritten"] is True
    assert history["base"] == dropped
    assert "is not an ancestor of" in history["reason"]
    ok = audit(r, "--format", "json", "--base", shas["remove"])
    assert ok.exit_code == 0
    assert json.loads(ok.stdout)["guardrails"]["history"]["rewritten"] is False
    gone = audit(r, "--format", "json", "--base", "1" * 40, "--require-signed")
    assert gone.exit_code == 1
    assert "is not in the repository" in json.loads(gone.stdout)["guardrails"]["history"]["reason"]


def test_guardrail_codeowners(repo: tuple[Repo, dict[str, str]]) -> None:
    r, _ = repo
    r.write(".github/CODEOWNERS", "# owners\n/apps/ @acme/apps\n/apps/configmaps.yaml\n"
                                  "docs/* @acme/docs\n")
    r.write("docs/example.yaml", CRONJOB)  # docs/* matches direct children only
    r.write("docs/nested/example.yaml", CRONJOB.replace("nightly", "nested"))
    r.write("notes.yaml", "just: data\n")  # not a manifest: not checked
    r.commit("Add owners", "Alice", 8)
    result = audit(r, "--format", "json", "--require-codeowners")
    assert result.exit_code == 1
    owners = json.loads(result.stdout)["guardrails"]["codeowners"]
    assert owners == {
        "required": True, "file": ".github/CODEOWNERS", "checked": 6,
        "uncovered": [
            {"path": "apps/configmaps.yaml", "rule": "/apps/configmaps.yaml", "line": 3},
            {"path": "docs/nested/example.yaml", "rule": "", "line": 0},
            {"path": "jobs/cronjob.yaml", "rule": "", "line": 0},
        ]}
    md = audit(r, "--format", "markdown", "--require-codeowners").output
    assert "- ❌ 3 manifest file(s) not covered by CODEOWNERS (.github/CODEOWNERS)" in md
    assert "  - `jobs/cronjob.yaml` has no code owner" in md


def test_errors(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "--repo", str(tmp_path)])
    assert result.exit_code == 2
    assert "git rev-parse failed" in result.stderr


def test_bad_revision(repo: tuple[Repo, dict[str, str]]) -> None:
    r, _ = repo
    result = audit(r, "--rev", "no-such-branch")
    assert result.exit_code == 2
    assert "git log failed" in result.stderr
    assert audit(r, "--rev", "--all").exit_code == 2


def test_diff_helpers() -> None:
    assert changed_fields({"a": 1, "b": {"c": [1, 2]}}, {"a": 1, "b": {"c": [1, 3]}, "d": 0}) \
        == ["b.c[1]", "d"]
    assert changed_fields({"a": [1]}, {"a": [1, 2]}) == ["a"]
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "1"}}
    edited = {**cm, "data": {"k": "2"}}
    moved = diff_objects({"a.yaml": [cm]}, {"b.yaml": [edited]})
    assert [(c.change, c.path, c.old_path, c.fields) for c in moved] == [
        ("modified", "b.yaml", "a.yaml", ("data.k",))]
    assert diff_objects({"a.yaml": [cm]}, {"b.yaml": [cm]}) == []


def test_repo_below_the_top_limits_the_trail(repo: tuple[Repo, dict[str, str]]) -> None:
    r, _ = repo
    result = CliRunner().invoke(cli, ["audit", "--repo", str(r.path / "jobs"), "--format",
                                      "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["paths"] == ["jobs"]
    assert [c["subject"] for c in data["commits"]] == ["Add nightly job"]
    # PATHS are relative to the current directory, not to --repo
    apps = CliRunner().invoke(cli, ["audit", "--repo", str(r.path / "jobs"), "--format",
                                    "json", "--kind", "Secret", str(r.path / "apps")])
    assert len(json.loads(apps.stdout)["commits"]) == 3


def test_kustomization_files_are_not_objects(tmp_path: Path) -> None:
    r = Repo(tmp_path / "k")
    r.write("app/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\n"
                                      "kind: Kustomization\nresources: [cm.yaml]\n")
    r.write("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n")
    r.commit("Add app", "Alice", 1)
    data = audit_json(r)
    assert [changes(c) for c in data["commits"]] == [[("added", "ConfigMap", "", "cm")]]
    assert audit(r, "--format", "markdown").output.startswith(
        "# Audit trail\n\n1 commit changed Kubernetes objects in `HEAD`: 1 added")
