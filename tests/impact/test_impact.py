"""``impact``: the verdicts a policy change alters, from two Reports of the same objects."""

from __future__ import annotations

from dataclasses import replace

from checker.impact import build, impact, policy_changes
from checker.model import (
    Finding,
    ObjectRef,
    PolicyRecord,
    Report,
    Severity,
    SourceLocation,
    Suppression,
)

WEB = ObjectRef("prod", "apps", "v1", "Deployment", "shop", "web")
DB = ObjectRef("prod", "apps", "v1", "StatefulSet", "shop", "db")
LABELS = PolicyRecord("prod", "labels", "repository", "K8sRequiredLabels/owner", "deny",
                      "error", "sha256:1", "policies/owner.yaml:1")
PRIV = PolicyRecord("prod", "privileged", "pack:pss-baseline", "K8sPSPPrivileged/priv",
                    "dryrun", "note", "sha256:2")


def _finding(rule: str, ref: ObjectRef, severity: Severity = Severity.ERROR,
             message: str = "bad", path: tuple[str | int, ...] = (),
             accepted: Suppression | None = None, category: str = "policy") -> Finding:
    return Finding(rule, category, severity, message,
                   SourceLocation(f"apps/{ref.name}.yaml", 3), resource=ref.display,
                   field_path=path, cluster=ref.cluster, ref=ref, suppression=accepted,
                   details={"constraint": "K/c"})


def _report(findings: list[Finding], records: list[PolicyRecord],
            errors: tuple[str, ...] = ()) -> Report:
    return Report(findings=tuple(findings), rules={}, resources_checked=2, files_checked=2,
                  policy_records=tuple(records), errors=errors)


def test_a_tightened_constraint_fails_an_object_and_names_the_constraint() -> None:
    tightened = replace(LABELS, digest="sha256:9")
    before = _report([], [LABELS])
    after = _report([_finding("labels", WEB, message="missing label team")], [tightened])
    (entry,) = impact(before, after)
    assert (entry.outcome, entry.cluster, entry.ref, entry.against) == (
        "fails", "prod", WEB, "desired")
    assert "K8sRequiredLabels/owner changed" in entry.why
    assert entry.message == "missing label team"
    assert entry.severity_after == "error" and entry.severity_before == ""


def test_a_relaxed_constraint_passes_an_object() -> None:
    relaxed = replace(LABELS, digest="sha256:8")
    before = _report([_finding("labels", WEB), _finding("labels", DB)], [LABELS])
    after = _report([_finding("labels", DB)], [relaxed])
    (entry,) = impact(before, after)
    assert (entry.outcome, entry.ref) == ("passes", WEB)
    assert entry.severity_before == "error" and entry.severity_after == ""


def test_an_unchanged_verdict_is_not_an_entry_even_when_the_message_changes() -> None:
    before = _report([_finding("labels", WEB, message="missing owner")], [LABELS])
    after = _report([_finding("labels", WEB, message="missing owner, team")],
                    [replace(LABELS, digest="sha256:3")])
    assert impact(before, after) == ()
    (change,) = policy_changes(before.policy_records, after.policy_records)
    assert (change.change, change.constraint) == ("changed", "K8sRequiredLabels/owner")


def test_an_enforcement_flip_is_shown_as_such() -> None:
    deny = replace(PRIV, enforcement="deny", severity="error", digest="sha256:5")
    before = _report([_finding("privileged", WEB, Severity.NOTE)], [PRIV])
    after = _report([_finding("privileged", WEB, Severity.ERROR)], [deny])
    (entry,) = impact(before, after)
    assert entry.outcome == "enforcement"
    assert (entry.enforcement_before, entry.enforcement_after) == ("dryrun", "deny")
    assert (entry.severity_before, entry.severity_after) == ("note", "error")
    assert "enforcementAction dryrun -> deny" in entry.why
    assert "severity note -> error" in entry.why
    (change,) = policy_changes([PRIV], [deny])
    assert (change.enforcement_before, change.enforcement_after) == ("dryrun", "deny")


def test_a_new_template_is_added_and_its_failures_are_new() -> None:
    before = _report([], [])
    after = _report([_finding("labels", WEB), _finding("labels", DB)], [LABELS])
    entries = impact(before, after)
    assert [e.outcome for e in entries] == ["fails", "fails"]
    assert all("new policy K8sRequiredLabels/owner from the repository's policies "
               "(policies/owner.yaml:1)" in e.why for e in entries)
    (change,) = policy_changes([], [LABELS])
    assert change.change == "added"


def test_a_removed_policy_passes_what_it_failed() -> None:
    before = _report([_finding("privileged", WEB, Severity.NOTE)], [PRIV])
    after = _report([], [])
    (entry,) = impact(before, after)
    assert entry.outcome == "passes"
    assert "is no longer selected" in entry.why
    assert policy_changes([PRIV], [])[0].change == "removed"


def test_a_removed_acceptance_fails_the_object_it_accepted() -> None:
    accepted = Suppression("acceptance", "legacy", source="accept/web.yaml:4")
    before = _report([_finding("labels", WEB, accepted=accepted)], [LABELS])
    after = _report([_finding("labels", WEB)], [LABELS])
    (entry,) = impact(before, after)
    assert entry.outcome == "fails"
    assert entry.why == "the change removes (or changes) the acceptance accept/web.yaml:4"
    # and the reverse: an acceptance the change adds
    (back,) = impact(after, before)
    assert back.outcome == "passes"
    assert back.why == "the change adds the acceptance accept/web.yaml:4"


def test_findings_are_paired_per_cluster_and_field_path() -> None:
    stage = WEB.in_cluster("stage")
    first = _finding("labels", WEB, path=("spec", "containers", 0))
    before = _report([first], [LABELS, replace(LABELS, cluster="stage")])
    after = _report([first, _finding("labels", WEB, path=("spec", "containers", 1)),
                     _finding("labels", stage)],
                    [LABELS, replace(LABELS, cluster="stage", digest="sha256:7")])
    entries = impact(before, after)
    assert [(e.cluster, e.field_path) for e in entries] == [
        ("prod", ("spec", "containers", 1)), ("stage", ())]


def test_what_the_change_could_not_evaluate_is_never_a_pass() -> None:
    broken = _finding("policy.invalid", WEB, message="template labels: rego parse error")
    before = _report([_finding("labels", WEB)], [LABELS])
    after = _report([broken], [replace(LABELS, digest="sha256:0")],
                    errors=("policies/owner.yaml: bad",))
    entries = impact(before, after)
    assert [e.outcome for e in entries] == ["passes", "not-checked"]
    assert entries[1].message == "template labels: rego parse error"
    result = build("main", before, after)
    assert result.problems == ("policies/owner.yaml: bad",)
    assert result.applies


def test_non_policy_findings_are_not_verdicts() -> None:
    before = _report([], [LABELS])
    after = _report([_finding("input.not-checked", WEB, category="input"),
                     _finding("policy.template-note", WEB)], [LABELS])
    assert impact(before, after) == ()
    assert not build("main", before, after).applies


def test_live_entries_are_marked_and_sorted_after_desired_ones() -> None:
    before = _report([], [LABELS])
    after = _report([_finding("labels", WEB)], [replace(LABELS, digest="sha256:2")])
    result = build("abc123", before, after, live=[("prod", before, after)])
    assert [(e.against, e.outcome) for e in result.entries] == [
        ("desired", "fails"), ("live", "fails")]
    assert result.live == ("prod",)
    assert result.base == "abc123"
    # deterministic: the same inputs give the same value
    assert build("abc123", before, after, live=[("prod", before, after)]) == result
