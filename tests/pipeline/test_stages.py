"""One pipeline: scan, drift and the Action's modes are configurations of it, and every finding
(drift findings too) goes through acceptance."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from checker import assemble, pipeline
from checker.action import entrypoint, inputs
from checker.errors import ConfigError
from checker.model import Report
from checker.options import DriftRunOptions, ScanOptions
from checker.pipeline import SCAN, Stages

Write = Callable[[str, str], Path]

DESIRED = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  mode: safe
"""
LIVE = DESIRED.replace("mode: safe", "mode: debug")
ACCEPT_DRIFT = """
acceptances:
  - id: RA-drift
    policy: drift.modified
    resources:
      - {namespace: shop, kind: ConfigMap, name: settings}
    justification: Debug mode is on during the incident review.
    owner: team-shop
    ticket: INC-7
    expires: "2099-01-01"
"""


def repo(write: Write, tmp_path: Path, acceptance: str | None = ACCEPT_DRIFT) -> Path:
    write("manifests/settings.yaml", DESIRED)
    write("live.yaml", LIVE)
    if acceptance is not None:
        write(".gitops-checker/acceptances/drift.yaml", acceptance)
    return tmp_path


def drift_options(root: Path) -> DriftRunOptions:
    return DriftRunOptions(paths=(root / "manifests",), root=root, snapshot=root / "live.yaml",
                           packs=("none",), cluster="prod")


def rules(report: Report) -> list[tuple[str, bool]]:
    return sorted((f.rule_id, f.suppression is not None) for f in report.findings)


def test_a_drift_finding_is_accepted_by_a_valid_acceptance(write: Write, tmp_path: Path) -> None:
    """The bug of issue 15: drift findings never reached acceptance, so a valid acceptance of
    drift.modified still failed the run."""
    root = repo(write, tmp_path)
    report = pipeline.drift(drift_options(root))
    assert rules(report) == [("drift.modified", True)]
    assert assemble.exit_code(report, report.fail_on) == 0
    (accepted,) = report.suppressed
    assert accepted.suppression is not None and "RA-drift" in accepted.suppression.source


def test_without_the_acceptance_the_drift_fails(write: Write, tmp_path: Path) -> None:
    root = repo(write, tmp_path, acceptance=None)
    report = pipeline.drift(drift_options(root))
    assert rules(report) == [("drift.modified", False)]
    assert assemble.exit_code(report, report.fail_on) == 1


def test_an_acceptance_for_another_object_accepts_nothing(write: Write, tmp_path: Path) -> None:
    root = repo(write, tmp_path, ACCEPT_DRIFT.replace("name: settings", "name: other"))
    report = pipeline.drift(drift_options(root))
    assert rules(report) == [("acceptance.stale", False), ("drift.modified", False)]


def test_scan_does_not_call_a_drift_acceptance_stale(write: Write, tmp_path: Path) -> None:
    """A scan looks for no drift: it cannot tell a drift acceptance is unused ("remove it"
    would be wrong advice). A drift run that ran and did not need it can."""
    root = repo(write, tmp_path)
    scanned = pipeline.scan(ScanOptions(paths=(root / "manifests",), root=root))
    assert "acceptance.stale" not in [f.rule_id for f in scanned.findings]
    write("live.yaml", DESIRED)  # in sync: the acceptance matched nothing that ran
    synced = pipeline.drift(drift_options(root))
    assert [f.rule_id for f in synced.findings] == ["acceptance.stale"]


def test_a_drift_run_does_not_call_a_policy_acceptance_stale(write: Write,
                                                            tmp_path: Path) -> None:
    root = repo(write, tmp_path, ACCEPT_DRIFT.replace("drift.modified", "pss-privileged"))
    report = pipeline.drift(drift_options(root))
    assert rules(report) == [("drift.modified", False)]
    scanned = pipeline.scan(ScanOptions(paths=(root / "manifests",), root=root))
    assert "acceptance.stale" in [f.rule_id for f in scanned.findings]


def test_both_is_one_run_with_one_acceptance_pass(write: Write, tmp_path: Path) -> None:
    """Admit and drift in one run: the drift acceptance is used (not stale), the drift finding
    accepted, and the scan's findings are there once."""
    root = repo(write, tmp_path)
    options = ScanOptions(paths=(root / "manifests",), root=root)
    both = pipeline.run(options, Stages(admit=True, drift=drift_options(root)))
    scanned = pipeline.scan(options)
    drift_rules = [(r, s) for r, s in rules(both) if r.startswith("drift.")]
    assert drift_rules == [("drift.modified", True)]
    assert [r for r in rules(both) if not r[0].startswith("drift.")] == rules(scanned)
    assert both.clusters == ("prod",) and both.drift_summary["managed"] == 1
    assert both.resources_checked == scanned.resources_checked


def test_the_actions_modes_are_stages(write: Write, tmp_path: Path) -> None:
    root = repo(write, tmp_path)
    env = {"GITHUB_WORKSPACE": str(root), "INPUT_PATHS": "manifests",
           "INPUT_SNAPSHOT": "live.yaml"}
    space = inputs.Workspace.from_env(env, "")
    for mode, admit in (("drift", False), ("both", True)):
        given = inputs.parse_inputs({**env, "INPUT_MODE": mode})
        options = inputs.build_options(given, space, "", env)
        stages = entrypoint.stages(given, options, space)
        assert stages.admit is admit and stages.drift is not None
        assert stages.drift.snapshot == (root / "live.yaml").resolve()
    given = inputs.parse_inputs({**env, "INPUT_MODE": "scan"})
    assert entrypoint.stages(given, inputs.build_options(given, space, "", env), space) is SCAN


def test_the_action_accepts_drift_in_mode_both(write: Write, tmp_path: Path) -> None:
    root = repo(write, tmp_path)
    output = tmp_path / "out.txt"
    output.write_text("", encoding="utf-8")
    env = {"GITHUB_WORKSPACE": str(root), "GITHUB_OUTPUT": str(output),
           "INPUT_PATHS": "manifests", "INPUT_SNAPSHOT": "live.yaml", "INPUT_MODE": "both",
           "INPUT_SARIF-FILE": "", "INPUT_JUNIT-FILE": "", "INPUT_MARKDOWN-FILE": "",
           "INPUT_JSON-FILE": "r.json"}
    log = io.StringIO()
    code = entrypoint.run(env, log)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    assert outputs["accepted-count"] == "1" and outputs["drift-count"] == "0", log.getvalue()
    data = json.loads((root / "r.json").read_text(encoding="utf-8"))
    assert [f["rule"] for f in data["accepted"]] == ["drift.modified"]
    assert "acceptance.stale" not in [f["rule"] for f in data["findings"]]
    assert code == 0, log.getvalue()


def test_drift_uses_the_config_the_pipeline_loaded(write: Write, tmp_path: Path) -> None:
    """drift.ignore comes from the loaded config (the file is not read a second time), and a
    bad entry names the config file and line."""
    root = repo(write, tmp_path, acceptance=None)
    write(".gitops-checker.yaml", "drift:\n  ignore:\n    - kind: ConfigMap\n"
                                  "      jsonPointers: [/data/mode]\n")
    assert rules(pipeline.drift(drift_options(root))) == []
    write(".gitops-checker.yaml", "drift:\n  ignore:\n    - kind: ConfigMap\n"
                                  "    - kindd: x\n")
    with pytest.raises(ConfigError, match=r"^\.gitops-checker\.yaml:4: unknown key"):
        pipeline.drift(drift_options(root))


def test_an_annotation_on_the_object_accepts_its_drift(write: Write, tmp_path: Path) -> None:
    annotated = DESIRED.replace("  namespace: shop\n", "  namespace: shop\n  annotations:\n"
                                "    gitops-checker.io/accept.drift.modified: incident 7\n")
    write("manifests/settings.yaml", annotated)
    write("live.yaml", annotated.replace("mode: safe", "mode: debug"))
    report = pipeline.drift(drift_options(tmp_path))
    assert rules(report) == [("drift.modified", True)]
    assert assemble.exit_code(report, report.fail_on) == 0
