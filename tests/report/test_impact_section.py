"""The policy-change impact in Markdown (the headline), JSON (structured) and the comment."""

from __future__ import annotations

import json
from dataclasses import replace

from checker.action.comment import body
from checker.impact import build
from checker.model import Finding, ObjectRef, PolicyRecord, Report, Severity, SourceLocation
from checker.report import json_format, markdown

WEB = ObjectRef("prod", "apps", "v1", "Deployment", "shop", "web")
DB = ObjectRef("stage", "apps", "v1", "Deployment", "shop", "db")
OWNER = PolicyRecord("prod", "owner", "repository", "K8sRequiredLabels/owner", "deny", "error",
                     "sha256:1", "policies/owner.yaml:1")
DOCS = PolicyRecord("stage", "docs", "repository", "K8sRequiredLabels/docs", "dryrun", "note",
                    "sha256:2", "policies/docs.yaml:1")
HOSTILE = "</table><img src=x> @security-team #12 **bold**"


def _finding(rule: str, ref: ObjectRef, severity: Severity, message: str) -> Finding:
    return Finding(rule, "policy", severity, message, SourceLocation(f"{ref.name}.yaml", 4),
                   resource=ref.display, cluster=ref.cluster, ref=ref,
                   details={"constraint": "K8sRequiredLabels/" + rule})


def _report(findings: list[Finding], records: list[PolicyRecord]) -> Report:
    return Report(findings=tuple(findings), rules={}, resources_checked=2, files_checked=2,
                  clusters=("prod", "stage"), policy_records=tuple(records))


def _with_impact(rows: int = 1) -> Report:
    before = _report([_finding("docs", DB, Severity.NOTE, "missing docs")], [OWNER, DOCS])
    after_findings = [_finding("docs", DB, Severity.ERROR, "missing docs")]
    after_findings += [_finding("owner", replace(WEB, name=f"web{i}"), Severity.ERROR, HOSTILE)
                       for i in range(rows)]
    after = _report(after_findings, [replace(OWNER, digest="sha256:9"),
                                     replace(DOCS, enforcement="deny", severity="error",
                                             digest="sha256:8")])
    gate = replace(before, link_base="https://github.com/o/r/blob/abc")
    return replace(gate, impact=build("abc123", before, after))


def test_markdown_leads_with_the_impact_when_it_applies() -> None:
    text = markdown.render(_with_impact())
    lines = text.splitlines()
    assert lines[0] == "## gitops-checker"
    assert lines[2] == "### Policy change impact"
    assert lines[4] == ("**This pull request changes 2 policies; on its objects: 1 newly "
                        "failing, 1 enforcement change, 0 newly passing in 2 clusters.**")
    assert text.index("Policy change impact") < text.index("No findings") if (
        "No findings" in text) else True
    assert "| stage | desired | 🟠 enforcement changes | K8sRequiredLabels/docs |" in text
    assert "dryrun → deny, note → error" in text
    assert "[web0.yaml:4](https://github.com/o/r/blob/abc/web0.yaml#L4)" in text


def test_markdown_without_a_what_if_is_unchanged() -> None:
    plain = _report([], [OWNER])
    assert "Policy change impact" not in markdown.render(plain)
    nothing = replace(plain, impact=build("abc123", plain, plain))
    assert markdown.render(nothing) == markdown.render(plain)
    assert json.loads(json_format.render(nothing))["impact"]["entries"] == []
    assert "impact" not in json.loads(json_format.render(plain))


def test_the_reasons_of_the_change_cannot_inject_markup() -> None:
    before = _report([], [OWNER])
    after = _report([_finding("owner", WEB, Severity.ERROR, "m")],
                    [replace(OWNER, constraint=HOSTILE, digest="sha256:0")])
    text = markdown.render(replace(before, impact=build("abc123", before, after)))
    section = text[:text.index("✅") if "✅" in text else len(text)]
    assert "</table>" not in section and "<img" not in section
    assert "@security-team" not in section  # a word joiner keeps it from notifying


def test_rows_are_capped_and_the_rest_is_counted() -> None:
    text = markdown.render(_with_impact(rows=60))
    assert "… and 11 more in the JSON report (`impact`)." in text
    data = json.loads(json_format.render(_with_impact(rows=60)))
    assert data["impact"]["counts"] == {"fails": 60, "enforcement": 1, "passes": 0,
                                        "not-checked": 0}
    assert len(data["impact"]["entries"]) == 61


def test_json_is_structured() -> None:
    data = json.loads(json_format.render(_with_impact()))["impact"]
    assert data["base"] == "abc123"
    entry = next(e for e in data["entries"] if e["outcome"] == "enforcement")
    assert entry["object"] == {"cluster": "stage", "group": "apps", "version": "v1",
                               "kind": "Deployment", "namespace": "shop", "name": "db"}
    assert entry["enforcement"] == {"before": "dryrun", "after": "deny"}
    assert entry["severity"] == {"before": "note", "after": "error"}
    assert entry["location"] == {"path": "db.yaml", "line": 4}
    (docs,) = [p for p in data["policies"] if p["policy"] == "docs"]
    assert docs["change"] == "changed" and docs["enforcement"]["after"] == "deny"
    # deterministic
    assert json_format.render(_with_impact()) == json_format.render(_with_impact())


def test_the_comment_carries_the_impact_escaped_and_within_githubs_limit() -> None:
    text = body(_with_impact(), "gitops-checker")
    assert "#### Policy change impact" in text
    assert text.index("Policy change impact") < text.index("resources in") + 200
    assert "K8sRequiredLabels/docs" in text
    assert "<img" not in text
    big = body(_with_impact(rows=400), "gitops-checker")
    assert len(big) <= 65_536
    assert "… and 371 more in the JSON report (`impact`)." in big.replace("\\", "")


def test_an_acceptance_change_alone_is_named_as_such() -> None:
    from checker.model import Suppression

    accepted = Suppression("acceptance", "legacy", source="accept/a.yaml:3")
    before = _report([replace(_finding("owner", WEB, Severity.ERROR, "m"),
                              suppression=accepted)], [OWNER])
    after = _report([_finding("owner", WEB, Severity.ERROR, "m")], [OWNER])
    text = markdown.render(replace(before, impact=build("abc123", before, after)))
    assert ("**This pull request changes its acceptances or config, no policy; on its "
            "objects: 1 newly failing, 0 enforcement changes, 0 newly passing in 1 cluster.**"
            ) in text


def test_text_lists_every_entry_before_the_summary_line() -> None:
    from checker.report import text

    lines = text.render(_with_impact(rows=3)).splitlines()
    assert lines[-1].startswith("2 resources in 2 files checked")
    impact = [line for line in lines if ": impact " in line]
    assert len(impact) == 4
    assert ("db.yaml:4: impact enforcement [K8sRequiredLabels/docs] Deployment shop/db "
            "[cluster stage, desired]: K8sRequiredLabels/docs: enforcementAction dryrun -> deny, "
            "severity note -> error") in impact
    assert any(line.startswith("policy change impact (base abc123): This pull request")
               for line in lines)
