"""Every output format: golden files byte for byte, determinism, and real consumers."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import junitparser
import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.model import (
    Control,
    Exemption,
    Finding,
    Report,
    Rule,
    Severity,
    SourceLocation,
    Suppression,
)
from checker.report import FORMATS, RENDERERS
from checker.report.common import (
    FINGERPRINT,
    SORT_KEY,
    by_severity,
    dump_json,
    most_severe,
    severity_counts,
    standards,
)
from checker.report.json_format import ONE_LINE as ONE_LINE_KEYS
from checker.report.sarif import render_accepted
from tests.conftest import GOLDEN, ROOT, sarif_problems

REPO = GOLDEN / "basic" / "repo"
VALIDATOR = ROOT / "node_modules" / "@microsoft" / "sarif-multitool-linux" / "Sarif.Multitool"


def scan_args(fmt: str) -> list[str]:
    return ["scan", str(REPO / "manifests"), "--root", str(REPO), "--pack", "none",
            "--policies", str(REPO / "policies"), "--format", fmt]


def test_the_docs_format_table_is_the_registry() -> None:
    """docs/output-formats.md shows the table ``checker.report.docs_table`` derives from the
    registry, between its markers."""
    from checker.report import docs_table

    text = (ROOT / "docs" / "output-formats.md").read_text(encoding="utf-8")
    start, end = "<!-- formats: generated from checker.report.FORMATS -->\n", "<!-- /formats -->"
    assert start in text and end in text
    assert text.split(start, 1)[1].split(end, 1)[0] == docs_table()


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
        assert len(result["partialFingerprints"][FINGERPRINT]) == 32


def test_sarif_fingerprints_survive_line_moves(runner: CliRunner, tmp_path: Path) -> None:
    """Inserting lines above a finding changes its line, not its fingerprint."""
    shutil.copytree(REPO, tmp_path / "repo")
    apps = tmp_path / "repo" / "manifests" / "apps.yaml"
    args = ["scan", str(tmp_path / "repo" / "manifests"), "--root", str(tmp_path / "repo"),
            "--pack", "none", "--policies", str(tmp_path / "repo" / "policies"),
            "--format", "sarif"]

    def prints() -> dict[str, tuple[str, int]]:
        run = json.loads(runner.invoke(cli, args).stdout)["runs"][0]
        return {r["ruleId"]: (r["partialFingerprints"][FINGERPRINT],
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
    # the multi-cluster golden files: runs with exemption notifications and properties
    files += [GOLDEN / "multi-cluster" / "expected.sarif",
              GOLDEN / "multi-cluster" / "accepted.sarif"]
    for n, path in enumerate(files):
        out_dir = tmp_path / str(n)
        out_dir.mkdir()
        assert sarif_problems(path, out_dir) == [], path.name


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
    # the golden template runs on OPA (the default where it is installed), so there is no
    # policy.engine-difference warning and no "policy" suite
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


def varied_report(**changes: object) -> Report:
    """Findings that exercise escaping and the optional parts of every format."""
    rule = Rule("demo-rule", "Demo rule", Severity.ERROR, "Why.", "How to fix.", pack="demo",
                controls=(Control("cis-kubernetes", "5.1"), Control("nsa", "pods")))
    odd = 'ctl\x07\x1b tab\tnew\nline <&> "q" \'s\' é ☃ \U0001F600 \ufffe'
    findings = [
        Finding("demo-rule", "policy", Severity.ERROR, "plain", SourceLocation("a.yaml", 3, 5, 3, 9),
                resource="Pod ns/a", field_path=("spec", "containers", 0, "image"), pack="demo",
                controls=rule.controls, details={"constraint": "K/demo", "enforcementAction": "deny"}),
        Finding("demo-rule", "policy", Severity.WARNING, odd, SourceLocation(f"d/{odd}.yaml", 7),
                resource=f"Pod ns/{odd}", pack="demo", cluster="prod",
                details={"n": 1, "flag": True, "ratio": 1.5, "none": None}),
        Finding("demo-rule", "policy", Severity.NOTE, "numbers", SourceLocation("a.yaml", 9, 1),
                resource="Pod ns/c", pack="demo", details={"n": "1"}),
        Finding("drift.changed", "drift", Severity.ERROR, "image differs", SourceLocation("b.yaml", 2),
                resource="Deployment ns/d", cluster="stage",
                details={"field": "spec.image", "before": ["a", {"b": 1}], "after": {"x": [1, 2]}}),
        Finding("input.parse-error", "input", Severity.ERROR, "bad", SourceLocation("c.yaml", 1, 1)),
        # regions: multi-line without end column, end column before the start, line/column 0
        Finding("demo-rule", "policy", Severity.WARNING, "", SourceLocation("f.yaml", 5, 4, 8),
                pack="demo", controls=rule.controls, field_path=("metadata",)),
        Finding("demo-rule", "policy", Severity.WARNING, "x", SourceLocation("g.yaml", 2, 7, 2, 3),
                resource="Pod ns/g", pack="demo",
                controls=(Control("cis-kubernetes", "5.1"), Control("cis-kubernetes", "5.2"))),
        Finding("input.parse-error", "input", Severity.NOTE, "empty", SourceLocation("h.yaml", 0, 0)),
        Finding("demo-rule", "policy", Severity.ERROR, "accepted", SourceLocation("e.yaml", 4),
                resource="Pod ns/e", pack="demo",
                suppression=Suppression("file", f"legacy {odd}", "team-a", "", "acc.yaml")),
    ]
    report = Report(findings=tuple(sorted(findings, key=Finding.sort_key)),
                    rules={"demo-rule": rule}, resources_checked=5, files_checked=4,
                    packs=("demo",), clusters=("prod", "stage"), tool_version="1.0.0",
                    engines=("regorus 0.13.0 (shipped <templates>)", "opa v1 & co"))
    return replace(report, **changes)  # type: ignore[arg-type]


def test_json_writes_each_finding_on_one_line_with_every_field() -> None:
    """Every finding is one line of sorted-key JSON with all of its fields; the rest of the
    document is ``json.dumps(indent=2, sort_keys=True)``."""
    report = varied_report()
    text = RENDERERS["json"](report)
    data = json.loads(text)
    lines = [line.strip().rstrip(",") for line in text.splitlines() if line.startswith("    {")
             and '"location": ' in line]  # (rules are one line each too)
    assert len(lines) == len(data["findings"]) + len(data["accepted"]) == len(report.findings) == 9
    assert len([line for line in text.splitlines() if line.startswith('    {"controls"')]) == len(
        data["rules"]) == 1
    for line in lines:  # each line is exactly the C encoder's text of what it holds
        assert line == json.dumps(json.loads(line), sort_keys=True, separators=(", ", ": "))
    (plain,) = [f for f in data["findings"] if f["message"] == "plain"]
    assert plain == {
        "rule": "demo-rule", "category": "policy", "severity": "error", "message": "plain",
        "location": {"path": "a.yaml", "line": 3, "column": 5, "endLine": 3, "endColumn": 9},
        "resource": "Pod ns/a", "fieldPath": ["spec", "containers", 0, "image"],
        "controls": [{"standard": "cis-kubernetes", "id": "5.1"}, {"standard": "nsa", "id": "pods"}],
        "pack": "demo", "cluster": "", "details": {"constraint": "K/demo",
                                                    "enforcementAction": "deny"}, "ref": None}
    assert [f["message"] for f in data["findings"]] == [f.message for f in report.active]
    assert {f["location"]["endLine"] for f in data["findings"]} >= {None, 3}
    (accepted,) = data["accepted"]
    assert accepted["acceptance"] == {"kind": "file", "justification": accepted["acceptance"][
        "justification"], "owner": "team-a", "expires": "", "source": "acc.yaml",
        "approver": "", "ticket": ""}
    assert accepted["acceptance"]["justification"].startswith("legacy ctl")
    assert data["summary"]["bySeverity"] == report.counts()
    skeleton = {**data, "findings": [], "accepted": [], "rules": []}
    assert dump_json(skeleton, ONE_LINE_KEYS) == json.dumps(skeleton, indent=2,
                                                              sort_keys=True) + "\n"


def test_sarif_writes_one_line_per_result() -> None:
    """SARIF results are one line each, sorted-key JSON as the C encoder writes it; accepted
    ones (the opt-in file) carry their suppression."""
    report = varied_report(sarif_category="ci")
    for render, findings in ((RENDERERS["sarif"], report.active),
                             (render_accepted, report.suppressed)):
        text = render(report)
        run = json.loads(text)["runs"][0]
        lines = [line.strip().rstrip(",") for line in text.splitlines()
                 if line.startswith('        {"')]
        assert [json.loads(line) for line in lines] == run["results"]
        assert len(lines) == len(findings) > 0
        for line in lines:
            assert line == json.dumps(json.loads(line), sort_keys=True, separators=(", ", ": "))
        index = {r["id"]: i for i, r in enumerate(run["tool"]["driver"]["rules"])}
        for result, f in zip(run["results"], findings, strict=True):
            assert result["ruleId"] == f.rule_id and result["ruleIndex"] == index[f.rule_id]
            location = result["locations"][0]["physicalLocation"]
            assert location["artifactLocation"] == {"uri": f.location.path,
                                                    "uriBaseId": "%SRCROOT%"}
            assert location["region"]["startLine"] == max(f.location.line, 1)
            assert ("suppressions" in result) == (render is render_accepted)
    (plain,) = [r for r in json.loads(RENDERERS["sarif"](report))["runs"][0]["results"]
                if r["message"]["text"] == "plain (Pod ns/a)"]
    assert plain == {
        "level": "error", "message": {"text": "plain (Pod ns/a)"},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": "a.yaml", "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": 3, "startColumn": 5, "endLine": 3, "endColumn": 9}}}],
        "partialFingerprints": plain["partialFingerprints"], "properties": {"category": "policy"},
        "ruleId": "demo-rule", "ruleIndex": plain["ruleIndex"]}
    accepted = json.loads(render_accepted(report))["runs"][0]["results"]
    assert [r["suppressions"] for r in accepted] == [[{
        "kind": "external", "status": "accepted",
        "justification": f"{report.suppressed[0].suppression.justification} (owner team-a, "
                         "expires never)"}]] if report.suppressed[0].suppression else False


def test_sarif_splits_clusters_into_runs_with_their_own_category() -> None:
    """With clusters, each cluster gets a run (category ``<base>/<cluster>``) of its findings."""
    log = json.loads(RENDERERS["sarif"](varied_report(group_by="cluster", sarif_category="ci")))
    runs = {run["automationDetails"]["id"]: run for run in log["runs"]}
    assert list(runs) == ["ci/", "ci/prod/", "ci/stage/"]
    assert [r["properties"].get("cluster") for r in runs["ci/prod/"]["results"]] == ["prod"]
    assert [r["ruleId"] for r in runs["ci/stage/"]["results"]] == ["drift.changed"]
    assert len(runs["ci/"]["results"]) == 6


def _tree(element: ET.Element) -> tuple[object, ...]:
    return (element.tag, sorted(element.attrib.items()), (element.text or "").strip(),
            [_tree(child) for child in element])


def _junit_xml_model(document: str) -> list[Any]:
    """The suites and cases of a JUnit document as junit-xml ``TestSuite``/``TestCase``."""
    import junit_xml

    suites = []
    for suite in ET.fromstring(document.encode()):
        cases = []
        properties = {p.get("name", ""): p.get("value", "") for p in suite.iter("property")}
        for element in suite:
            if element.tag == "properties":
                continue
            line = element.get("line")
            case = junit_xml.TestCase(element.get("name", ""), element.get("classname"),
                                      file=element.get("file"),
                                      line=int(line) if line is not None else None)
            for outcome in element:
                if outcome.tag == "failure":
                    case.add_failure_info(message=outcome.get("message"), output=outcome.text,
                                          failure_type=outcome.get("type"))
                elif outcome.tag == "skipped":
                    case.add_skipped_info(message=outcome.get("message"), output=outcome.text)
            cases.append(case)
        suites.append(junit_xml.TestSuite(suite.get("name", ""), cases,
                                          properties=properties or None))
    return suites


@pytest.mark.parametrize("fail_on", [Severity.ERROR, Severity.NOTE, None])
def test_junit_matches_what_junit_xml_writes(fail_on: Severity | None) -> None:
    """junit-xml's own serializer, given the suites and cases of our document, writes the same
    document, except that illegal XML characters are gone from ours and attribute line breaks
    and tabs are kept as character references."""
    import junit_xml

    report = varied_report(fail_on=fail_on)
    ours = RENDERERS["junit"](report)
    theirs = str(junit_xml.to_xml_report_string(_junit_xml_model(ours), prettyprint=True,
                                                encoding="utf-8"))
    mine, lib = ET.fromstring(ours.encode()), ET.fromstring(theirs.encode())
    # junit-xml writes attribute line breaks and tabs raw: a reader turns them into spaces
    normalized = ET.fromstring(ours.replace("&#10;", " ").replace("&#9;", " ").encode())
    assert _tree(normalized) == _tree(lib)
    assert ours.replace("&#10;", "\n").replace("&#9;", "\t") == theirs
    assert '<property name="engines" value="regorus 0.13.0 (shipped &lt;templates&gt;); opa v1 &amp; co"/>' in ours
    assert "\x07" not in ours and "\x1b" not in ours and "\ufffe" not in ours
    messages = [e.get("message", "") for e in mine.iter()]
    assert any("new\nline" in m for m in messages)  # kept, not turned into a space
    xml = junitparser.JUnitXml.fromstring(ours)
    cases = [case for suite in xml for case in suite]
    assert len(cases) == 8  # every finding, drift as one case per resource, nothing else
    assert sum(1 for c in cases if c.is_skipped) == {Severity.ERROR: 5, Severity.NOTE: 0,
                                                     None: 8}[fail_on]


def test_markdown_ranks_and_counts_like_the_report() -> None:
    """Top findings and counts computed without sorting everything agree with the model."""
    report = varied_report(group_by="cluster")
    active = report.active
    assert [SORT_KEY(f) for f in active] == [f.sort_key() for f in active]
    for n in range(len(active) + 2):
        assert most_severe(active, n) == by_severity(active)[:n]
        assert most_severe(active[::-1], n) == by_severity(active)[:n]
    assert severity_counts(active) == report.counts()
    # a standard counts once per finding, however many of its controls the finding names
    assert standards(report) == {"cis-kubernetes": 3, "nsa": 2}
    md = RENDERERS["markdown"](report)
    assert "### Cluster prod" in md and "### Cluster stage" in md
    assert "| prod | 0 | 1 | 0 | 0 |" in md


def test_render_all_renders_each_format_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """``parallel.render_all`` renders each requested format once, however often it is named."""
    from checker import parallel

    calls: list[str] = []
    monkeypatch.setitem(FORMATS, "text", replace(
        FORMATS["text"], render=lambda r: calls.append("text") or "t"))
    empty = Report(findings=(), rules={}, resources_checked=0, files_checked=0)
    assert parallel.render_all(empty, ["text", "text"], FORMATS) == {"text": "t"}
    assert calls == ["text"]


def test_render_all_over_processes_gives_the_serial_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """A report large enough to render its formats in forked processes gets the same texts."""
    from checker import parallel

    base = varied_report()
    many = replace(base, findings=tuple(sorted(
        (replace(f, location=replace(f.location, line=f.location.line + 10 * n))
         for n in range(700) for f in base.findings), key=Finding.sort_key)))
    assert len(many.findings) >= parallel.PARALLEL_FINDINGS
    monkeypatch.setattr(parallel, "available_cpus", lambda: 3)
    groups: list[int] = []
    fork_map = parallel.fork_map

    def counted(func: Any, items: Any) -> Any:
        groups.append(len(items))
        return fork_map(func, items)

    monkeypatch.setattr(parallel, "fork_map", counted)
    forked = parallel.render_all(many, list(RENDERERS), FORMATS)
    assert groups == [3]  # three processes rendered the five formats
    monkeypatch.setattr(parallel, "PARALLEL_FINDINGS", len(many.findings) + 1)
    assert forked == parallel.render_all(many, list(RENDERERS), FORMATS)
    assert set(forked) == set(RENDERERS)


def test_exemptions_are_stated_in_sarif_and_junit() -> None:
    """Exempt namespaces: a SARIF run property and configuration notification, and a JUnit
    property on the policy's suite, naming policy, namespaces, cluster, skipped count, source."""
    exempt = (Exemption("", "demo-rule", ("kube-system", "ops"), "pack demo", 3),)
    report = replace(make_report(), exemptions=exempt)
    run = json.loads(RENDERERS["sarif"](report))["runs"][0]
    assert run["properties"]["gitopsChecker/exemptions"] == [
        {"cluster": "", "namespaces": ["kube-system", "ops"], "source": "pack demo",
         "policies": ["demo-rule"], "skipped": 3}]
    [note] = run["invocations"][0]["toolConfigurationNotifications"]
    assert note["descriptor"]["id"] == "gitops-checker/namespace-exempt"
    assert "kube-system, ops" in note["message"]["text"] and "3 objects" in note["message"]["text"]
    accepted_run = json.loads(render_accepted(report))["runs"][0]
    assert accepted_run["properties"]["gitopsChecker/exemptions"][0]["skipped"] == 3
    suite = ET.fromstring(RENDERERS["junit"](report)).find("testsuite[@name='demo']")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["exempt: demo-rule"] == ("namespaces kube-system, ops; 3 objects not checked; "
                                          "set by pack demo")
    plain = make_report()  # no exemption: nothing is added
    assert "gitopsChecker/exemptions" not in json.loads(RENDERERS["sarif"](plain))["runs"][0].get(
        "properties", {})
    assert "exempt:" not in RENDERERS["junit"](plain)


def test_exemptions_go_to_their_cluster_run_and_suite() -> None:
    """Grouped by cluster: each SARIF run and JUnit suite states only its cluster's exemptions."""
    rule = Rule("demo-rule", "Demo rule", Severity.ERROR, pack="demo")
    findings = tuple(Finding("demo-rule", "policy", Severity.ERROR, "bad", SourceLocation(
        f"{c}.yaml", 1), resource=f"Pod {c}/a", pack="demo", cluster=c) for c in ("dev", "prod"))
    report = Report(findings=findings, rules={"demo-rule": rule}, resources_checked=2,
                    files_checked=2, clusters=("dev", "prod"),
                    group_by="cluster", exemptions=(
                        Exemption("dev", "demo-rule", ("kube-system",), "pack demo", 1),
                        Exemption("prod", "demo-rule", ("infra",), ".gitops-checker.yaml:4", 2)))
    runs = json.loads(RENDERERS["sarif"](report))["runs"]
    seen = {run["automationDetails"]["id"]: [g["namespaces"] for g in run["properties"].get(
        "gitopsChecker/exemptions", [])] for run in runs}
    assert seen["gitops-checker/dev/"] == [["kube-system"]]
    assert seen["gitops-checker/prod/"] == [["infra"]]
    suites = {s.get("name"): {p.get("name"): p.get("value") for p in s.iter("property")}
              for s in ET.fromstring(RENDERERS["junit"](report)).iter("testsuite")}
    assert suites["prod"]["exempt: demo-rule"].endswith("set by .gitops-checker.yaml:4")
    assert "namespaces infra;" in suites["prod"]["exempt: demo-rule"]
    assert "namespaces kube-system;" in suites["dev"]["exempt: demo-rule"]
