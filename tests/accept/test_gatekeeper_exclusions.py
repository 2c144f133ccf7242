"""Carrying acceptances into Gatekeeper constraints (policies export)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from checker.accept import Acceptance, Selector, to_gatekeeper_exclusions
from checker.model import SourceLocation

CONSTRAINT: dict[str, Any] = {
    "apiVersion": "constraints.gatekeeper.sh/v1beta1",
    "kind": "GcPssPrivileged",
    "metadata": {"name": "pss-privileged"},
    "spec": {"match": {"kinds": [{"apiGroups": ["apps"], "kinds": ["DaemonSet"]}],
                       "excludedNamespaces": ["kube-system"]}},
}


def acc(id_: str, *selectors: Selector, policy: str = "pss-privileged",
        expires: dt.date = dt.date(2027, 1, 1)) -> Acceptance:
    return Acceptance(id=id_, policy=policy, selectors=selectors, justification="j",
                      owner="o", expires=expires, location=SourceLocation("a.yaml", 1))


def test_namespace_and_label_acceptances_become_exclusions() -> None:
    original = copy.deepcopy(CONSTRAINT)
    body, inexpressible = to_gatekeeper_exclusions(CONSTRAINT, [
        acc("RA-1", Selector(namespace="monitoring")),
        acc("RA-2", Selector(namespace="team-*", cluster="prod")),
        acc("RA-3", Selector(labels={"exception": "approved"})),
        acc("RA-4", Selector(namespace="kube-system")),           # already excluded: once
    ], cluster="prod")
    assert body["spec"]["match"]["excludedNamespaces"] == ["kube-system", "monitoring",
                                                           "team-*"]
    assert body["spec"]["match"]["labelSelector"] == {"matchExpressions": [
        {"key": "exception", "operator": "NotIn", "values": ["approved"]}]}
    assert inexpressible == []
    assert original == CONSTRAINT  # the input is not modified


def test_object_scoped_and_unsupported_globs_are_reported_not_dropped() -> None:
    by_name = acc("RA-5", Selector(namespace="monitoring", kind="DaemonSet",
                                   name="node-exporter"))
    odd_glob = acc("RA-6", Selector(namespace="team-?"))
    body, inexpressible = to_gatekeeper_exclusions(CONSTRAINT, [by_name, odd_glob])
    assert body["spec"]["match"]["excludedNamespaces"] == ["kube-system"]
    assert [(a.id, "kind or name" in why or "wildcards" in why) for a, why in inexpressible] == [
        ("RA-5", True), ("RA-6", True)]


def test_only_this_constraint_this_cluster_and_unexpired_acceptances_apply() -> None:
    body, inexpressible = to_gatekeeper_exclusions(CONSTRAINT, [
        acc("other-policy", Selector(namespace="a"), policy="image-tag"),
        acc("other-cluster", Selector(namespace="b", cluster="staging")),
        acc("expired", Selector(namespace="c"), expires=dt.date(2026, 1, 1)),
        acc("by-kind", Selector(namespace="d"), policy="GcPssPrivileged"),
        acc("by-rule", Selector(namespace="e"), policy="priv-rule"),
    ], cluster="prod", today=dt.date(2026, 11, 27), rule_id="priv-rule")
    assert body["spec"]["match"]["excludedNamespaces"] == ["kube-system", "d", "e"]
    assert inexpressible == []


def test_constraint_without_match_gets_one() -> None:
    body, _ = to_gatekeeper_exclusions(
        {"kind": "K8sRequiredLabels", "metadata": {"name": "owner"}},
        [acc("RA-7", Selector(namespace="sandbox"), policy="K8sRequiredLabels")])
    assert body["spec"] == {"match": {"excludedNamespaces": ["sandbox"]}}
