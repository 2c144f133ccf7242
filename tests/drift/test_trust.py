"""Live data meets only trusted code: copy annotations, PR policies, pull-request jobs."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from checker.cli import cli
from checker.drift.secrets import SecretHasher, copies_object
from checker.drift.sources import FileSource

SECRET_VALUE = "kapp-c0pied-s3cret"
HASHER = SecretHasher(b"trust-test-key")


def _secret_with_copies() -> dict[str, object]:
    original = {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "db", "namespace": "shop"},
                "stringData": {"password": SECRET_VALUE}}
    diff = [{"op": "replace", "path": "/data/password",
             "value": base64.b64encode(SECRET_VALUE.encode()).decode()}]
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "db", "namespace": "shop", "annotations": {
                "kapp.k14s.io/original": json.dumps(original),
                "kapp.k14s.io/original-diff": json.dumps(diff),
                "kapp.k14s.io/identity": "v1;shop//Secret/db;v1",
                "backup.example.com/copy": f"data:\n  password: {SECRET_VALUE}\n",
                "owner": "team-shop"}},
            "data": {"password": base64.b64encode(SECRET_VALUE.encode()).decode()}}


def test_kapp_and_other_copy_annotations_never_reach_the_snapshot(tmp_path: Path) -> None:
    """kapp's original and original-diff are dropped; a YAML copy is hashed; the rest stays."""
    holder = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "holder", "namespace": "shop", "annotations": {
                  "audit.example.com/last": json.dumps(_secret_with_copies()),
                  "plain": "{not json"}}, "data": {"a": "b"}}
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List",
                                    "items": [_secret_with_copies(), holder]}))
    snap = FileSource(path, HASHER).read()
    text = json.dumps(snap.to_data())
    assert SECRET_VALUE not in text
    assert base64.b64encode(SECRET_VALUE.encode()).decode() not in text
    secret = next(o for o in snap.objects if o["kind"] == "Secret")
    notes = secret["metadata"]["annotations"]
    assert "kapp.k14s.io/original" not in notes and "kapp.k14s.io/original-diff" not in notes
    assert notes["backup.example.com/copy"].startswith("hmac-sha256:")
    assert notes["kapp.k14s.io/identity"] == "v1;shop//Secret/db;v1"
    assert notes["owner"] == "team-shop"
    cm = next(o for o in snap.objects if o["kind"] == "ConfigMap")
    assert cm["metadata"]["annotations"]["audit.example.com/last"].startswith("hmac-sha256:")
    assert cm["metadata"]["annotations"]["plain"] == "{not json"


def test_copies_object_recognises_data_shapes() -> None:
    assert copies_object('{"data": {"k": "v"}}')
    assert copies_object('[{"op": "add", "path": "/stringData/k", "value": "v"}]')
    assert copies_object('{"spec": {"template": {"kind": "Secret"}}}')
    assert not copies_object('{"replicas": 3}')
    assert copies_object('{"replicas": 3}', secret=True)  # any JSON on a Secret
    assert not copies_object("just text")


LEAK_POLICY = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sconfigcheck
spec:
  crd:
    spec:
      names:
        kind: K8sConfigCheck
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sconfigcheck
        violation[{"msg": msg}] {
          input.review.object.data.mode != "safe"
          msg := sprintf("mode must be safe%v", [SUFFIX])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sConfigCheck
metadata:
  name: config-check
spec:
  match:
    kinds:
      - apiGroups: [""]
        kinds: ["ConfigMap"]
"""
TOKEN = "live-only-t0ken-value"


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "A",
           "GIT_COMMITTER_EMAIL": "a@x"}
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True, env=env).stdout.strip()


@pytest.fixture
def pr_repo(tmp_path: Path) -> Path:
    """main has a benign policy; the working tree (the pull request) made it print live data."""
    repo = tmp_path / "repo"
    (repo / "policies").mkdir(parents=True)
    (repo / "apps").mkdir()
    (repo / "apps/cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: shop\n"
        "data:\n  mode: safe\n")
    (repo / "policies/check.yaml").write_text(LEAK_POLICY.replace("[SUFFIX]", '[""]'))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    # the pull request's version copies a live-only annotation into the message
    (repo / "policies/check.yaml").write_text(LEAK_POLICY.replace(
        "[SUFFIX]", "[input.review.object.metadata.annotations.token]"))
    live = {"apiVersion": "v1", "kind": "List", "items": [{
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "app", "namespace": "shop", "annotations": {"token": TOKEN}},
        "data": {"mode": "unsafe"}}]}
    (tmp_path / "live.yaml").write_text(yaml.safe_dump(live))
    return repo


def _drift(repo: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [
        "drift", str(repo / "apps"), "--root", str(repo), "--snapshot",
        str(repo.parent / "live.yaml"), "--pack", "none", "--policies", str(repo / "policies"),
        "--format", "json", *extra])
    return result.exit_code, result.stdout, result.stderr


def test_pull_request_policies_do_not_run_on_live_objects(pr_repo: Path) -> None:
    """Without a trusted ref the working tree's policies are not run: a finding says so."""
    code, out, _ = _drift(pr_repo)
    assert TOKEN not in out
    data = json.loads(out)
    rules = [f["rule"] for f in data["findings"]]
    assert "drift.policy-violation" not in rules
    skipped = [f for f in data["findings"] if f["rule"] == "input.not-checked"]
    assert len(skipped) == 1
    assert skipped[0]["severity"] == "error" and skipped[0]["location"]["path"] == "policies"
    assert "--policies-ref" in skipped[0]["message"]
    assert code == 1  # the check asked for was not made: never a pass
    assert "drift.modified" in rules  # drift itself is still reported


def test_policies_run_on_live_objects_as_they_are_at_the_trusted_ref(pr_repo: Path) -> None:
    """--policies-ref main: main's benign version runs, the pull request's never does."""
    code, out, _ = _drift(pr_repo, "--policies-ref", "main")
    assert TOKEN not in out
    data = json.loads(out)
    violations = [f for f in data["findings"] if f["rule"] == "drift.policy-violation"]
    assert len(violations) == 1
    assert violations[0]["message"].endswith("mode must be safe")
    assert violations[0]["location"]["path"] == "apps/cm.yaml"
    assert not [f for f in data["findings"] if f["rule"] == "input.not-checked"]
    assert code == 1
    bad = CliRunner().invoke(cli, ["drift", str(pr_repo / "apps"), "--root", str(pr_repo),
                                   "--snapshot", str(pr_repo.parent / "live.yaml"),
                                   "--policies", str(pr_repo / "policies"),
                                   "--policies-ref", "no-such-ref"])
    assert bad.exit_code == 2
    assert "--policies-ref no-such-ref: no such commit" in bad.stderr


@pytest.mark.parametrize("name,value", [("GITHUB_EVENT_NAME", "pull_request"),
                                        ("GITHUB_EVENT_NAME", "pull_request_target"),
                                        ("CI_PIPELINE_SOURCE", "merge_request_event")])
def test_drift_is_refused_in_a_pull_request_job(pr_repo: Path, name: str, value: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Live data and a pull request's manifests never meet: no oracle, no leak."""
    monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITOPS_CHECKER_SECRET_KEY", "shared-key")
    code, out, err = _drift(pr_repo, "--policies-ref", "main")
    assert code == 2
    assert out == ""
    assert f"refused in a pull-request job ({name}={value})" in err
    assert "docs/security.md" in err


def test_snapshot_is_refused_in_a_pull_request_job(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    result = CliRunner().invoke(cli, ["snapshot", str(tmp_path), "--out",
                                      str(tmp_path / "s.json"), "--kubeconfig",
                                      str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "refused in a pull-request job (GITHUB_EVENT_NAME=pull_request)" in result.stderr
    assert not (tmp_path / "s.json").exists()
