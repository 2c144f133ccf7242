"""The multi-cluster example, scanned end to end: per-cluster results, acceptances, reports."""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from checker.cli import cli
from checker.options import ScanOptions
from checker.pipeline import exit_code, scan
from checker.report import RENDERERS
from checker.report.sarif import render_accepted
from tests.conftest import ROOT, sarif_problems

REPO = ROOT
EXAMPLE = REPO / "examples" / "multi-cluster"
TODAY = "2026-11-27"
OURS = {"image-tag", "pss-privileged", "K8sRequiredLabels/workloads-must-have-owner"}


def run(*args: str) -> Any:
    result = CliRunner().invoke(cli, ["scan", str(EXAMPLE), "--root", str(EXAMPLE),
                                      "--today", TODAY, *args])
    return result


@functools.cache
def json_run() -> tuple[int, str]:
    """The example's JSON report (scanned once for the tests that only read it)."""
    result = run("--format", "json")
    return result.exit_code, result.output


def summary(f: dict[str, Any]) -> tuple[Any, ...]:
    acc = f.get("acceptance")
    return (f["cluster"], f["rule"], f["severity"], f["location"]["path"], f["location"]["line"],
            f["resource"], acc["source"] if acc else None)


def test_json_report_in_detail() -> None:
    code, output = json_run()
    assert code == 1, output  # an expired acceptance and its finding
    data = json.loads(output)
    assert data["clusters"] == ["staging", "production"]
    assert data["errors"] == []
    active = [summary(f) for f in data["findings"]
              if f["rule"] in OURS or f["rule"].startswith("acceptance.")]
    assert active == [
        ("", "acceptance.expiring", "warning", ".gitops-checker/acceptances/apps.yaml", 2, "",
         None),
        ("", "acceptance.stale", "warning", ".gitops-checker/acceptances/apps.yaml", 13, "",
         None),
        ("", "acceptance.expired", "error", ".gitops-checker/acceptances/platform.yaml", 16, "",
         None),
        ("production", "image-tag", "error", "infrastructure/production/cache.yaml", 27,
         "StatefulSet cache/redis", None),
    ]
    expired = next(f for f in data["findings"] if f["rule"] == "acceptance.expired")
    assert expired["category"] == "acceptance"
    assert expired["message"] == ("acceptance RA-2026-002 for policy image-tag expired on "
                                  "2026-10-31 (owner: team-data); renew it or fix the findings "
                                  "it covered")
    assert expired["details"] == {"acceptance": "RA-2026-002", "expires": "2026-10-31",
                                  "owner": "team-data", "policy": "image-tag"}
    stale = next(f for f in data["findings"] if f["rule"] == "acceptance.stale")
    assert "RA-2026-004" in stale["message"] and "team-batch" in stale["message"]
    accepted = [summary(f) for f in data["accepted"]]
    annotation_st = ("apps/podinfo/overlays/staging/namespace.yaml:7 "
                     "(securitytower.io/policy.exclusion.k8srequiredlabels)")
    annotation_own = ("infrastructure/shared/monitoring.yaml:56 "
                      "(gitops-checker.io/accept.pss-privileged)")
    ra1 = ".gitops-checker/acceptances/platform.yaml:3 (RA-2026-001)"
    assert accepted == [
        ("production", "pss-privileged", "error", "infrastructure/shared/monitoring.yaml", 29,
         "DaemonSet monitoring/node-exporter", ra1),
        ("production", "pss-privileged", "error", "infrastructure/shared/monitoring.yaml", 65,
         "Deployment monitoring/debug-toolbox", annotation_own),
        ("staging", "K8sRequiredLabels/workloads-must-have-owner", "error",
         "apps/podinfo/base/deployment.yaml", 1, "Deployment podinfo-staging/podinfo",
         annotation_st),
        # staging overrides image-tag to a warning; the acceptance expires in 7 days
        ("staging", "image-tag", "warning", "apps/podinfo/base/deployment.yaml", 20,
         "Deployment podinfo-staging/podinfo",
         ".gitops-checker/acceptances/apps.yaml:2 (RA-2026-003)"),
        ("staging", "pss-privileged", "error", "infrastructure/shared/monitoring.yaml", 29,
         "DaemonSet monitoring/node-exporter", ra1),
        ("staging", "pss-privileged", "error", "infrastructure/shared/monitoring.yaml", 65,
         "Deployment monitoring/debug-toolbox", annotation_own),
    ]
    ra3 = next(f for f in data["accepted"] if f["rule"] == "image-tag")
    assert ra3["acceptance"] == {
        "kind": "file", "owner": "team-web", "expires": "2026-12-04",
        "justification": "Staging follows the latest podinfo build on purpose to catch "
                         "regressions. (approved by jane.doe)",
        "source": ".gitops-checker/acceptances/apps.yaml:2 (RA-2026-003)",
        "approver": "jane.doe", "ticket": ""}
    assert data["summary"]["accepted"] == 6


def test_production_pins_podinfo_through_flux_substitution() -> None:
    data = json.loads(json_run()[1])
    podinfo = [f for f in data["findings"] + data["accepted"]
               if f["resource"].endswith("/podinfo") and f["rule"] == "image-tag"]
    assert [f["cluster"] for f in podinfo] == ["staging"]  # production: tag 6.7.1


def test_the_date_decides_expiry() -> None:
    report = scan(ScanOptions(paths=(EXAMPLE,), root=EXAMPLE, today=dt.date(2026, 10, 1)))
    rules = sorted(f.rule_id for f in report.active if f.rule_id.startswith("acceptance."))
    assert rules == ["acceptance.stale"]
    redis = [f for f in report.findings if f.resource == "StatefulSet cache/redis"
             and f.rule_id == "image-tag"]
    assert [f.suppression is not None for f in redis] == [True]
    assert exit_code(report, report_fail_on()) == 0
    later = scan(ScanOptions(paths=(EXAMPLE,), root=EXAMPLE, today=dt.date(2026, 10, 20)))
    assert sorted(f.rule_id for f in later.active if f.rule_id.startswith("acceptance.")) == [
        "acceptance.expiring", "acceptance.stale"]


def report_fail_on() -> Any:
    from checker.model import Severity
    return Severity.ERROR


def test_sarif_has_one_run_per_cluster_and_no_accepted_results(tmp_path: Path) -> None:
    main, accepted = tmp_path / "main.sarif", tmp_path / "accepted.sarif"
    result = run("--sarif", str(main), "--sarif-accepted", str(accepted),
                 "--sarif-category", "gitops")
    assert result.exit_code == 1
    log = json.loads(main.read_text())
    runs = {r["automationDetails"]["id"]: r for r in log["runs"]}
    assert list(runs) == ["gitops/", "gitops/staging/", "gitops/production/"]
    # the example's workloads are clean apart from the findings these tests are about
    assert [r["ruleId"] for r in runs["gitops/production/"]["results"]] == ["image-tag"]
    assert runs["gitops/staging/"]["results"] == []
    assert sorted(r["ruleId"] for r in runs["gitops/"]["results"]) == [
        "acceptance.expired", "acceptance.expiring", "acceptance.stale"]
    assert "suppressions" not in main.read_text()
    acc = json.loads(accepted.read_text())
    results = [r for run_ in acc["runs"] for r in run_["results"]]
    assert len(results) == 6
    assert all(r["suppressions"][0]["status"] == "accepted" for r in results)
    assert all(r["suppressions"][0]["kind"] == "external" for r in results)


def test_sarif_files_pass_microsofts_validator(tmp_path: Path) -> None:
    report = scan(ScanOptions(paths=(EXAMPLE,), root=EXAMPLE, today=dt.date(2026, 11, 27)))
    for name, text in (("main", RENDERERS["sarif"](report)), ("acc", render_accepted(report))):
        source = tmp_path / f"{name}.sarif"
        source.write_text(text)
        assert sarif_problems(source, tmp_path) == [], name


def test_junit_has_a_suite_per_cluster(tmp_path: Path) -> None:
    junit = tmp_path / "r.xml"
    run("--junit", str(junit))
    suites = {s.get("name"): s for s in ET.parse(junit).getroot().iter("testsuite")}
    assert {"staging", "production", "acceptance"} <= set(suites)
    prod_failures = [c.get("name") for c in suites["production"].iter("testcase")
                     if c.find("failure") is not None]
    assert prod_failures == ["image-tag: StatefulSet cache/redis"]
    assert not [c for c in suites["staging"].iter("testcase") if c.find("failure") is not None]


def test_markdown_has_a_section_per_cluster_and_accepted_risks() -> None:
    text = run("--format", "markdown").output
    assert "| staging | 0 | 0 | 0 | 4 |" in text
    assert "| production | 1 | 0 | 0 | 2 |" in text
    staging = text.index("### Cluster staging")
    production = text.index("### Cluster production")
    assert "✅ No findings." in text[staging:production]
    assert "StatefulSet cache/redis" in text[production:text.index("### Top findings")]
    assert "### Accepted risks" in text and "SEC-1412" in text


def test_group_by_pack_keeps_one_sarif_run() -> None:
    result = run("--format", "sarif", "--group-by", "pack")
    assert len(json.loads(result.output)["runs"]) == 1


def copy_example(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE, root)
    return root


def test_security_tower_files_alone_scan_the_repository_with_their_policies(
        tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    (root / ".gitops-checker.yaml").unlink()
    result = CliRunner().invoke(cli, ["scan", str(root), "--root", str(root), "--today", TODAY,
                                      "--format", "json"])
    data = json.loads(result.output)
    assert data["clusters"] == ["production", "staging"]
    assert data["packs"] == []  # only the Security Tower policies
    rules = {f["rule"] for f in data["findings"] + data["accepted"]}
    assert rules - {"K8sRequiredLabels/workloads-must-have-owner"} == {
        "acceptance.stale", "acceptance.expired", "acceptance.expiring"}
    assert not [f for f in data["findings"] if f["location"]["path"].startswith(".security")]
    # Without the config file both clusters scan the whole repository, so both see the
    # staging sync; Flux's targetNamespace puts its Deployment into podinfo-staging, whose
    # Namespace carries Security Tower's exclusion (this test used to expect active findings
    # from the overlay rendered without its Flux Kustomization: no namespace, no exclusion).
    owner = [f for f in data["accepted"] if f["rule"].startswith("K8sRequiredLabels")]
    assert sorted({f["cluster"] for f in owner}) == ["production", "staging"]
    assert {f["resource"] for f in owner} == {"Deployment podinfo-staging/podinfo"}
    assert {f["acceptance"]["kind"] for f in owner} == {"annotation"}
    assert result.exit_code == 1


def test_files_only_ignores_annotations(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    config = root / ".gitops-checker.yaml"
    config.write_text(config.read_text().replace("  warnDays: 14", "  warnDays: 14\n"
                                                 "  mode: files-only"))
    report = scan(ScanOptions(paths=(root,), root=root, today=dt.date(2026, 11, 27)))
    ignored = [f for f in report.active if f.rule_id == "acceptance.inline-ignored"]
    assert sorted(f.location.path for f in ignored) == [
        "apps/podinfo/overlays/staging/namespace.yaml", "infrastructure/shared/monitoring.yaml"]
    toolbox = [f for f in report.findings if f.resource == "Deployment monitoring/debug-toolbox"]
    assert toolbox and all(f.suppression is None for f in toolbox)


def test_bad_flags_and_config_exit_2(tmp_path: Path) -> None:
    bad_date = run("--today", "27.11.2026")
    assert bad_date.exit_code == 2 and "is not a date" in bad_date.output
    root = copy_example(tmp_path)
    (root / ".gitops-checker.yaml").write_text("clusters:\n  - name: a\n    colour: blue\n")
    result = CliRunner().invoke(cli, ["scan", str(root), "--root", str(root)])
    assert result.exit_code == 2
    assert ".gitops-checker.yaml:2: invalid config at clusters.0" in result.output
    missing = CliRunner().invoke(cli, ["scan", str(root), "--root", str(root), "--config",
                                       str(root / "nope.yaml")])
    assert missing.exit_code == 2 and "config file does not exist" in missing.output


def test_unknown_override_policy_names_the_cluster(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    config = root / ".gitops-checker.yaml"
    config.write_text(config.read_text().replace("      image-tag:\n        severity",
                                                 "      no-such-policy:\n        severity"))
    result = CliRunner().invoke(cli, ["scan", str(root), "--root", str(root)])
    assert result.exit_code == 2
    assert ".gitops-checker.yaml:11: invalid config: unknown policy id 'no-such-policy'" in (
        result.output)


def test_output_is_deterministic() -> None:
    assert json_run()[1] == run("--format", "json").output


def test_repository_without_config_is_one_unnamed_cluster() -> None:
    repo = REPO / "examples" / "gitops-repo"
    report = scan(ScanOptions(paths=(repo,), root=repo, policies=(repo / "policies",)))
    assert report.clusters == () and report.group_by == "pack"
    assert {f.cluster for f in report.findings} == {""}
    assert not [f for f in report.findings if f.category == "acceptance"]
    assert len(json.loads(RENDERERS["sarif"](report))["runs"]) == 1
