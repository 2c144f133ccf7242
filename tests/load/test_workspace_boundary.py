"""The repository is a boundary (issue 14, item 3): what the pull request commits cannot make the
check read outside it, read forever, or write outside it; each refusal is a finding."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.config import load_config
from checker.errors import ConfigError
from checker.load import load_paths, workspace, yamlfile
from checker.model import Severity
from tests.conftest import needs_kustomize

Write = Callable[[str, str], Path]

SECRET = "token-that-must-never-leak"
POD = """apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c, image: "nginx:1.27"}]
"""


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder next to the repository holding a runner's secret as a manifest."""
    folder = tmp_path_factory.mktemp("runner-home")
    (folder / "kubeconfig.yaml").write_text(
        f"apiVersion: v1\nkind: Secret\nmetadata: {{name: leak}}\nstringData: {{t: {SECRET}}}\n")
    return folder


def _messages(result: object) -> str:
    findings = getattr(result, "findings", [])
    return "\n".join(f"{f.rule_id} {f.location.path}:{f.location.line} {f.message}"
                     for f in findings)


def test_symlinked_file_out_of_the_root_is_refused_and_named(tmp_path: Path,
                                                            outside: Path) -> None:
    """A committed link to a runner's file is a finding naming the link; nothing is read."""
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "pod.yaml").write_text(POD)
    (tmp_path / "apps" / "stolen.yaml").symlink_to(outside / "kubeconfig.yaml")
    result = load_paths([tmp_path], tmp_path)
    assert [r.name for r in result.resources] == ["p"]
    (finding,) = result.findings
    assert finding.rule_id == "input.not-checked" and finding.severity is Severity.ERROR
    assert finding.location.path == "apps/stolen.yaml"
    assert "outside the repository" in finding.message
    assert SECRET not in json.dumps([r.body for r in result.resources])
    assert [(c.state, c.kind, c.path) for c in result.coverage] == [
        ("not-checked", "file", "apps/stolen.yaml")]


def test_symlink_inside_the_root_is_still_followed(tmp_path: Path) -> None:
    """kubectl reads symlinked files; one that stays in the repository is checked."""
    (tmp_path / "base.yaml").write_text(POD)
    (tmp_path / "link.yaml").symlink_to("base.yaml")
    result = load_paths([tmp_path / "link.yaml"], tmp_path)
    assert result.findings == [] and [r.location.path for r in result.resources] == ["link.yaml"]


def test_symlinked_folder_out_of_the_root_is_not_walked(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "vendor").symlink_to(outside, target_is_directory=True)
    result = load_paths([tmp_path], tmp_path)
    assert result.resources == []
    (finding,) = result.findings
    assert finding.location.path == "apps/vendor" and finding.severity is Severity.ERROR
    assert "not followed" in finding.message
    # given directly (a config path, a CLI argument inside the root): refused the same way
    (again,) = load_paths([tmp_path / "apps" / "vendor"], tmp_path).findings
    assert again.location.path == "apps/vendor"


def test_dev_zero_and_fifos_are_never_read(tmp_path: Path) -> None:
    """Only regular files are opened: a link to /dev/zero or a FIFO is a finding, at once."""
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "pipe.yaml")
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(load_paths([tmp_path], tmp_path)),
                              daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "reading a device or FIFO blocked"
    result = outcome[0]
    text = _messages(result)
    assert "pipe.yaml:1" in text and "not a regular file (a FIFO)" in text
    assert "zero.yaml:1" in text
    assert all(f.severity is Severity.ERROR for f in getattr(result, "findings"))  # noqa: B009


def test_size_limit_is_checked_before_reading(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlfile, "MAX_FILE_BYTES", 1024)
    (tmp_path / "big.yaml").write_text(POD + "#" * 4096 + "\n")
    reads: list[int] = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    (finding,) = load_paths([tmp_path], tmp_path).findings
    assert "larger than" in finding.message and finding.severity is Severity.ERROR
    assert reads == []  # fstat said so: not one byte was read
    # a file larger than its stat said (procfs says 0 bytes) stops at the limit
    status = Path("/proc/self/status")
    if status.exists():
        assert status.stat().st_size == 0
        with pytest.raises(workspace.Refused, match="larger than"):
            workspace.read_bytes(status, None, 64)


def test_cli_refuses_output_files_that_a_symlink_takes_out_of_the_root(
        tmp_path: Path, outside: Path, runner: CliRunner) -> None:
    """``--sarif report.sarif`` must not overwrite a runner's file through a committed link."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pod.yaml").write_text(POD)
    victim = outside / "bashrc"
    victim.write_text("original\n")
    (repo / "report.sarif").symlink_to(victim)
    (repo / "out").symlink_to(outside, target_is_directory=True)
    for flag, target in (("--sarif", repo / "report.sarif"), ("--junit", repo / "out" / "j.xml"),
                         ("--json", repo / "out" / "bashrc"),
                         ("--sarif-accepted", repo / "report.sarif")):
        result = runner.invoke(cli, ["scan", str(repo), "--root", str(repo), flag, str(target)])
        assert result.exit_code == 2, (flag, result.output)
        assert "outside the repository root" in result.stderr
    assert victim.read_text() == "original\n" and sorted(os.listdir(outside)) == [
        "bashrc", "kubeconfig.yaml"]
    # inside the root, and outside it when the caller names such a path itself: written
    ok = runner.invoke(cli, ["scan", str(repo / "pod.yaml"), "--root", str(repo), "--sarif",
                             str(repo / "reports" / "a.sarif"), "--json",
                             str(outside / "explicit.json"), "--fail-on", "never"])
    assert ok.exit_code == 0, ok.output
    assert (repo / "reports" / "a.sarif").is_file() and (outside / "explicit.json").is_file()


@needs_kustomize
def test_kustomize_is_not_run_on_inputs_that_leave_the_root(tmp_path: Path,
                                                           outside: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "kustomization.yaml").write_text("resources: [pod.yaml, extra.yaml]\n")
    (app / "pod.yaml").write_text(POD)
    (app / "extra.yaml").symlink_to(outside / "kubeconfig.yaml")
    result = load_paths([app], tmp_path)
    assert result.resources == []
    by_path = {f.location.path: f for f in result.findings}
    assert set(by_path) <= {"app/kustomization.yaml", "app/extra.yaml"}  # the link, read alone
    finding = by_path["app/kustomization.yaml"]
    assert finding.severity is Severity.ERROR
    assert "app/extra.yaml resolves to" in finding.message and "not rendered" in finding.message
    assert SECRET not in _messages(result)
    # a base folder linked from outside is refused as well
    (app / "extra.yaml").unlink()
    (app / "kustomization.yaml").write_text("resources: [pod.yaml, base]\n")
    (outside / "kustomization.yaml").write_text("resources: [kubeconfig.yaml]\n")
    (app / "base").symlink_to(outside, target_is_directory=True)
    again = load_paths([app], tmp_path)
    assert again.resources == []
    assert sorted(f.location.path for f in again.findings) == [
        "app/base", "app/kustomization.yaml"]  # the folder is not walked, nor rendered


def test_config_acceptances_and_policies_read_from_the_repo_obey_the_boundary(
        tmp_path: Path, outside: Path, runner: CliRunner) -> None:
    (outside / "config.yaml").write_text("defaults: {packs: [none]}\n")
    (tmp_path / ".gitops-checker.yaml").symlink_to(outside / "config.yaml")
    with pytest.raises(ConfigError, match="outside the repository"):
        load_config(tmp_path)
    (tmp_path / ".gitops-checker.yaml").unlink()
    (tmp_path / "pod.yaml").write_text(POD)
    accept = tmp_path / ".gitops-checker" / "acceptances"
    accept.mkdir(parents=True)
    (accept / "all.yaml").symlink_to(outside / "kubeconfig.yaml")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "t.yaml").symlink_to(outside / "kubeconfig.yaml")
    result = runner.invoke(cli, ["scan", str(tmp_path / "pod.yaml"), "--root", str(tmp_path),
                                 "--policies", str(tmp_path / "policies"), "--format", "json"])
    assert result.exit_code == 2  # the policies folder cannot be read: a tool error
    assert "policies/t.yaml" in result.stderr and "outside the repository" in result.stderr
    report = json.loads(result.stdout)
    assert SECRET not in result.stdout + result.stderr
    assert any(f["location"]["path"] == ".gitops-checker/acceptances/all.yaml"
               and "outside the repository" in f["message"] for f in report["findings"])


def test_helm_chart_with_a_link_out_of_the_root_is_not_rendered(tmp_path: Path,
                                                                outside: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "templates" / "leak.yaml").symlink_to(outside / "kubeconfig.yaml")
    result = load_paths([tmp_path], tmp_path)
    assert result.resources == []
    (finding,) = result.findings
    assert finding.location.path == "chart/Chart.yaml" and finding.severity is Severity.ERROR
    assert "chart/templates/leak.yaml resolves to" in finding.message
    assert SECRET not in _messages(result)


@pytest.mark.parametrize("command", [
    ["images", "{repo}", "--root", "{repo}", "--sarif", "{link}"],
    ["compliance", "--root", "{repo}", "--output", "{link}"],
    ["audit", "{repo}", "--repo", "{repo}", "--output", "{link}"],
    ["drift", "{repo}", "--root", "{repo}", "--snapshot", "{repo}/pod.yaml", "--junit", "{link}"],
    ["snapshot", "{repo}", "--root", "{repo}", "--out", "{link}"],
], ids=lambda c: c[0])
def test_every_command_refuses_output_through_a_link_out_of_the_root(
        tmp_path: Path, outside: Path, runner: CliRunner, command: list[str]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pod.yaml").write_text(POD)
    victim = outside / "bashrc"
    victim.write_text("original\n")
    (repo / "out.txt").symlink_to(victim)
    args = [a.format(repo=repo, link=repo / "out.txt") for a in command]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "outside the repository root" in result.stderr
    assert victim.read_text() == "original\n"


@pytest.mark.parametrize("link", ["exported", "exported/templates"])
def test_policies_export_does_not_write_or_delete_through_a_link_out(
        tmp_path: Path, outside: Path, link: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A committed ``exported -> ~/.ssh`` (or a sub-folder link) is refused; nothing outside
    is written, and a generated-looking file there is not deleted."""
    from checker.policy.export import GENERATED_HEADER

    repo = tmp_path / "repo"
    (repo / link).parent.mkdir(parents=True, exist_ok=True)
    victim = outside / "old.yaml"
    victim.write_text(GENERATED_HEADER + "kind: X\n")
    (repo / link).symlink_to(outside, target_is_directory=True)
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(cli, ["policies", "export", "--pack", "pss-baseline",
                                      "--out", "exported"])
    assert result.exit_code == 2, result.output
    assert "outside the repository root" in result.output
    assert sorted(p.name for p in outside.iterdir()) == ["kubeconfig.yaml", "old.yaml"]


def test_policies_docs_does_not_write_through_a_link_out(
        tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pages").symlink_to(outside, target_is_directory=True)
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(cli, ["policies", "docs", "--out", "pages"])
    assert result.exit_code == 2, result.output
    assert sorted(p.name for p in outside.iterdir()) == ["kubeconfig.yaml"]
