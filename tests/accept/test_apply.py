"""Risk acceptances: file loading and validation, matching, expiry, stale, inline annotations."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from checker import accept
from checker.accept import Acceptance, Selector, apply, load_acceptances
from checker.load.objects import make_resource
from checker.model import Finding, ObjectRef, Resource, Severity, SourceLocation

TODAY = dt.date(2026, 11, 27)
VALID = """\
acceptances:
  - id: RA-1
    policy: pss-privileged
    resources:
      - {cluster: prod, namespace: mon*, kind: DaemonSet, name: node-exporter}
    justification: Needs host access to read node metrics.
    owner: team-platform
    approver: ciso
    expires: "2027-01-31"
"""


def res(kind: str, name: str, namespace: str = "", cluster: str = "prod",
        annotations: dict[str, str] | None = None,
        template_annotations: dict[str, str] | None = None) -> Resource:
    body: dict[str, object] = {"apiVersion": "v1" if kind == "Namespace" else "apps/v1",
                               "kind": kind, "metadata": {"name": name}}
    meta = body["metadata"]
    assert isinstance(meta, dict)
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = annotations
    if template_annotations is not None:
        body["spec"] = {"template": {"metadata": {"annotations": template_annotations}}}
    marks = {("metadata", "annotations", k): SourceLocation(f"{name}.yaml", 7)
             for k in annotations or {}}
    r = make_resource(body, SourceLocation(f"{name}.yaml", 1), marks)
    return Resource(**{**r.__dict__, "cluster": cluster})


def finding(r: Resource, rule: str = "pss-privileged",
            constraint: str = "GcPssPrivileged/pss-privileged") -> Finding:
    return Finding(rule_id=rule, category="policy", severity=Severity.ERROR, message="bad",
                   location=r.location, resource=r.display, cluster=r.cluster,
                   details={"constraint": constraint}, ref=r.ref)


def write(tmp_path: Path, text: str, name: str = "a.yaml") -> Path:
    folder = tmp_path / ".gitops-checker" / "acceptances"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_load_valid_file(tmp_path: Path) -> None:
    acceptances, problems = load_acceptances([write(tmp_path, VALID)], tmp_path)
    assert problems == []
    (a,) = acceptances
    assert (a.id, a.policy, a.owner, a.approver, a.expires) == (
        "RA-1", "pss-privileged", "team-platform", "ciso", dt.date(2027, 1, 31))
    assert a.selectors == (Selector("prod", "mon*", "DaemonSet", "node-exporter"),)
    assert a.location == SourceLocation(".gitops-checker/acceptances/a.yaml", 2)


@pytest.mark.parametrize(("text", "line", "message"), [
    (VALID.replace("    approver: ciso\n", ""), 2, "is not valid under any of the given schemas"),
    (VALID.replace('"2027-01-31"', '"2027-02-30"'), 9, "is not a date"),
    (VALID.replace("    owner: team-platform\n", ""), 2, "'owner' is a required property"),
    (VALID.replace("kind: DaemonSet", "kinds: DaemonSet"), 5, "'kinds' was unexpected"),
    (VALID + VALID.replace("acceptances:\n", ""), 10, "acceptance id 'RA-1' is already used"),
    ("acceptances: [\n", 2, "acceptance file cannot be read"),
])
def test_invalid_acceptances_are_error_findings_with_line(tmp_path: Path, text: str, line: int,
                                                          message: str) -> None:
    folder = write(tmp_path, text)
    write(tmp_path, VALID.replace("RA-1", "RA-9"), name="z-other.yaml")
    acceptances, problems = load_acceptances([folder], tmp_path)
    assert [a.id for a in acceptances][-1] == "RA-9"  # the other file still loads
    (problem,) = problems
    assert problem.rule_id == accept.RULE_INVALID and problem.severity is Severity.ERROR
    assert problem.location.line == line
    assert message in problem.message


def acc(policy: str = "pss-privileged", expires: dt.date | None = dt.date(2027, 1, 31),
        **sel: str) -> Acceptance:
    return Acceptance(id="RA-1", policy=policy, selectors=(Selector(**sel),),
                      justification="why", owner="team-a", expires=expires,
                      location=SourceLocation("acc.yaml", 3), ticket="SEC-1")


def test_matching_accepts_and_records_the_suppression() -> None:
    ds = res("DaemonSet", "node-exporter", "monitoring")
    other = res("DaemonSet", "node-exporter", "monitoring", cluster="staging")
    out = apply([finding(ds), finding(other)], [ds, other],
                [acc(cluster="prod", namespace="mon*", name="node-*")], TODAY)
    accepted, active = out.findings
    assert accepted.suppression is not None and active.suppression is None
    assert accepted.suppression.owner == "team-a"
    assert accepted.suppression.expires == "2027-01-31"
    assert accepted.suppression.justification == "why (ticket SEC-1)"
    assert accepted.suppression.source == "acc.yaml:3 (RA-1)"
    assert out.problems == []


@pytest.mark.parametrize("policy", ["pss-privileged", "GcPssPrivileged", "pss-*",
                                    "GcPssPrivileged/pss-privileged"])
def test_policy_can_be_named_by_rule_constraint_kind_or_glob(policy: str) -> None:
    ds = res("DaemonSet", "x", "ns")
    out = apply([finding(ds)], [ds], [acc(policy=policy)], TODAY)
    assert out.findings[0].suppression is not None


def test_other_policy_kind_or_namespace_do_not_match() -> None:
    ds = res("DaemonSet", "x", "ns")
    for a in (acc(policy="image-tag"), acc(kind="Deployment"), acc(namespace="other")):
        out = apply([finding(ds)], [ds], [a], TODAY)
        assert out.findings[0].suppression is None
        assert [p.rule_id for p in out.problems] == [accept.RULE_STALE]


def test_expired_acceptance_suppresses_nothing_and_fails_naming_the_owner() -> None:
    ds = res("DaemonSet", "x", "ns")
    out = apply([finding(ds)], [ds], [acc(expires=dt.date(2026, 11, 26))], TODAY)
    assert out.findings[0].suppression is None
    (problem,) = out.problems
    assert problem.rule_id == accept.RULE_EXPIRED and problem.severity is Severity.ERROR
    assert "expired on 2026-11-26 (owner: team-a)" in problem.message
    assert problem.location == SourceLocation("acc.yaml", 3)


@pytest.mark.parametrize(("expires", "warn_days", "expected"), [
    (dt.date(2026, 11, 27), 14, ["acceptance.expiring"]),   # last valid day is today
    (dt.date(2026, 12, 11), 14, ["acceptance.expiring"]),   # exactly the window
    (dt.date(2026, 12, 12), 14, []),
    (dt.date(2026, 12, 1), 0, []),
    (dt.date(2026, 12, 1), 30, ["acceptance.expiring"]),
])
def test_expiring_window(expires: dt.date, warn_days: int, expected: list[str]) -> None:
    ds = res("DaemonSet", "x", "ns")
    out = apply([finding(ds)], [ds], [acc(expires=expires)], TODAY, warn_days=warn_days)
    assert out.findings[0].suppression is not None
    assert [p.rule_id for p in out.problems] == expected


def test_security_tower_annotation_on_object_template_and_namespace() -> None:
    key = "securitytower.io/policy.exclusion.gcpssprivileged"
    on_object = res("Deployment", "a", "ns", annotations={key: "vendor chart"})
    on_template = res("Deployment", "b", "ns", template_annotations={key: "vendor pod"})
    namespace = res("Namespace", "play", annotations={key: "playground"})
    in_namespace = res("Deployment", "c", "play")
    plain = res("Deployment", "d", "ns")
    resources = [on_object, on_template, namespace, in_namespace, plain]
    findings = [finding(r) for r in (on_object, on_template, in_namespace, plain)]
    out = apply(findings, resources, [], TODAY)
    kinds = [(f.resource, f.suppression.kind if f.suppression else None,
              f.suppression.justification if f.suppression else None) for f in out.findings]
    assert kinds == [("Deployment ns/a", "annotation", "vendor chart"),
                     ("Deployment ns/b", "annotation", "vendor pod"),
                     ("Deployment play/c", "annotation", "playground"),
                     ("Deployment ns/d", None, None)]
    assert out.findings[0].suppression is not None
    assert out.findings[0].suppression.source == f"a.yaml:7 ({key})"
    assert out.problems == []


def test_annotation_for_another_policy_does_not_match_and_is_stale() -> None:
    key = "securitytower.io/policy.exclusion.k8srequiredlabels"
    d = res("Deployment", "a", "ns", annotations={key: "x"})
    out = apply([finding(d)], [d], [], TODAY)
    assert out.findings[0].suppression is None
    assert [(p.rule_id, p.location.line) for p in out.problems] == [(accept.RULE_STALE, 7)]


def test_own_annotation_with_owner_and_expiry() -> None:
    d = res("Deployment", "a", "ns", annotations={
        "gitops-checker.io/accept.pss-privileged": "break glass",
        "gitops-checker.io/accept-owner": "team-b",
        "gitops-checker.io/accept-expires": "2026-11-01"})
    out = apply([finding(d)], [d], [], TODAY)
    assert out.findings[0].suppression is None  # expired
    (problem,) = out.problems
    assert problem.rule_id == accept.RULE_EXPIRED and "owner: team-b" in problem.message


def test_files_only_ignores_annotations_and_says_so() -> None:
    key = "securitytower.io/policy.exclusion.gcpssprivileged"
    d = res("Deployment", "a", "ns", annotations={key: "x"})
    out = apply([finding(d)], [d], [], TODAY, inline=False)
    assert out.findings[0].suppression is None
    assert [p.rule_id for p in out.problems] == [accept.RULE_INLINE_IGNORED]
    # file acceptances still work in files-only mode
    out = apply([finding(d)], [d], [acc()], TODAY, inline=False)
    assert out.findings[0].suppression is not None


def test_tool_and_input_findings_are_never_accepted() -> None:
    d = res("Deployment", "a", "ns")
    broken = Finding(rule_id="policy.evaluation-error", category="policy",
                     severity=Severity.ERROR, message="boom", location=d.location,
                     resource=d.display, cluster="prod", ref=d.ref)
    out = apply([broken], [d], [acc(policy="*")], TODAY)
    assert out.findings[0].suppression is None
    assert [p.rule_id for p in out.problems] == [accept.RULE_STALE]


def test_first_matching_acceptance_in_file_order_wins() -> None:
    ds = res("DaemonSet", "node-exporter", "ns")
    first = Acceptance(id="RA-glob", policy="pss-privileged", selectors=(Selector(name="node-*"),),
                       justification="glob", owner="a", expires=None,
                       location=SourceLocation("acc.yaml", 1), ticket="T")
    second = Acceptance(id="RA-literal", policy="pss-privileged",
                        selectors=(Selector(name="node-exporter"),), justification="literal",
                        owner="b", expires=None, location=SourceLocation("acc.yaml", 9),
                        ticket="T")
    for order, expected in (([first, second], "a"), ([second, first], "b")):
        out = apply([finding(ds)], [ds], order, TODAY)
        suppression = out.findings[0].suppression
        assert suppression is not None and suppression.owner == expected
        assert out.problems == []  # both matched: neither is stale


def test_drift_of_an_object_only_in_the_cluster_can_be_accepted() -> None:
    drift = Finding(rule_id="drift.extra", category="drift", severity=Severity.WARNING,
                    message="only live", location=SourceLocation("clusters/prod", 1),
                    resource="ConfigMap kube-system/hotfix", cluster="prod",
                    ref=ObjectRef.of("v1", "ConfigMap", "kube-system", "hotfix", cluster="prod"))
    a = Acceptance(id="RA-d", policy="drift.*",
                   selectors=(Selector(namespace="kube-system", kind="ConfigMap"),),
                   justification="hotfix", owner="ops", expires=None,
                   location=SourceLocation("acc.yaml", 1), ticket="T")
    out = apply([drift], [], [a], TODAY)
    assert out.findings[0].suppression is not None
    out = apply([drift], [], [Acceptance(**{**a.__dict__, "selectors": (
        Selector(namespace="default"),)})], TODAY)
    assert out.findings[0].suppression is None
