"""Coverage is a result: every format carries the ledger; a run that checked nothing, or a
cluster without policies, is never a pass; ``gitops-checker inputs`` prints the plan."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.model import Coverage, Finding, Report, Severity, SourceLocation
from checker.report import RENDERERS, json_format, markdown, sarif, text
from tests.conftest import needs_kustomize, sarif_problems

Write = Callable[[str, str], Path]

LEDGER = (
    Coverage("followed", "flux", "Flux Kustomization flux-system/apps", "clusters/a.yaml", 1,
             "GitRepository flux-system/flux-system, path apps"),
    Coverage("not-checked", "flux", "Flux Kustomization flux-system/oci", "clusters/a.yaml",
             9, "it reads OCIRepository flux-system/oci, which is not this repository"),
    Coverage("rendered", "kustomize", "apps/prod", "apps/prod/kustomization.yaml", 1,
             produced=3),
)


def report(coverage: tuple[Coverage, ...] = LEDGER) -> Report:
    finding = Finding("input.not-checked", "input", Severity.WARNING,
                      "Flux Kustomization flux-system/oci was not checked: it reads ...",
                      SourceLocation("clusters/a.yaml", 9))
    return Report(findings=(finding,), rules={}, resources_checked=3, files_checked=2,
                  tool_version="1.0.0", coverage=coverage)


def test_json_lists_every_entry_and_the_counts() -> None:
    data = json.loads(json_format.render(report()))
    assert data["coverage"]["counts"] == {"rendered": 1, "followed": 1, "not-checked": 1}
    assert [e["state"] for e in data["coverage"]["entries"]] == [
        "followed", "not-checked", "rendered"]
    assert data["coverage"]["entries"][2] == {
        "state": "rendered", "kind": "kustomize", "what": "apps/prod",
        "path": "apps/prod/kustomization.yaml", "line": 1, "reason": "", "produced": 3}


def test_markdown_has_an_inputs_section_not_checked_first() -> None:
    out = markdown.render(report())
    section = out[out.index("### Inputs"):]
    assert "1 rendered, 1 followed, 1 not checked." in section
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]
    assert rows[0].startswith("| ⚠️ not checked | flux | Flux Kustomization flux-system/oci | "
                              "`clusters/a.yaml:9` | it reads OCIRepository")
    assert rows[1] == ("| followed | flux | Flux Kustomization flux-system/apps | "
                       "`clusters/a.yaml:1` | GitRepository flux-system/flux-system, path apps |")
    assert rows[2] == ("| rendered | kustomize | apps/prod | `apps/prod/kustomization.yaml:1` "
                       "| 3 |")
    assert "### Inputs" not in markdown.render(report(()))


def test_text_prints_one_line() -> None:
    lines = text.render(report()).splitlines()
    assert lines[-2] == ("inputs: 1 rendered, 1 followed, 1 not checked (gitops-checker inputs "
                         "lists them)")
    assert lines[-1].startswith("3 resources in 2 files checked: ")  # the summary stays last


def test_sarif_carries_the_ledger_as_notifications_and_a_run_property() -> None:
    run = json.loads(sarif.render(report()))["runs"][0]
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is True
    (note,) = invocation["toolExecutionNotifications"]
    assert note["descriptor"] == {"id": "input.not-checked"}
    assert note["locations"][0]["physicalLocation"]["region"] == {"startLine": 9}
    assert note["message"]["text"].startswith("Flux Kustomization flux-system/oci was not "
                                              "checked: it reads OCIRepository")
    assert len(run["properties"]["gitopsChecker/coverage"]["entries"]) == 3
    assert "invocations" not in json.loads(sarif.render(report(())))["runs"][0]


def test_sarif_with_coverage_passes_the_microsoft_validator(tmp_path: Path) -> None:
    path = tmp_path / "coverage.sarif"
    path.write_text(sarif.render(report()), encoding="utf-8")
    assert sarif_problems(path, tmp_path) == []


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_every_format_is_byte_identical_for_the_same_ledger(fmt: str) -> None:
    assert RENDERERS[fmt](report()) == RENDERERS[fmt](report())


def test_zero_resources_is_never_a_pass(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("nothing here\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["scan", str(tmp_path), "--root", str(tmp_path),
                                      "--format", "json"])
    assert result.exit_code == 1, result.output
    (finding,) = json.loads(result.stdout)["findings"]
    assert finding["rule"] == "input.nothing-checked" and finding["severity"] == "error"


def test_zero_policies_is_never_a_pass(write: Write, tmp_path: Path) -> None:
    write("pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n")
    result = CliRunner().invoke(cli, ["scan", str(tmp_path), "--root", str(tmp_path),
                                      "--pack", "none", "--format", "json"])
    assert result.exit_code == 1, result.output
    (finding,) = json.loads(result.stdout)["findings"]
    assert finding["rule"] == "input.no-policies"


def test_security_tower_cluster_with_an_empty_policies_folder_fails(write: Write,
                                                                     tmp_path: Path) -> None:
    write(".securitytower/cluster.yaml", """
        apiVersion: securitytower.io/v1alpha1
        kind: Cluster
        metadata: {name: production}
        spec:
          policies: {path: policies}
    """)
    (tmp_path / "policies").mkdir()
    write("apps/pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n")
    result = CliRunner().invoke(cli, ["scan", str(tmp_path / "apps"), "--root", str(tmp_path),
                                      "--format", "json"])
    assert result.exit_code == 1, result.output
    (finding,) = json.loads(result.stdout)["findings"]
    assert finding["rule"] == "input.no-policies" and finding["cluster"] == "production"
    assert finding["location"]["path"] == ".securitytower/cluster.yaml"


@needs_kustomize
def test_inputs_command_prints_the_render_plan(write: Write, tmp_path: Path) -> None:
    write("base/kustomization.yaml", "resources: [cm.yaml]\n")
    write("base/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    write("clusters/prod/apps.yaml", """
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: apps, namespace: flux-system}
        spec:
          path: ./base
          sourceRef: {kind: GitRepository, name: flux-system}
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: remote, namespace: flux-system}
        spec:
          path: ./
          sourceRef: {kind: OCIRepository, name: remote}
    """)
    args = ["inputs", str(tmp_path / "clusters/prod"), "--root", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "inputs:",
        "  not-checked flux      Flux Kustomization flux-system/remote "
        "(clusters/prod/apps.yaml:13): not checked: it reads OCIRepository "
        "flux-system/remote, which is not this repository",
        "  rendered    flux      Flux Kustomization flux-system/apps (path base) "
        "(clusters/prod/apps.yaml:1): 1 object",
        "  followed    flux      Flux Kustomization flux-system/apps "
        "(clusters/prod/apps.yaml:1): GitRepository flux-system/flux-system, path base",
        "  total: 3 objects from 3 files; 1 rendered, 1 followed, 1 not checked",
    ]
    data = json.loads(CliRunner().invoke(cli, [*args, "--format", "json"]).stdout)
    (cluster,) = data["clusters"]
    assert cluster["counts"] == {"rendered": 1, "followed": 1, "not-checked": 1}
    assert cluster["objects"] == 3
