"""Expansion budgets per file and per run (issue 14, item 7), and policy selection made by the
repository (issue 14, item 2): neither can blind the check silently."""

from __future__ import annotations

import json
import resource
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.load import load_paths, yamlfile
from checker.model import Severity
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "gitops-repo"


def _near_limit_document(index: int) -> str:
    """A ConfigMap whose aliases expand to 900,000 values: under the per-document limit."""
    lines = ["a: &a [x,x,x,x,x,x,x,x,x,x]"]
    for i in range(1, 5):
        lines.append(f"{'abcde'[i]}: &{'abcde'[i]} [" + ",".join([f"*{'abcde'[i - 1]}"] * 10) + "]")
    lines.append("f: [" + ",".join(["*e"] * 7) + "]")
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{index}}}\ndata:\n"
            + "".join(f"  {line}\n" for line in lines))


def test_thirty_near_limit_documents_stop_at_the_file_budget(tmp_path: Path) -> None:
    """The issue's 7.8 KB file: 30 documents of 900k values each needed > 4 GB; now the file
    budget stops it after the first document, with a finding, in bounded memory."""
    text = "---\n".join(_near_limit_document(i) for i in range(30))
    assert len(text) < 10_000
    (tmp_path / "bomb.yaml").write_text(text)
    (tmp_path / "ok.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = load_paths([tmp_path], tmp_path)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert [r.name for r in result.resources] == ["c0", "ok"]  # the other file still loads
    (finding,) = result.findings
    assert finding.location.path == "bomb.yaml" and finding.severity is Severity.ERROR
    assert "expansion budget of the file" in finding.message
    assert 12 <= finding.location.line <= 21  # in the second document (lines 12-21)
    assert grown_mib < 1500


def test_run_budget_is_shared_by_every_file(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Many files each under the file budget cannot add up: the run budget stops them, and
    files without aliases are never charged."""
    monkeypatch.setattr(yamlfile, "MAX_EXPANSION_PER_FILE", 2_000)
    monkeypatch.setattr(yamlfile, "MAX_EXPANSION_PER_RUN", 5_000)
    body = "a0: &a0 [" + ", ".join(["x"] * 10) + "]\na1: [" + ", ".join(["*a0"] * 200) + "]\n"
    for i in range(6):  # each file spends about 1,500 - its own length
        (tmp_path / f"f{i}.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: f{i}}}\ndata:\n"
            + "".join("  " + line + "\n" for line in body.splitlines()))
    (tmp_path / "plain.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\ndata:\n"
        + "".join(f"  k{i}: v\n" for i in range(3_000)))
    result = load_paths([tmp_path], tmp_path)
    stopped = sorted(f.location.path for f in result.findings)
    loaded = sorted(r.name for r in result.resources)
    assert "plain" in loaded and stopped and "f0" in loaded
    assert all("budget of the run" in f.message for f in result.findings)
    assert len(loaded) + len(stopped) == 7  # every file: resources or a finding
    # each call of load_paths outside a scan has a budget of its own
    assert sorted(r.name for r in load_paths([tmp_path], tmp_path).resources) == loaded


ST = """apiVersion: securitytower.io/v1alpha1
kind: Cluster
metadata:
  name: prod
spec:
  policies:
    path: {path}
"""
PRIVILEGED = """apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: c
      image: nginx:1.27
      securityContext: {privileged: true}
"""


def test_security_tower_file_pointing_at_an_empty_folder_is_an_error(
        tmp_path: Path, runner: CliRunner) -> None:
    """It used to switch every built-in pack off: a privileged Pod passed. Now the scan says
    that no policy was left (the pipeline's input.no-policies), naming the file."""
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "pod.yaml").write_text(PRIVILEGED)
    (tmp_path / "empty").mkdir()
    (tmp_path / ".securitytower").mkdir()
    (tmp_path / ".securitytower" / "prod.yaml").write_text(ST.format(path="empty"))
    result = runner.invoke(cli, ["scan", str(tmp_path / "apps"), "--root", str(tmp_path),
                                 "--format", "json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    (finding,) = [f for f in report["findings"] if f["rule"].startswith("input.")]
    assert (finding["rule"], finding["severity"]) == ("input.no-policies", "error")
    assert finding["location"]["path"] == ".securitytower/prod.yaml"
    # the caller's --pack is the trusted choice: the packs run, no selection finding
    chosen = runner.invoke(cli, ["scan", str(tmp_path / "apps"), "--root", str(tmp_path),
                                 "--pack", "pss-baseline", "--format", "json"])
    rules = {f["rule"] for f in json.loads(chosen.stdout)["findings"]}
    assert "input.policy-selection" not in rules and "pss-privileged" in rules


def test_config_switching_packs_off_is_visible(tmp_path: Path, runner: CliRunner) -> None:
    """``packs: [none]`` in the repository's config: an error with nothing left to check
    (input.no-policies), a note when the repository's own policies run instead."""
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "pod.yaml").write_text(PRIVILEGED)
    (tmp_path / ".gitops-checker.yaml").write_text("defaults:\n  packs: [none]\n")
    args = ["scan", str(tmp_path / "apps"), "--root", str(tmp_path), "--format", "json"]
    result = runner.invoke(cli, args)
    findings = json.loads(result.stdout)["findings"]
    (finding,) = [f for f in findings if f["rule"].startswith("input.")]
    assert finding["rule"] == "input.no-policies" and result.exit_code == 1  # nothing left
    shutil.copytree(EXAMPLE / "policies", tmp_path / "policies")
    (tmp_path / ".gitops-checker.yaml").write_text(
        "defaults:\n  packs: [none]\n  policies: [policies]\n")
    result = runner.invoke(cli, [*args, "--fail-on", "never"])
    findings = json.loads(result.stdout)["findings"]
    (finding,) = [f for f in findings if f["rule"] == "input.policy-selection"]
    assert finding["severity"] == "note" and result.exit_code == 0
    assert "only the repository's own 1 policies were checked" in finding["message"]
