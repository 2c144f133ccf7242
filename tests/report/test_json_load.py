"""The JSON report holds the whole Report: structured object refs, rules, settings; ``load``
gives the Report back, so every format rendered from a loaded JSON report is the original."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from checker.assemble import assemble
from checker.model import (
    ClusterPart,
    Control,
    Exemption,
    Finding,
    ObjectRef,
    Report,
    Rule,
    Severity,
    Shard,
    SourceLocation,
    Suppression,
)
from checker.report import FORMATS, RENDERERS, json_format
from checker.report.sarif import render_accepted
from tests.conftest import GOLDEN

SCENARIOS = sorted(p.name for p in GOLDEN.iterdir() if (p / "expected.json").is_file())


def test_there_are_golden_scenarios_to_load() -> None:
    assert {"basic", "multi-cluster", "cel", "admission", "drift"} <= set(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_format_rendered_from_the_loaded_golden_json_is_its_golden_file(
        scenario: str) -> None:
    text = (GOLDEN / scenario / "expected.json").read_text(encoding="utf-8")
    report = json_format.load(text, f"{scenario}/expected.json")
    for name, fmt in FORMATS.items():
        golden = (GOLDEN / scenario / f"expected.{fmt.suffix}").read_text(encoding="utf-8")
        assert fmt.render(report) == golden, f"{scenario}: {name} differs"
    accepted = GOLDEN / scenario / "accepted.sarif"
    if accepted.is_file():
        assert render_accepted(report) == accepted.read_text(encoding="utf-8")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_golden_json_matches_the_published_schema(scenario: str) -> None:
    data = json.loads((GOLDEN / scenario / "expected.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(json_format.schema()).validate(data)


def test_every_finding_on_an_object_carries_its_object_ref_as_data() -> None:
    data = json.loads((GOLDEN / "multi-cluster" / "expected.json").read_text(encoding="utf-8"))
    findings = [*data["findings"], *data["accepted"]]
    with_ref = [f for f in findings if f["ref"] is not None]
    assert len(with_ref) >= 5
    for f in with_ref:
        ref = f["ref"]
        assert set(ref) == {"cluster", "group", "version", "kind", "namespace", "name"}
        assert ref["cluster"] == f["cluster"]
        assert f["resource"].startswith(ref["kind"] + " ")
    kruise_like = {(f["ref"]["group"], f["ref"]["kind"]) for f in with_ref}
    assert {("apps", "Deployment"), ("apps", "DaemonSet")} <= kruise_like
    assert [f for f in findings if f["ref"] is None], "file findings have ref null"


def _odd_report() -> Report:
    """Every field a renderer reads, with the values that are easy to lose on the way."""
    ref = ObjectRef("prod", "apps.kruise.io", "v1beta1", "StatefulSet", "db", "main")
    core = ObjectRef("prod", "", "v1", "Namespace", "", "db")
    controls = (Control("cis-kubernetes", "5.2.2", "Minimize privileged"), Control("x", "1"))
    findings = (
        Finding("p1", "policy", Severity.ERROR, "privileged \"x\" <b>|</b>\n✓",
                SourceLocation("a b/ü.yaml", 3, 5, 3, 9), resource="StatefulSet db/main",
                field_path=("spec", "containers", 0, "securityContext"), controls=controls,
                pack="pss", cluster="prod", details={"n": 1, "list": [1, "two", None],
                                                     "flag": True, "nested": {"a": 1.5}},
                ref=ref),
        Finding("p1", "policy", Severity.WARNING, "accepted one", SourceLocation("x.yaml", 9),
                resource="Namespace db", pack="pss", cluster="prod", ref=core,
                suppression=Suppression("file", "why", "team", "2027-01-01", "acc.yaml:3",
                                        approver="ciso", ticket="SEC-1")),
        Finding("input.parse-error", "input", Severity.ERROR, "broken",
                SourceLocation("bad.yaml", 1, 1)),
        # a control whose title is not the rule's: written with its title
        Finding("p1", "policy", Severity.NOTE, "other title", SourceLocation("y.yaml", 2),
                controls=(Control("cis-kubernetes", "5.2.2", "Another title"),
                          Control("cis-kubernetes", "9.9", "")), pack="pss"),
    )
    rules = {"p1": Rule("p1", "Privileged", Severity.ERROR, "desc", "help", "pss", controls,
                        "docs/policies/p1.md")}
    return assemble(Report(
        findings=findings, rules=rules, resources_checked=7, files_checked=3,
        packs=("pss",), clusters=("prod", "dev"), tool_version="9.9", errors=("boom",),
        link_base="https://example.invalid/o/r/blob/abc", sarif_category="cat",
        group_by="cluster", fail_on=None, engines=("opa 1 (repository)",),
        exemptions=(Exemption("prod", "p1", ("kube-system",), "pack pss", 4),
                    Exemption("prod", "p2", ("kube-system",), "pack pss", 2)),
        shard=Shard(clusters=("prod", "dev", "qa"), parts=(ClusterPart(
            "prod", ("pss",), ("opa 1 (repository)",), ("boom",), ("p1",)),),
            files=("a b/ü.yaml", "x.yaml"), used=("acc.yaml:3:RA-1",), index=1, count=2)))


def test_load_gives_the_report_back_field_by_field() -> None:
    report = _odd_report()
    back = json_format.load(json_format.render(report))
    assert back.findings == report.findings
    assert [f.details for f in back.findings] == [f.details for f in report.findings]
    kruise = [f.ref for f in back.findings if f.ref is not None and f.ref.kind == "StatefulSet"]
    assert kruise == [ObjectRef("prod", "apps.kruise.io", "v1beta1", "StatefulSet", "db",
                                "main")]
    assert kruise[0].version == "v1beta1"  # not part of equality: checked on its own
    for name in ("rules", "resources_checked", "files_checked", "packs", "clusters",
                 "tool_version", "errors", "link_base", "sarif_category", "group_by",
                 "fail_on", "engines", "exemptions", "shard", "selections", "coverage"):
        assert getattr(back, name) == getattr(report, name), name


def test_control_titles_are_the_rules_unless_a_finding_says_otherwise() -> None:
    data = json.loads(json_format.render(_odd_report()))
    controls = {f["message"]: f["controls"] for f in data["findings"]}
    assert controls["other title"] == [
        {"standard": "cis-kubernetes", "id": "5.2.2", "title": "Another title"},
        {"standard": "cis-kubernetes", "id": "9.9", "title": ""}]
    assert controls["privileged \"x\" <b>|</b>\n✓"] == [
        {"standard": "cis-kubernetes", "id": "5.2.2"}, {"standard": "x", "id": "1"}]
    (rule,) = [r for r in data["rules"] if r["id"] == "p1"]
    assert rule["controls"][0]["title"] == "Minimize privileged"


def test_every_format_round_trips_through_json() -> None:
    report = _odd_report()
    back = json_format.load(json_format.render(report))
    for name, render in RENDERERS.items():
        assert render(back) == render(report), name
    assert render_accepted(back) == render_accepted(report)


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "report.json:1: not JSON"),
    ("[]", "report.json: (document): [] is not of type 'object'"),
    ('{"tool": {"name": "other"}}', "report.json: "),
])
def test_bad_documents_are_refused_naming_the_file(text: str, message: str) -> None:
    with pytest.raises(json_format.LoadError) as err:
        json_format.load(text, "report.json")
    assert str(err.value).startswith(message)


def test_a_broken_finding_is_refused_naming_where() -> None:
    data = json.loads(json_format.render(_odd_report()))
    del data["findings"][1]["location"]["line"]
    with pytest.raises(json_format.LoadError) as err:
        json_format.load(json.dumps(data), "shard-2.json")
    assert str(err.value).startswith("shard-2.json: findings/1/location: 'line' is a "
                                     "required property")


def test_unsharded_reports_have_no_shard_section(tmp_path: Path) -> None:
    data = json.loads((GOLDEN / "multi-cluster" / "expected.json").read_text(encoding="utf-8"))
    assert "shard" not in data
    assert "shard" in json.loads(json_format.render(_odd_report()))


def test_load_reads_the_delta_against_a_base() -> None:
    """``baseline`` on findings and ``delta`` (base, fixed) come back when a report has them."""
    data = json.loads(json_format.render(_odd_report()))
    data["findings"][0]["baseline"] = "new"
    fixed = {**data["findings"][1], "baseline": "absent"}
    data["delta"] = {"base": "0123abc", "counts": {"new": 1}, "fixed": [fixed]}
    jsonschema.Draft7Validator(json_format.schema()).validate(data)
    back = json_format.load(json.dumps(data))
    assert back.base == "0123abc"
    assert [f.baseline for f in back.fixed] == ["absent"]
    assert {f.baseline for f in back.findings} == {"new"}  # with a base, each one is classed
    data["findings"][0]["baseline"] = "newish"
    with pytest.raises(json_format.LoadError, match="findings/0/baseline"):
        json_format.load(json.dumps(data))


def _set(path: tuple[str | int, ...], value: object) -> Any:
    def change(data: dict[str, Any]) -> None:
        node: Any = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _drop(path: tuple[str | int, ...]) -> Any:
    def change(data: dict[str, Any]) -> None:
        node: Any = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return change


@pytest.mark.parametrize("change", [
    _set(("findings", 0, "location", "line"), "3"),
    _set(("findings", 0, "location", "line"), True),
    _set(("findings", 0, "location", "endLine"), 2.5),
    _set(("findings", 0, "severity"), "fatal"),
    _set(("findings", 0, "fieldPath"), ["spec", 1.5]),
    _set(("findings", 0, "ref"), {"kind": "Pod"}),
    _set(("findings", 0, "controls"), [{"standard": "x"}]),
    _set(("findings", 0, "controls"), [{"standard": "x", "id": "1", "title": 3}]),
    _set(("findings", 0, "details"), []),
    _set(("findings", 0, "extra"), 1),
    _set(("findings", 0, "acceptance"), {}),
    _drop(("findings", 0, "message")),
    _drop(("accepted", 0, "acceptance")),
    _set(("accepted", 0, "acceptance", "ticket"), 7),
    _set(("findings", 1), "not a finding"),
    _set(("rules", 0, "severity"), "fatal"),
    _set(("summary", "files"), "3"),
])
def test_the_plain_check_refuses_what_the_schema_refuses(change: Any) -> None:
    """Findings are checked in plain Python for speed: each broken one the schema refuses is
    refused by ``load`` too, naming the place."""
    data = json.loads(json_format.render(_odd_report()))
    change(data)
    assert list(jsonschema.Draft7Validator(json_format.schema()).iter_errors(data))
    with pytest.raises(json_format.LoadError) as err:
        json_format.load(json.dumps(data), "x.json")
    assert str(err.value).startswith("x.json: ") and "(not a gitops-checker JSON report" in str(
        err.value)


def _impact_report() -> Report:
    from checker.model import Impact, ImpactEntry, PolicyChange

    entry = ImpactEntry("prod", "desired", "fails", "p1", "StatefulSet db/main",
                        SourceLocation("a b/ü.yaml", 3), "constraint P1/p1 changed",
                        message="privileged", constraint="P1/p1", severity_after="error",
                        enforcement_before="dryrun", enforcement_after="deny",
                        ref=ObjectRef("prod", "apps", "v1", "StatefulSet", "db", "main"),
                        field_path=("spec", 0))
    impact = Impact(base="abc123", changes=(PolicyChange(
        "prod", "p1", "changed", "P1/p1", "dryrun", "deny", "error", "error", "p.yaml:4"),),
        entries=(entry,), live=("prod",), problems=("one problem",))
    from dataclasses import replace
    return replace(_odd_report(), impact=impact)


def test_the_policy_change_impact_round_trips() -> None:
    report = _impact_report()
    back = json_format.load(json_format.render(report))
    assert back.impact == report.impact
    for name, render in RENDERERS.items():
        assert render(back) == render(report), name
