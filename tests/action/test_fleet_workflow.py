"""The fleet workflow, run step by step as the runner would: the Action's matrix, one shard
job per entry, download-artifact's folders, and the merge job, against one job scanning the
whole fleet; the example is clean under actionlint and zizmor."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.action.test_entrypoint import Run, all_defaults, run_action, workspace
from tests.action.test_workflows import load, tool
from tests.conftest import ROOT

FLEET = ROOT / "examples" / "workflows" / "gitops-checker-fleet.yml"
EXAMPLE = ROOT / "examples" / "multi-cluster"


def step(job: dict[str, Any], uses: str) -> dict[str, Any]:
    (found,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith(uses)]
    return found


def test_zizmor_finds_nothing_in_the_fleet_workflow() -> None:
    proc = subprocess.run([tool("zizmor"), "--offline", "--no-progress", str(FLEET)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings to report" in proc.stdout + proc.stderr


def test_zizmor_can_fail(tmp_path: Path) -> None:
    """Negative control: an unpinned action and a token kept by checkout are findings."""
    bad = tmp_path / "bad.yml"
    bad.write_text(FLEET.read_text(encoding="utf-8").replace(
        "# zizmor: ignore[unpinned-uses]", "").replace(
        "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1", "actions/checkout@v7"),
        encoding="utf-8")
    proc = subprocess.run([tool("zizmor"), "--offline", "--no-progress", str(bad)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0 and "unpinned-uses" in proc.stdout + proc.stderr


def test_the_workflow_plans_shards_and_merges_every_one() -> None:
    jobs = load(FLEET)["jobs"]
    plan, shard, check = jobs["plan"], jobs["shard"], jobs["check"]
    own = "gitops-checker/gitops-checker@"
    assert step(plan, own)["with"] == {"mode": "matrix"}
    assert plan["outputs"]["matrix"] == "${{ steps.plan.outputs.matrix }}"
    assert shard["needs"] == "plan" and shard["strategy"]["fail-fast"] is False
    assert shard["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    scan = step(shard, own)["with"]
    assert scan["shard"] == "${{ matrix.shard }}" and scan["fail-on"] == "never"
    upload = step(shard, "actions/upload-artifact@")
    assert upload["if"] == "${{ !cancelled() }}"
    assert upload["with"]["path"] == scan["json-file"]
    assert upload["with"]["if-no-files-found"] == "error"
    assert check["needs"] == "shard" and check["if"] == "${{ !cancelled() }}"
    download = step(check, "actions/download-artifact@")["with"]
    assert upload["with"]["name"].replace("${{ strategy.job-index }}", "*") == download["pattern"]
    merge = step(check, own)["with"]
    assert merge["mode"] == "merge" and merge["shard-reports"] == f"../{download['path']}"
    # the pull request's files in repo/, the reports beside it: it cannot add one of its own
    assert step(check, "actions/checkout@")["with"]["path"] == merge["working-directory"]
    assert not download["path"].startswith(merge["working-directory"])
    assert merge["sarif-category"] == scan["sarif-category"] == step(
        check, "github/codeql-action/upload-sarif@")["with"]["category"]


def _inputs(job: dict[str, Any], **matrix: str) -> dict[str, str]:
    """The Action step's inputs of ``job`` over the defaults, ``${{ matrix.X }}`` filled in."""
    given = step(job, "gitops-checker/gitops-checker@")["with"]
    out = {**all_defaults()}
    for name, value in given.items():
        text = str(value)
        for key, filled in matrix.items():
            text = text.replace(f"${{{{ matrix.{key} }}}}", filled)
        out[name] = text
    return out


def _reports(run: Run) -> dict[str, str]:
    return {name: (run.workspace / run.outputs[name]).read_text(encoding="utf-8")
            for name in ("sarif-file", "junit-file", "markdown-file")}


@pytest.mark.slow
def test_the_fleet_workflow_gives_what_one_job_gives(tmp_path: Path) -> None:
    jobs = load(FLEET)["jobs"]
    ws = workspace(tmp_path / "plan", EXAMPLE)
    plan = run_action(ws, _inputs(jobs["plan"]))
    assert plan.code == 0, plan.stdout + plan.stderr
    matrix = json.loads(plan.outputs["matrix"])
    assert [job["clusters"] for job in matrix["include"]] == ["production", "staging"]
    downloads = tmp_path / "check" / "workspace" / "gitops-checker-shards"
    for index, entry in enumerate(matrix["include"]):
        shard_ws = workspace(tmp_path / f"shard-{index}", EXAMPLE)
        inputs = _inputs(jobs["shard"], shard=entry["shard"])
        ran = run_action(shard_ws, inputs)
        assert ran.code in (0, 1), ran.stdout + ran.stderr
        assert ran.outputs["sarif-file"] == ""  # only the JSON report
        artifact = downloads / f"gitops-checker-shard-{index}"  # download-artifact's layout
        artifact.mkdir(parents=True)
        shutil.copy(shard_ws / inputs["json-file"], artifact / "shard.json")
    merge_ws = tmp_path / "check" / "workspace"
    shutil.copytree(EXAMPLE, merge_ws / "repo")  # actions/checkout with path: repo
    merged = run_action(merge_ws, _inputs(jobs["check"]))
    single_ws = workspace(tmp_path / "single", EXAMPLE)
    single = run_action(single_ws, {**all_defaults(), "policies": "policies",
                                    "fail-on": "error", "sarif-category": "gitops-checker"})
    assert single.code == merged.code == 1, merged.stdout + merged.stderr
    assert _reports(merged) == _reports(single)
    assert merged.summary == single.summary
    # annotations name files relative to the repository root, also where the merge job checks
    # the repository out under repo/ (GitHub resolves them against the root)
    assert merged.annotations == single.annotations
    assert merged.annotations and not any(p["file"].startswith("repo/")
                                          for _, p, _ in merged.annotations)
    assert {k: v for k, v in merged.outputs.items() if not k.endswith("-file")} == {
        k: v for k, v in single.outputs.items() if not k.endswith("-file")}


@pytest.mark.slow
def test_merge_mode_without_a_shard_report_is_an_error(tmp_path: Path) -> None:
    ws = workspace(tmp_path, EXAMPLE)
    (ws / "shards").mkdir()
    ran = run_action(ws, {**all_defaults(), "mode": "merge", "shard-reports": "shards"})
    assert ran.code == 2 and ran.outputs["result"] == "error"
    assert "no JSON reports in" in ran.stdout


def test_inputs_of_part_of_a_fleet_are_checked() -> None:
    from checker.action.inputs import ActionError, input_variable, parse_inputs

    def env(**given: str) -> dict[str, str]:
        return {input_variable(k.replace("_", "-")): v for k, v in
                {**all_defaults(), **given}.items()}

    parsed = parse_inputs(env(clusters="a, b\nc", shard="2/3"))
    assert parsed.clusters == ("a", "b", "c") and parsed.shard == (2, 3)
    with pytest.raises(ActionError, match=r"input shard: .*expected I/N"):
        parse_inputs(env(shard="4/3"))
    with pytest.raises(ActionError, match="mode drift checks no part of a fleet"):
        parse_inputs(env(mode="drift", snapshot="s.json", shard="1/2"))
    with pytest.raises(ActionError, match="mode merge needs the shards' JSON reports"):
        parse_inputs(env(mode="merge"))
