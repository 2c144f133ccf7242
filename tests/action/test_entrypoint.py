"""The action's entrypoint, run the way the GitHub runner runs a container action.

The runner starts the entrypoint with ``INPUT_<NAME>`` variables (hyphens kept), a workspace
in ``GITHUB_WORKSPACE``, and two files it reads back afterwards: ``GITHUB_OUTPUT`` and
``GITHUB_STEP_SUMMARY``. Each test builds that environment in a temporary folder, runs
``python -m checker.action`` in a subprocess, and checks the exit code, the outputs, the
summary, the files and the workflow commands in the log.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml

from checker.action import entrypoint as action_entrypoint
from checker.action import inputs as action_inputs
from checker.action import outputs as action_outputs
from checker.assemble import annotation_selection
from checker.model import Finding, Report, Rule, Severity, SourceLocation
from tests.conftest import ROOT

REPO = ROOT
EXAMPLE = REPO / "examples" / "gitops-repo"
COMMAND_LINE = re.compile(r"^::(error|warning|notice) ([^:]*)::(.*)$")


@dataclass
class Run:
    """What the runner sees after the step: exit code, log, outputs, summary."""

    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    workspace: Path
    annotations: list[tuple[str, dict[str, str], str]] = field(default_factory=list)


def parse_outputs(text: str) -> dict[str, str]:
    """Read a GITHUB_OUTPUT file the way the runner does (``k=v`` and ``k<<DELIM``)."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            out[name] = "\n".join(lines[i + 1:end])
            i = end + 1
            continue
        name, value = line.split("=", 1)
        assert name not in out, f"output {name} written twice"
        out[name] = value
        i += 1
    return out


def unescape(text: str) -> str:
    """Undo GitHub's workflow command escaping."""
    return (text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":")
            .replace("%2C", ",").replace("%25", "%"))


def parse_annotations(stdout: str) -> list[tuple[str, dict[str, str], str]]:
    """``::error file=..,line=..::msg`` lines outside stop-commands blocks, unescaped."""
    found = []
    stopped: str | None = None
    for line in stdout.splitlines():
        if stopped is not None:
            if line == f"::{stopped}::":
                stopped = None
            continue
        if line.startswith("::stop-commands::"):
            stopped = line.removeprefix("::stop-commands::")
            continue
        match = COMMAND_LINE.match(line)
        if match:
            props = dict(p.split("=", 1) for p in match.group(2).split(",") if p)
            found.append((match.group(1), {k: unescape(v) for k, v in props.items()},
                          unescape(match.group(3))))
    return found


def workspace(tmp_path: Path, source: Path = EXAMPLE) -> Path:
    """A copy of ``source`` as the runner's workspace."""
    ws = tmp_path / "workspace"
    shutil.copytree(source, ws)
    return ws


def run_action(ws: Path, inputs: dict[str, str], extra_env: dict[str, str] | None = None,
               cwd: Path | None = None) -> Run:
    """Run the entrypoint in a runner-like environment; ``inputs`` keyed by input name."""
    runner = ws.parent / "runner"
    runner.mkdir(exist_ok=True)
    output, summary = runner / "output", runner / "summary"
    output.write_text("", encoding="utf-8")
    summary.write_text("", encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", ""),
        # the code under test, not whatever the environment has installed
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "HOME": str(runner),
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(ws),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/platform",
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
        **{f"INPUT_{name.replace(' ', '_').upper()}": value for name, value in inputs.items()},
        **(extra_env or {}),
    }
    proc = subprocess.run([sys.executable, "-m", "checker.action"], cwd=cwd or ws, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    result = Run(proc.returncode, proc.stdout, proc.stderr,
                 parse_outputs(output.read_text(encoding="utf-8")),
                 summary.read_text(encoding="utf-8"), ws)
    result.annotations = parse_annotations(proc.stdout)
    return result


def cli(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI (``python -m checker``) run in ``ws``: the independent source of expectations."""
    return subprocess.run([sys.executable, "-m", "checker", *args], cwd=ws,
                          env={"PATH": os.environ.get("PATH", ""), "HOME": str(ws.parent),
                               "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
                          capture_output=True, text=True, timeout=300, check=False)


def cli_json(ws: Path, *args: str) -> dict[str, Any]:
    """``gitops-checker scan ARGS --format json`` in ``ws``, parsed."""
    proc = cli(ws, "scan", *args, "--format", "json")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def sarif_results(run: Run, name: str = "sarif-file") -> list[dict[str, Any]]:
    """The results of the SARIF file the run wrote."""
    sarif = json.loads((run.workspace / run.outputs[name]).read_text(encoding="utf-8"))
    results: list[dict[str, Any]] = sarif["runs"][0]["results"]
    return results


def per_object(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each SARIF result once per object it stands for: a base line that overlays render
    into several objects is one result listing them in ``properties.objects``."""
    return [r for r in results for _ in (r.get("properties", {}).get("objects") or [None])]


ANNOTATION_KIND = {"error": "error", "warning": "warning", "note": "notice"}
SEVERITY_RANK = {"error": 0, "warning": 1, "note": 2}


def all_defaults() -> dict[str, str]:
    """What the runner sets when every input is left at its action.yml default."""
    meta = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    return {name: str(spec.get("default", "")) for name, spec in meta["inputs"].items()}


# -- the example repository, inputs as the runner sets them -------------------------------


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    ws = workspace(tmp_path_factory.mktemp("example"))
    return run_action(ws, {**all_defaults(), "policies": "policies", "fail-on": "warning"})


@pytest.fixture(scope="module")
def example_cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The CLI's JSON report for the same repository and the same packs and policies."""
    ws = workspace(tmp_path_factory.mktemp("example-cli"))
    return cli_json(ws, ".", "--root", ".", "--policies", "policies")


def test_exit_code_and_result_follow_fail_on(example_run: Run) -> None:
    assert example_run.code == 1, example_run.stdout + example_run.stderr
    assert example_run.outputs["result"] == "fail"
    assert example_run.outputs["exit-code"] == "1"
    assert example_run.stderr == ""


def test_outputs_count_findings_by_severity(example_run: Run,
                                            example_cli: dict[str, Any]) -> None:
    """Each count equals the SARIF the same run wrote and the CLI's report of the same input.

    A SARIF result stands for every object its source line renders into (overlays: its
    ``properties.objects``), so it is counted once per object."""
    out = example_run.outputs
    assert set(out) == set(action_outputs.OUTPUTS)
    levels = [r.get("level", "warning") for r in per_object(sarif_results(example_run))]
    expected = example_cli["summary"]["bySeverity"]
    # The example has errors and warnings, so a count taken from the wrong severity shows.
    assert expected["error"] > 0 and expected["warning"] > 0
    assert expected["error"] != expected["warning"]
    assert int(out["error-count"]) == levels.count("error") == expected["error"]
    assert int(out["warning-count"]) == levels.count("warning") == expected["warning"]
    assert int(out["note-count"]) == levels.count("note") == expected["note"]
    assert int(out["total-count"]) == len(levels) == len(example_cli["findings"])
    assert int(out["total-count"]) == sum(expected.values())
    assert out["drift-count"] == "0"
    assert out["accepted-count"] == "0" == str(example_cli["summary"]["accepted"])


def test_file_outputs_are_relative_to_the_workspace_and_exist(example_run: Run) -> None:
    out = example_run.outputs
    assert out["sarif-file"] == "gitops-checker-results/results.sarif"
    assert out["junit-file"] == "gitops-checker-results/junit.xml"
    assert out["markdown-file"] == "gitops-checker-results/summary.md"
    assert out["json-file"] == ""
    for name in ("sarif-file", "junit-file", "markdown-file"):
        assert (example_run.workspace / out[name]).stat().st_size > 0


def test_sarif_is_ready_for_upload_sarif(example_run: Run) -> None:
    sarif = json.loads((example_run.workspace / "gitops-checker-results/results.sarif")
                       .read_text(encoding="utf-8"))
    run = sarif["runs"][0]
    assert sarif["version"] == "2.1.0"
    assert run["automationDetails"]["id"] == "gitops-checker/"
    for result in run["results"]:
        location = result["locations"][0]["physicalLocation"]
        uri = location["artifactLocation"]["uri"]
        assert not uri.startswith(("/", "file:")) and ".." not in uri
        assert (example_run.workspace / uri).is_file()
        assert location["region"]["startLine"] >= 1


def test_summary_is_the_markdown_report(example_run: Run) -> None:
    markdown = (example_run.workspace / "gitops-checker-results/summary.md").read_text(
        encoding="utf-8")
    assert example_run.summary == markdown + "\n"
    assert "## gitops-checker" in example_run.summary
    # Links point at the commit on GitHub, built from GITHUB_SERVER_URL/REPOSITORY/SHA.
    assert ("https://github.com/acme/platform/blob/0123456789abcdef0123456789abcdef01234567/"
            "infrastructure/monitoring.yaml#L30") in example_run.summary


def test_annotations_point_at_findings_most_severe_first(
        example_run: Run, example_cli: dict[str, Any]) -> None:
    """The findings of the CLI's report, most severe first, then report order, at most 10 of
    each kind (GitHub's per-step limit); a last notice counts the rest."""
    findings, seen = [], set()
    for f in example_cli["findings"]:  # one per source location: overlays of a line are one
        key = (f["rule"], f["location"]["path"], f["location"]["line"],
               f["location"]["column"], f["message"])
        if key not in seen:
            seen.add(key)
            findings.append(f)
    ordered = sorted(findings, key=lambda f: SEVERITY_RANK[f["severity"]])  # stable
    expected, per_kind = [], {"error": 0, "warning": 0, "notice": 0}
    for f in ordered:
        kind = ANNOTATION_KIND[f["severity"]]
        if per_kind[kind] < (9 if kind == "notice" else 10):  # one notice: what did not fit
            per_kind[kind] += 1
            expected.append((kind, f["location"]["path"], str(f["location"]["line"]),
                             str(f["location"]["column"]), f["message"]))
    assert len(expected) < len(findings)  # the example has more than fit
    got = [(kind, props["file"], props["line"], props["col"], message.rsplit(" (", 1)[0])
           for kind, props, message in example_run.annotations if "file" in props]
    assert got == expected
    last = example_run.annotations[-1]
    assert last[0] == "notice" and "file" not in last[1]
    assert last[2].startswith(f"{len(findings) - len(expected)} more findings are not annotated")
    kinds = [a[0] for a in example_run.annotations if "file" in a[1]]
    assert kinds[0] == "error" and kinds[-1] == "warning"  # both severities, errors first
    for kind in ("error", "warning", "notice"):
        assert sum(1 for a in example_run.annotations if a[0] == kind) <= 10
    privileged = next(a for a in example_run.annotations
                      if a[1]["title"].endswith("(pss-privileged)"))
    assert privileged[1]["file"] == "infrastructure/monitoring.yaml"
    assert privileged[1]["line"] == "30"
    assert privileged[1]["col"] == "13"
    assert privileged[1]["title"] == "Privileged containers are not allowed (pss-privileged)"
    assert "privileged" in privileged[2]
    for _kind, props, _message in example_run.annotations[:-1]:
        assert (example_run.workspace / props["file"]).is_file()


def test_text_report_is_in_the_log_with_commands_stopped(
        example_run: Run, tmp_path: Path) -> None:
    """Between the markers: the CLI's text report of the same input, line for line."""
    lines = example_run.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("::stop-commands::"))
    token = lines[start].removeprefix("::stop-commands::")
    end = lines.index(f"::{token}::")
    body = lines[start + 1:end]
    text = cli(workspace(tmp_path), "scan", ".", "--root", ".", "--policies", "policies")
    assert body == text.stdout.splitlines()
    out = example_run.outputs
    assert body[-1] == (f"13 resources in 10 files checked: {out['error-count']} error, "
                        f"{out['warning-count']} warning, {out['note-count']} note")
    assert not any(line == f"::{token}::" for line in body)


def test_runs_are_byte_for_byte_reproducible(example_run: Run, tmp_path: Path) -> None:
    again = run_action(workspace(tmp_path), {**all_defaults(), "policies": "policies",
                                             "fail-on": "warning"})
    assert again.stdout == example_run.stdout
    assert again.outputs == example_run.outputs
    assert again.summary == example_run.summary
    for name in ("sarif-file", "junit-file", "markdown-file"):
        assert ((again.workspace / again.outputs[name]).read_bytes()
                == (example_run.workspace / example_run.outputs[name]).read_bytes())


# -- defaults, input names, validation -----------------------------------------------------


def test_no_inputs_at_all_scans_the_whole_workspace_with_default_packs(tmp_path: Path) -> None:
    """A step using the prebuilt image gets no action.yml defaults: same result either way."""
    bare = run_action(workspace(tmp_path / "a"), {})
    defaults = run_action(workspace(tmp_path / "b"), all_defaults())
    assert bare.code == defaults.code == 1
    assert bare.outputs == defaults.outputs
    assert bare.stdout == defaults.stdout
    results = per_object(sarif_results(bare))
    # The same findings as the CLI with no flags on the same repository: the default packs
    # and none of the repository's own policies (those are only read when named).
    expected = cli_json(workspace(tmp_path / "c"), ".", "--root", ".")
    assert expected["packs"] == ["pss-restricted", "best-practice"]
    assert {f["pack"] for f in expected["findings"]} == {"pss-baseline", "pss-restricted",
                                                         "best-practice"}
    found = sorted((r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                    r["locations"][0]["physicalLocation"]["region"]["startLine"])
                   for r in results)
    assert found == sorted((f["rule"], f["location"]["path"], f["location"]["line"])
                           for f in expected["findings"])
    assert not any(rule.startswith("K8sRequiredLabels/") for rule, _, _ in found)
    assert {"image-tag", "pss-privileged"} <= {rule for rule, _, _ in found}
    assert int(bare.outputs["total-count"]) == len(expected["findings"])
    assert {"infrastructure/monitoring.yaml", "infrastructure/cache.yaml",
            "apps/podinfo/base/deployment.yaml"} <= {path for _, path, _ in found}
    assert "pss-restricted, best-practice" in bare.summary


def test_hyphenated_input_names_are_read_as_the_runner_sets_them(tmp_path: Path) -> None:
    run = run_action(workspace(tmp_path), {"fail-on": "never", "sarif-file": "out/x.sarif",
                                           "max-annotations": "1"})
    assert run.code == 0
    assert run.outputs["result"] == "pass"
    assert run.outputs["sarif-file"] == "out/x.sarif"
    assert (run.workspace / "out/x.sarif").is_file()
    assert [a[0] for a in run.annotations] == ["error", "notice"]
    total = int(run.outputs["total-count"])
    assert total == len(per_object(sarif_results(run))) > 1
    located = len(sarif_results(run))  # one annotation per source location, as SARIF
    assert run.annotations[1][2] == (
        f"{located - 1} more findings are not annotated: GitHub shows 10 annotations of each "
        "kind per step and this step writes at most 1 (max-annotations); the job summary "
        "lists them")


def test_hyphenated_name_wins_over_the_underscore_spelling(tmp_path: Path) -> None:
    run = run_action(workspace(tmp_path), {"fail-on": "never"},
                     extra_env={"INPUT_FAIL_ON": "error"})
    assert run.code == 0
    only_underscore = run_action(workspace(tmp_path / "u"), {},
                                 extra_env={"INPUT_FAIL_ON": "never"})
    assert only_underscore.code == 0


def test_annotations_can_be_turned_off(tmp_path: Path) -> None:
    run = run_action(workspace(tmp_path), {"annotations": "false"})
    assert run.code == 1
    assert run.annotations == []


@pytest.mark.parametrize(("name", "value", "message"), [
    ("mode", "sideways", "input mode: 'sideways' is not one of scan, drift, both"),
    ("fail-on", "critical", "input fail-on: 'critical' is not one of"),
    ("annotations", "yes", "input annotations: 'yes' is not true or false"),
    ("policy-impact", "maybe", "input policy-impact: 'maybe' is not true or false"),
    ("max-annotations", "-3", "input max-annotations: '-3' is not a whole number"),
    ("paths", "'unclosed", "input paths: cannot split"),
    ("paths", "../../etc", "input paths: ../../etc is outside the workspace"),
    ("sarif-file", "/tmp/elsewhere.sarif", "input sarif-file: /tmp/elsewhere.sarif is outside"),
    ("working-directory", "missing", "input working-directory: missing is not a directory"),
    ("mode", "drift", "input snapshot: mode drift needs a snapshot file"),
])
def test_bad_input_is_exit_2_with_an_error_naming_the_input(
        tmp_path: Path, name: str, value: str, message: str) -> None:
    run = run_action(workspace(tmp_path), {name: value})
    assert run.code == 2, run.stdout
    assert run.outputs["result"] == "error"
    assert run.outputs["exit-code"] == "2"
    assert run.outputs["error-count"] == ""  # no report, no counts
    errors = [a for a in run.annotations if a[0] == "error"]
    assert len(errors) == 1 and message in errors[0][2], run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def test_missing_path_is_a_failing_input_finding_not_a_pass(tmp_path: Path) -> None:
    run = run_action(workspace(tmp_path), {"paths": "does-not-exist", "fail-on": "never"})
    assert run.code == 1
    assert any("does-not-exist" in a[2] for a in run.annotations)


def test_paths_take_several_values_and_quotes(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    (ws / "with space").mkdir()
    shutil.copy(ws / "infrastructure/cache.yaml", ws / "with space/cache.yaml")
    run = run_action(ws, {"paths": "infrastructure/monitoring.yaml\n'with space'",
                          "fail-on": "never"})
    files = {a[1]["file"] for a in run.annotations if "file" in a[1]}
    assert files == {"infrastructure/monitoring.yaml", "with space/cache.yaml"}


def git_init(folder: Path) -> str:
    """Make ``folder`` a git repository with one commit of its files; return the commit."""
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@example.com"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "c"]):
        subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                       env=env)
    return subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True, env=env).stdout.strip()


def sarif_uris(run: Run) -> set[str]:
    sarif = json.loads((run.workspace / run.outputs["sarif-file"]).read_text(encoding="utf-8"))
    return {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in sarif["runs"][0]["results"]}


@pytest.mark.parametrize("git", [True, False])
def test_working_directory_is_the_repository_root(tmp_path: Path, git: bool) -> None:
    """Checkout with ``path: repo``: every path relative to the repository, none with repo/.

    GitHub places an annotation and resolves a summary link against the repository; a
    ``repo/`` prefix names no file there (404). The file outputs stay relative to the
    workspace, where the next steps run.
    """
    ws = tmp_path / "workspace"
    shutil.copytree(EXAMPLE, ws / "repo")
    if git:
        git_init(ws / "repo")
    run = run_action(ws, {"working-directory": "repo", "policies": "policies"})
    assert run.code == 1
    assert run.outputs["sarif-file"] == "repo/gitops-checker-results/results.sarif"
    assert "infrastructure/monitoring.yaml" in sarif_uris(run)
    files = {a[1]["file"] for a in run.annotations if "file" in a[1]}
    assert "infrastructure/monitoring.yaml" in files
    assert not any(f.startswith("repo/") for f in files)
    assert all((ws / "repo" / f).is_file() for f in files)
    assert "/blob/0123456789abcdef0123456789abcdef01234567/infrastructure/" in run.summary
    assert "/repo/" not in run.summary


def test_a_working_directory_below_the_repository_root(tmp_path: Path) -> None:
    """The repository is the workspace and the scan is of one folder: paths keep the folder."""
    ws = tmp_path / "workspace"
    shutil.copytree(EXAMPLE, ws / "gitops")
    (ws / "README.md").write_text("the repository root\n", encoding="utf-8")
    git_init(ws)
    run = run_action(ws, {"working-directory": "gitops", "policies": "policies"})
    assert run.code == 1
    assert "gitops/infrastructure/monitoring.yaml" in sarif_uris(run)
    files = {a[1]["file"] for a in run.annotations if "file" in a[1]}
    assert "gitops/infrastructure/monitoring.yaml" in files
    assert all((ws / f).is_file() for f in files)
    assert "/blob/0123456789abcdef0123456789abcdef01234567/gitops/infrastructure/" in run.summary
    markdown = (ws / run.outputs["markdown-file"]).read_text(encoding="utf-8")
    assert "`gitops/infrastructure/monitoring.yaml:30`" in markdown or (
        "[gitops/infrastructure/monitoring.yaml:30](" in markdown)


def test_links_go_to_the_pull_requests_head_commit(tmp_path: Path) -> None:
    """In a pull_request run GITHUB_SHA is the merge commit; links use pull_request.head.sha."""
    ws = workspace(tmp_path)
    head = "fedcba9876543210fedcba9876543210fedcba98"
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 3, "head": {"sha": head},
                                                  "base": {"sha": "1" * 40}}}))
    run = run_action(ws, {"policies": "policies", "acceptance-base": "none"},
                     {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event)})
    assert f"/blob/{head}/infrastructure/monitoring.yaml#L30" in run.summary
    assert "0123456789abcdef0123456789abcdef01234567" not in run.summary
    # a value that is not a commit id is not put into a URL
    event.write_text(json.dumps({"pull_request": {"head": {"sha": "x)[y](javascript:1"}}}))
    run = run_action(ws, {"policies": "policies", "acceptance-base": "none"},
                     {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event)})
    assert "/blob/0123456789abcdef0123456789abcdef01234567/infrastructure/" in run.summary
    assert "javascript" not in run.summary


def test_unwritable_output_file_is_exit_2(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    runner = ws.parent / "runner"
    runner.mkdir()
    (runner / "as-dir").mkdir()
    run = run_action(ws, {}, extra_env={"GITHUB_STEP_SUMMARY": str(runner / "as-dir")})
    assert run.code == 2
    assert run.outputs["result"] == "error"
    assert any("cannot write GITHUB_STEP_SUMMARY" in a[2] for a in run.annotations)


def test_drift_mode_reports_drift_from_a_snapshot(tmp_path: Path) -> None:
    """mode both runs the scan and the drift check; drift findings are counted apart."""
    ws = workspace(tmp_path)
    live = (ws / "infrastructure" / "monitoring.yaml").read_text(encoding="utf-8")
    (ws / "snapshot.yaml").write_text(live, encoding="utf-8")  # only two objects are live
    run = run_action(ws, {"mode": "both", "snapshot": "snapshot.yaml"})
    assert run.code == 1, run.stdout
    assert int(run.outputs["drift-count"]) > 0
    empty = run_action(ws, {"mode": "drift", "snapshot": "snapshot.json"})
    assert empty.code == 2  # no such snapshot file: a usage error, never "no drift"


def test_config_input_is_passed_through(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    (ws / "ci").mkdir()
    (ws / "ci/gitops-checker.yaml").write_text("{}\n", encoding="utf-8")
    run = run_action(ws, {"config": "ci/gitops-checker.yaml"})
    assert run.code in (0, 1), run.stdout
    assert run.outputs["result"] in ("pass", "fail")
    # the file named is the file read: an unknown key in it is a configuration error naming it
    (ws / "ci/gitops-checker.yaml").write_text("no-such-option: 1\n", encoding="utf-8")
    bad = run_action(ws, {"config": "ci/gitops-checker.yaml"})
    assert bad.code == 2, bad.stdout
    assert "ci/gitops-checker.yaml" in bad.stdout
    assert "no-such-option" in bad.stdout


def test_config_input_naming_a_missing_file_is_exit_2(tmp_path: Path) -> None:
    run = run_action(workspace(tmp_path), {"config": "missing.yaml"})
    assert run.code == 2
    assert "input config: missing.yaml is not a file" in run.stdout


# -- secrets and injection -----------------------------------------------------------------

SECRET_POLICY = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8snoplainsecrets
spec:
  crd:
    spec:
      names:
        kind: K8sNoPlainSecrets
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8snoplainsecrets
        violation[{"msg": msg}] {
          input.review.object.kind == "Secret"
          value := input.review.object.stringData[key]
          msg := sprintf("secret key %v holds %v", [key, value])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sNoPlainSecrets
metadata:
  name: no-plain-secrets
spec:
  match:
    kinds:
      - apiGroups: [""]
        kinds: ["Secret"]
"""

INJECTION_POLICY = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8secholabel
spec:
  crd:
    spec:
      names:
        kind: K8sEchoLabel
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8secholabel
        violation[{"msg": msg}] {
          value := input.review.object.metadata.annotations.note
          msg := sprintf("note is %v", [value])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sEchoLabel
metadata:
  name: echo-note
spec:
  match:
    kinds:
      - apiGroups: [""]
        kinds: ["ConfigMap"]
"""


def test_secret_values_never_reach_annotations(tmp_path: Path) -> None:
    ws = tmp_path / "workspace"
    (ws / "policies").mkdir(parents=True)
    (ws / "policies/secrets.yaml").write_text(SECRET_POLICY, encoding="utf-8")
    (ws / "app.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: app\n"
        "stringData:\n  password: hunter2-s3cr3t\n", encoding="utf-8")
    run = run_action(ws, {"policies": "policies", "packs": "none"})
    assert run.code == 1, run.stdout
    annotated = [a for a in run.annotations if a[1].get("file") == "app.yaml"]
    assert len(annotated) == 1
    assert "hunter2-s3cr3t" not in "".join(a[2] + str(a[1]) for a in run.annotations)
    assert "Secret app/db" in annotated[0][2]


def test_manifest_content_cannot_inject_workflow_commands(tmp_path: Path) -> None:
    ws = tmp_path / "workspace"
    (ws / "policies").mkdir(parents=True)
    (ws / "policies/echo.yaml").write_text(INJECTION_POLICY, encoding="utf-8")
    (ws / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations:\n"
        "    note: \"100%, ok\\n::error file=evil.yaml,line=1::pwned\\r\\n::add-mask::x\"\n",
        encoding="utf-8")
    run = run_action(ws, {"policies": "policies", "packs": "none"})
    assert run.code == 1, run.stdout
    # Exactly one annotation, for the real finding, carrying the whole message unescaped.
    assert len(run.annotations) == 1
    _kind, props, message = run.annotations[0]
    assert props["file"] == "cm.yaml"
    assert message.startswith("note is 100%, ok\n::error file=evil.yaml,line=1::pwned\r\n")
    # The text report does print the raw lines, but only inside the stop-commands block:
    # outside it, every line that starts with '::' is one the action wrote on purpose.
    lines = run.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("::stop-commands::"))
    token = lines[start].removeprefix("::stop-commands::")
    end = lines.index(f"::{token}::")
    assert any(line.startswith("::error file=evil.yaml") for line in lines[start:end])
    outside = [line for line in lines[:start] + lines[end + 1:] if line.startswith("::")]
    assert len(outside) == 1 and outside[0].startswith("::error line=") and (
        ",file=cm.yaml," in outside[0])


# -- unit checks of the pieces the runner depends on ---------------------------------------


def test_escaping_follows_githubs_rules() -> None:
    assert action_outputs.escape_data("50% a\r\nb: c, d") == "50%25 a%0D%0Ab: c, d"
    assert action_outputs.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    line = action_outputs.command("warning", "m: 1, 2", file="a,b:c.yaml", line=3, endLine=None)
    assert line == "::warning file=a%2Cb%3Ac.yaml,line=3::m: 1, 2"


def test_input_variable_keeps_hyphens_and_replaces_spaces() -> None:
    assert action_inputs.input_variable("fail-on") == "INPUT_FAIL-ON"
    assert action_inputs.input_variable("my input") == "INPUT_MY_INPUT"


def test_multiline_output_values_use_a_delimiter_not_in_the_value() -> None:
    text = action_outputs.output_lines({"a": "1", "b": "x\ny=2\nEOF", "c": ""})
    assert parse_outputs(text) == {"a": "1", "b": "x\ny=2\nEOF", "c": ""}
    delimiter = text.split("\n")[1].split("<<")[1]
    assert delimiter not in "x\ny=2\nEOF"


def _finding(severity: Severity, path: str, line: int, rule: str = "r") -> Finding:
    return Finding(rule_id=rule, category="policy", severity=severity, message=f"m{line}",
                   location=SourceLocation(path, line, 2), resource="Pod ns/p")


def test_annotation_cap_keeps_the_most_severe() -> None:
    findings = tuple(sorted([
        _finding(Severity.NOTE, "a.yaml", 1), _finding(Severity.WARNING, "b.yaml", 2),
        _finding(Severity.ERROR, "c.yaml", 3), _finding(Severity.ERROR, "a.yaml", 9),
    ], key=Finding.sort_key))
    report = Report(findings=findings, rules={"r": Rule("r", "Title", Severity.ERROR)},
                    resources_checked=1, files_checked=3)
    chosen = annotation_selection(report, None, limit=2)
    lines = action_outputs.annotation_commands(chosen)
    assert lines[0] == "::error line=9,file=a.yaml,title=Title (r),col=2::m9 (Pod ns/p)"
    assert lines[1].startswith("::error line=3,file=c.yaml,")
    assert lines[2].startswith("::notice title=gitops-checker::2 more findings are not "
                               "annotated")
    assert action_outputs.annotation_commands(
        annotation_selection(report, None, limit=0))[0].startswith("::notice ")


def drift_workspace(tmp_path: Path) -> Path:
    """The example with a file that cannot be parsed, and a snapshot of two live objects."""
    ws = workspace(tmp_path)
    (ws / "broken.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: [\n",
                                    encoding="utf-8")
    live = (ws / "infrastructure" / "monitoring.yaml").read_text(encoding="utf-8")
    (ws / "snapshot.yaml").write_text(live, encoding="utf-8")
    return ws


def test_mode_both_reports_a_broken_file_once_and_keeps_the_drift_summary(
        tmp_path: Path) -> None:
    """Scan and drift both load the manifests: the parse error is one finding, not two."""
    from checker.options import DriftRunOptions
    from checker.pipeline import drift

    ws = drift_workspace(tmp_path)
    drifted = drift(DriftRunOptions(paths=(ws,), root=ws, snapshot=ws / "snapshot.yaml"))
    assert [f.rule_id for f in drifted.findings].count("input.parse-error") == 1  # drift has it
    summary = drifted.drift_summary
    scan = run_action(ws, {"mode": "scan", "fail-on": "never"})
    both = run_action(ws, {"mode": "both", "snapshot": "snapshot.yaml", "fail-on": "never"})
    assert scan.code == both.code == 1  # an unreadable file fails whatever fail-on says
    for run in (scan, both):
        rules = [r["ruleId"] for r in sarif_results(run)]
        assert rules.count("input.parse-error") == 1, run.stdout
        parse_errors = [a for a in run.annotations if a[1].get("file") == "broken.yaml"]
        assert len(parse_errors) == 1
    drift_count = int(both.outputs["drift-count"])
    assert drift_count == sum(1 for f in drifted.findings if f.category == "drift") > 0
    assert int(both.outputs["total-count"]) == int(scan.outputs["total-count"]) + drift_count
    total = summary["managed"] + summary["notCompared"]
    assert (f"{summary['inSync']} of {total} managed objects in sync "
            f"({summary['coverage']}% coverage).") in both.summary


@pytest.mark.parametrize("fail_on", ["error", "warning", "never"])
def test_drift_mode_junit_fails_the_findings_fail_on_selects(
        tmp_path: Path, fail_on: str) -> None:
    """The drift report gets the action's fail-on: JUnit failures match the exit code."""
    ws = drift_workspace(tmp_path)
    (ws / "broken.yaml").unlink()
    run = run_action(ws, {"mode": "drift", "snapshot": "snapshot.yaml", "fail-on": fail_on})
    out = run.outputs
    errors, warnings = int(out["error-count"]), int(out["warning-count"])
    # kinds missing from a kubectl export are errors (not checked is never in sync)
    assert errors > 0, run.stdout
    assert int(out["drift-count"]) == int(out["total-count"]) == errors + warnings
    failing = {"error": errors, "warning": errors + warnings, "never": 0}[fail_on]
    junit = ElementTree.parse(ws / out["junit-file"]).getroot()
    assert len(list(junit.iter("failure"))) == failing
    assert len(list(junit.iter("skipped"))) == errors + warnings - failing
    assert run.code == (1 if failing else 0), run.stdout


def test_missing_snapshot_file_is_exit_2_before_any_scan(tmp_path: Path) -> None:
    run = run_action(workspace(tmp_path), {"mode": "both", "snapshot": "nope.json"})
    assert run.code == 2
    assert any("input snapshot: nope.json is not a file" in a[2] for a in run.annotations)
    assert run.outputs["error-count"] == ""  # no report: the scan did not run


def test_an_unexpected_error_is_exit_2_with_result_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def explode(environ: object, stdout: object) -> int:
        raise RuntimeError("boom")

    output = tmp_path / "output"
    output.write_text("", encoding="utf-8")
    monkeypatch.setattr(action_entrypoint, "run", explode)
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.delenv("GITOPS_CHECKER_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        action_entrypoint.main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().out == (
        "::error title=gitops-checker::internal error: RuntimeError: boom\n")
    assert parse_outputs(output.read_text(encoding="utf-8"))["result"] == "error"
