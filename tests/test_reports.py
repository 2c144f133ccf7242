"""Every output format: golden files byte for byte, determinism, and real consumers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import junitparser
import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.model import Finding, Report, Rule, Severity, SourceLocation, Suppression
from checker.report import RENDERERS
from checker.report.sarif import render_accepted
from tests.conftest import GOLDEN, ROOT

REPO = GOLDEN / "repo"
SUFFIX = {"text": "txt", "json": "json", "sarif": "sarif", "junit": "xml", "markdown": "md"}
VALIDATOR = ROOT / "node_modules" / "@microsoft" / "sarif-multitool-linux" / "Sarif.Multitool"


def scan_args(fmt: str) -> list[str]:
    return ["scan", str(REPO / "manifests"), "--root", str(REPO), "--pack", "none",
            "--policies", str(REPO / "policies"), "--format", fmt]


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_golden_output(fmt: str, runner: CliRunner) -> None:
    """Each renderer's output for the golden repository matches the committed file."""
    result = runner.invoke(cli, scan_args(fmt))
    assert result.exit_code == 1, result.output  # the broken file and an error finding
    golden = GOLDEN / f"expected.{SUFFIX[fmt]}"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(result.stdout, encoding="utf-8")
    assert result.stdout == golden.read_text(encoding="utf-8")


def test_every_format_has_a_golden_file() -> None:
    """The registry and the golden files agree (adding a format needs a golden file)."""
    assert set(RENDERERS) == {"text", "json", "sarif", "junit", "markdown"}
    for fmt in RENDERERS:
        assert (GOLDEN / f"expected.{SUFFIX[fmt]}").is_file(), fmt


def test_output_is_deterministic_across_runs(runner: CliRunner, tmp_path: Path) -> None:
    """Two runs write byte-identical files in all formats at once."""
    outputs = []
    for n in range(2):
        out = tmp_path / str(n)
        args = [*scan_args("text"), "--sarif", str(out / "r.sarif"), "--junit", str(out / "r.xml"), "--markdown", str(out / "r.md"), "--json", str(out / "r.json")]
        runner.invoke(cli, args)
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == {"r.sarif", "r.xml", "r.md", "r.json"}


def test_sarif_points_at_field_line_and_has_rules(runner: CliRunner) -> None:
    """Results carry relative URIs, the offending field's line, rules with security-severity."""
    sarif = json.loads(runner.invoke(cli, scan_args("sarif")).stdout)
    run = sarif["runs"][0]
    assert sarif["version"] == "2.1.0"
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert rules["GoldenForbiddenImage/no-debug-images"]["properties"]["security-severity"] == "7.5"
    by_rule = {r["ruleId"]: r for r in run["results"]}
    forbidden = by_rule["GoldenForbiddenImage/no-debug-images"]
    loc = forbidden["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "manifests/apps.yaml"
    assert loc["region"]["startLine"] == 15  # the `image: busybox:debug` line
    assert loc["region"]["startColumn"] == 11
    assert forbidden["level"] == "error"
    label = by_rule["GoldenRequiredLabel/team-label"]
    assert label["level"] == "warning"
    assert label["locations"][0]["physicalLocation"]["region"]["startLine"] == 17  # first line of the resource
    parse = by_rule["input.parse-error"]
    assert parse["locations"][0]["physicalLocation"]["region"]["startLine"] == 5
    for result in run["results"]:
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert len(result["partialFingerprints"]["gitopsChecker/v1"]) == 32


def test_sarif_fingerprints_survive_line_moves(runner: CliRunner, tmp_path: Path) -> None:
    """Inserting lines above a finding changes its line, not its fingerprint."""
    shutil.copytree(REPO, tmp_path / "repo")
    apps = tmp_path / "repo" / "manifests" / "apps.yaml"
    args = ["scan", str(tmp_path / "repo" / "manifests"), "--root", str(tmp_path / "repo"),
            "--pack", "none", "--policies", str(tmp_path / "repo" / "policies"),
            "--format", "sarif"]

    def prints() -> dict[str, tuple[str, int]]:
        run = json.loads(runner.invoke(cli, args).stdout)["runs"][0]
        return {r["ruleId"]: (r["partialFingerprints"]["gitopsChecker/v1"],
                              r["locations"][0]["physicalLocation"]["region"]["startLine"])
                for r in run["results"] if r["ruleId"].startswith("GoldenForbidden")}

    before = prints()
    apps.write_text("# a comment\n# another\n" + apps.read_text(encoding="utf-8"), "utf-8")
    after = prints()
    key = "GoldenForbiddenImage/no-debug-images"
    assert before[key][0] == after[key][0]
    assert after[key][1] == before[key][1] + 2


def test_sarif_passes_microsoft_validator_with_github_rules(runner: CliRunner,
                                                            tmp_path: Path) -> None:
    """Microsoft's SARIF Multitool (rules Sarif;Ghas) reports no error for our SARIF."""
    if not VALIDATOR.exists():
        if os.environ.get("CI"):
            pytest.fail("SARIF validator not installed; scripts/test.sh installs it")
        pytest.skip("run `npm install --no-save @microsoft/sarif-multitool@5.7.0` first")
    files = []
    for name, args in {
        "golden": scan_args("sarif"),
        "example": ["scan", str(ROOT / "examples/gitops-repo"), "--root",
                    str(ROOT / "examples/gitops-repo"), "--policies",
                    str(ROOT / "examples/gitops-repo/policies"), "--format", "sarif",
                    "--sarif-category", "gitops/production"],
    }.items():
        path = tmp_path / f"{name}.sarif"
        path.write_text(runner.invoke(cli, args).stdout, encoding="utf-8")
        files.append(path)
    report = make_report()
    accepted = tmp_path / "accepted.sarif"
    accepted.write_text(render_accepted(report), encoding="utf-8")
    files.append(accepted)
    for path in files:
        out = tmp_path / f"{path.stem}.validation.sarif"
        proc = subprocess.run([str(VALIDATOR), "validate", "--rule-kind", "Sarif;Ghas",
                               "--output", str(out), str(path)],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results = json.loads(out.read_text(encoding="utf-8"))["runs"][0]["results"]
        problems = [(r["ruleId"], r.get("level", "warning"), r["message"]) for r in results
                    if r.get("level", "warning") in ("error", "warning")]
        assert problems == [], f"{path.name}: {problems}"


def test_junit_parses_with_a_real_consumer(runner: CliRunner, tmp_path: Path) -> None:
    """junitparser reads one suite per pack, failures with file and line, passing policies."""
    path = tmp_path / "r.xml"
    path.write_text(runner.invoke(cli, scan_args("junit")).stdout, encoding="utf-8")
    warn = tmp_path / "warn.xml"
    warn.write_text(runner.invoke(cli, [*scan_args("junit"), "--fail-on", "warning"]).stdout,
                    encoding="utf-8")
    warn_suite = {s.name: s for s in junitparser.JUnitXml.fromfile(str(warn))}["repository"]
    assert (warn_suite.failures, warn_suite.skipped) == (2, 1)
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = {s.name: s for s in xml}
    assert set(suites) == {"input", "repository"}
    repo_cases = {c.name: c for c in suites["repository"]}
    failing = sorted(c.name for c in repo_cases.values() if not c.is_passed
                     and not c.is_skipped)
    skipped = sorted(c.name for c in repo_cases.values() if c.is_skipped)
    # at the default --fail-on error, the warn and dryrun constraints are visible, not failing
    assert failing == ["GoldenForbiddenImage/no-debug-images: Deployment shop/web"]
    assert skipped == ["GoldenRequiredLabel/cost-center-label: ConfigMap shop/settings",
                       "GoldenRequiredLabel/team-label: Deployment shop/api"]
    image_case = repo_cases["GoldenForbiddenImage/no-debug-images: Deployment shop/web"]
    assert image_case.result[0].message == "image busybox:debug is forbidden"
    assert image_case._elem.get("file") == "manifests/apps.yaml"
    assert image_case._elem.get("line") == "15"
    assert suites["input"].failures == 1


def make_report() -> Report:
    """A small report built by hand: one active and one accepted finding."""
    rule = Rule("demo-rule", "Demo rule", Severity.ERROR, "Why.", "How to fix.", pack="demo")
    active = Finding("demo-rule", "policy", Severity.ERROR, "bad | thing",
                     SourceLocation("a.yaml", 3, 5, 3, 9), resource="Pod ns/a", pack="demo")
    accepted = Finding("demo-rule", "policy", Severity.ERROR, "accepted thing",
                       SourceLocation("b.yaml", 7, 1), resource="Pod ns/b", pack="demo",
                       suppression=Suppression("file", "legacy app", "team-a", "2027-01-31",
                                               "acceptances/a.yaml"))
    return Report(findings=(active, accepted), rules={"demo-rule": rule}, resources_checked=2,
                  files_checked=2, packs=("demo",), tool_version="0.0.0")


def test_accepted_findings_are_left_out_of_sarif_and_shown_elsewhere() -> None:
    """Accepted risks: absent from the upload SARIF, separate in Markdown/JSON/opt-in SARIF."""
    report = make_report()
    upload = json.loads(RENDERERS["sarif"](report))["runs"][0]["results"]
    assert [r["message"]["text"] for r in upload] == ["bad | thing (Pod ns/a)"]
    opt_in = json.loads(render_accepted(report))["runs"][0]["results"]
    assert opt_in[0]["suppressions"][0]["status"] == "accepted"
    assert "team-a" in opt_in[0]["suppressions"][0]["justification"]
    md = RENDERERS["markdown"](report)
    assert "### Accepted risks" in md and "legacy app" in md
    assert "bad \\| thing" in md  # table cells are escaped
    data = json.loads(RENDERERS["json"](report))
    assert [f["message"] for f in data["findings"]] == ["bad | thing"]
    assert data["accepted"][0]["acceptance"]["owner"] == "team-a"


def test_markdown_links_to_file_and_line_when_given_a_base() -> None:
    """With --link-base, Markdown findings link to the exact line."""
    report = make_report()
    linked = Report(**{**report.__dict__, "link_base": "https://github.com/o/r/blob/abc"})
    assert "[a.yaml:3](https://github.com/o/r/blob/abc/a.yaml#L3)" in RENDERERS["markdown"](linked)
