"""Gatekeeper's model beyond match and parameters, each case from its documented behaviour.

Sources (Gatekeeper's website/docs and code, read at dev time): enforcement-points.md and
pkg/util/enforcement_action.go (scoped enforcement actions; gator reviews at
gator.gatekeeper.sh), the ``source`` field of pkg/mutation/match (All by default; plain
objects are Original), input.md (``input.review.namespaceObject``), the frameworks' v1
template conversion (a legacy ``rego`` field replaces the first Rego ``code[]`` source), and
exempt-namespaces.md (the Config resource).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from checker.errors import PolicyError
from checker.model import Resource, Severity, SourceLocation
from checker.policy import suites
from checker.policy.evaluate import (
    RULE_MATCH_UNDECIDED,
    RULE_NOT_EVALUATED,
    RULE_TEMPLATE_NOTE,
    Evaluator,
    review,
)
from checker.policy.gatekeeper import gatekeeper_config, parse_constraint, parse_template
from checker.policy.match import Matcher, matches
from checker.policy.packs import repository_policies
from tests.policy.test_gatekeeper import ECHO, constraint, res, template

SAYS = """
    package says
    violation[{"msg": input.parameters.word}] { true }
"""


def scoped(entries: list[dict[str, Any]], name: str = "c") -> Resource:
    c = constraint("Says", name=name, parameters={"word": "hit"}, action="scoped")
    c.body["spec"]["scopedEnforcementActions"] = entries
    return c


def evaluate(objects: list[Resource], resources: list[Resource],
             known: list[Resource] | None = None) -> list[Any]:
    policies, errors = repository_policies(objects)
    assert errors == []
    return Evaluator(policies).run(resources, known=known, workers=1).findings


def entry(action: str, *points: str) -> dict[str, Any]:
    return {"action": action, "enforcementPoints": [{"name": p} for p in points]}


# --- scopedEnforcementActions ------------------------------------------------------------

def test_deny_in_shift_left_and_warn_at_admission_is_deny_here() -> None:
    """The documented example: warn at validation.gatekeeper.sh, deny at gator.gatekeeper.sh.
    CI reviews as gator does, so the constraint is enforced here with deny."""
    tpl = parse_template(template("Says", SAYS))
    c = parse_constraint(scoped([entry("warn", "validation.gatekeeper.sh"),
                                 entry("deny", "gator.gatekeeper.sh")]), tpl)
    assert (c.enforced, c.enforcement_action, c.severity) == (True, "deny", Severity.ERROR)
    assert c.scoped_points == ("validation.gatekeeper.sh", "gator.gatekeeper.sh")


@pytest.mark.parametrize(("entries", "action"), [
    ([entry("dryrun", "*")], "dryrun"),                       # "*" names every point
    ([entry("warn", "gator.gatekeeper.sh", "audit.gatekeeper.sh")], "warn"),
    ([entry("dryrun", "gator.gatekeeper.sh"), entry("warn", "*")], "warn"),  # strongest
])
def test_actions_that_apply_at_gators_point_set_the_severity(entries: list[dict[str, Any]],
                                                             action: str) -> None:
    c = parse_constraint(scoped(entries), parse_template(template("Says", SAYS)))
    assert c.enforced and c.enforcement_action == action


@pytest.mark.parametrize("points", [("validation.gatekeeper.sh",), ("audit.gatekeeper.sh",),
                                    ("vap.k8s.io", "validation.gatekeeper.sh")])
def test_a_constraint_not_enforced_at_gators_point_is_skipped_with_a_note(
        points: tuple[str, ...]) -> None:
    """"Only audit" and the like: gator skips the constraint; a scan says so, once."""
    objects = [template("Says", SAYS), scoped([entry("deny", *points)])]
    findings = evaluate(objects, [res("ConfigMap", "a", "ns"), res("ConfigMap", "b", "ns")])
    assert [(f.rule_id, f.severity) for f in findings] == [(RULE_NOT_EVALUATED, Severity.NOTE)]
    assert "Says/c not evaluated" in findings[0].message
    assert findings[0].location == SourceLocation("policies/c.yaml", 7)
    assert "gator.gatekeeper.sh" in findings[0].message


@pytest.mark.parametrize(("entries", "message"), [
    (None, "requires spec.scopedEnforcementActions"),
    ([entry("block", "*")], "unknown action 'block'"),
    ([entry("deny", "admission.example.com")], "unknown enforcement point"),
    ([{"action": "deny"}], "names no enforcement point"),
    (["deny"], "must be a list of"),
])
def test_invalid_scoped_actions_are_rejected_as_gatekeepers_webhook_does(
        entries: Any, message: str) -> None:
    c = constraint("Says", parameters={"word": "x"}, action="scoped")
    if entries is not None:
        c.body["spec"]["scopedEnforcementActions"] = entries
    with pytest.raises(PolicyError, match=message):
        parse_constraint(c, parse_template(template("Says", SAYS)))


def write_suite(tmp: Path, constraint_body: dict[str, Any], violations: str) -> Path:
    (tmp / "t.yaml").write_text(yaml.safe_dump(template("Says", SAYS).body))
    (tmp / "c.yaml").write_text(yaml.safe_dump(constraint_body))
    (tmp / "o.yaml").write_text(yaml.safe_dump(res("ConfigMap", "a", "ns").body))
    (tmp / "suite.yaml").write_text(yaml.safe_dump({
        "kind": "Suite", "apiVersion": "test.gatekeeper.sh/v1alpha1",
        "tests": [{"name": "t", "template": "t.yaml", "constraint": "c.yaml", "cases": [
            {"name": "o", "object": "o.yaml", "assertions": [{"violations": violations}]}]}]}))
    return tmp / "suite.yaml"


@pytest.mark.parametrize(("points", "violations"), [(("validation.gatekeeper.sh",), "no"),
                                                    (("gator.gatekeeper.sh",), "yes"),
                                                    (("*",), "yes")])
def test_verify_skips_what_gator_skips(tmp_path: Path, points: tuple[str, ...],
                                       violations: str) -> None:
    suite = write_suite(tmp_path, scoped([entry("deny", *points)]).body, violations)
    result = suites.run_suite(suite)
    assert (result.passed, result.failed) == (1, 0), result.failures


# --- match.source ----------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "expected"), [(None, True), ("All", True),
                                                  ("Original", True), ("Generated", False)])
def test_plain_objects_are_original(source: str | None, expected: bool) -> None:
    match = {} if source is None else {"source": source}
    assert matches(match, res("Pod", "p", "ns"), {}) is expected
    objects = [template("Says", SAYS),
               constraint("Says", match=match, parameters={"word": "hit"})]
    assert [f.message for f in evaluate(objects, [res("Pod", "p", "ns")])] == (
        ["hit"] if expected else [])


def test_generated_matches_only_generated_objects() -> None:
    assert matches({"source": "Generated"}, res("Pod", "p", "ns"), {}) is False
    assert Matcher({"source": "Generated"})(res("Pod", "p", "ns"), {}, "Generated") is True
    assert Matcher({"source": "Original"})(res("Pod", "p", "ns"), {}, "Generated") is False


def test_an_invalid_source_is_rejected_by_the_constraint_schema() -> None:
    with pytest.raises(PolicyError, match=r"spec\.match\.source must be one of"):
        parse_constraint(constraint("Says", match={"source": "generated"},
                                    parameters={"word": "x"}),
                         parse_template(template("Says", SAYS)))


# --- input.review.namespaceObject --------------------------------------------------------------

NS_OBJECT = """
    package nsobject
    violation[{"msg": msg}] {
      ns := input.review.namespaceObject
      msg := sprintf("%v", [json.marshal(ns)])
    }
"""

NS_ENV = """
    package nsenv
    violation[{"msg": msg}] {
      not input.review.namespaceObject.metadata.labels.env
      msg := "namespace has no env label"
    }
"""


def test_namespace_object_is_the_namespace_manifest_as_stored() -> None:
    """Gatekeeper 3.22+ passes the object's Namespace; the API server has defaulted it (the
    kubernetes.io/metadata.name label, the kubernetes finalizer, phase Active)."""
    ns = res("Namespace", "team", labels={"env": "prod"})
    objects = [template("NsObject", NS_OBJECT), constraint("NsObject")]
    found = [json.loads(f.message) for f in evaluate(objects, [res("ConfigMap", "a", "team")],
                                                     known=[ns])]
    assert found == [{
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team", "labels": {"env": "prod",
                                                 "kubernetes.io/metadata.name": "team"}},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}]


def test_cluster_scoped_objects_and_gator_get_an_empty_namespace_object(tmp_path: Path) -> None:
    """No Namespace is passed for a cluster-scoped object (nor by gator): Gatekeeper's Rego
    driver then sets a nil map, which reaches Rego as {} (its docs say null; both are truthy)."""
    objects = [template("NsObject", NS_OBJECT), constraint("NsObject")]
    assert [f.message for f in evaluate(objects, [res("ClusterRole", "r")])] == ["{}"]
    assert review(res("ClusterRole", "r"))["namespaceObject"] == {}
    # gator: even with the Namespace in the inventory, namespaceObject is {}
    tpl = template("NsEnv", NS_ENV)
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(tpl.body))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(constraint("NsEnv").body))
    (tmp_path / "o.yaml").write_text(yaml.safe_dump(res("ConfigMap", "a", "team").body))
    (tmp_path / "ns.yaml").write_text(yaml.safe_dump(
        res("Namespace", "team", labels={"env": "prod"}).body))
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump({
        "kind": "Suite", "apiVersion": "test.gatekeeper.sh/v1alpha1",
        "tests": [{"name": "t", "template": "t.yaml", "constraint": "c.yaml", "cases": [
            {"name": "o", "object": "o.yaml", "inventory": ["ns.yaml"],
             "assertions": [{"violations": 1}]}]}]}))
    result = suites.run_suite(tmp_path / "suite.yaml")
    assert (result.passed, result.failed) == (1, 0), result.failures


def test_namespace_labels_decide_and_a_missing_namespace_is_undecided() -> None:
    objects = [template("NsEnv", NS_ENV), constraint("NsEnv")]
    labelled = res("Namespace", "prod", labels={"env": "prod"})
    bare = res("Namespace", "dev")
    cms = [res("ConfigMap", "a", "prod"), res("ConfigMap", "b", "dev"),
           res("ConfigMap", "c", "elsewhere"), res("ConfigMap", "d", "elsewhere")]
    found = evaluate(objects, cms, known=[labelled, bare, *cms])
    assert [(f.rule_id, f.resource) for f in found] == [
        ("NsEnv/c", "ConfigMap dev/b"), (RULE_MATCH_UNDECIDED, "ConfigMap elsewhere/c")]
    assert "namespaceObject" in found[1].message and "'elsewhere'" in found[1].message
    # a template that does not read namespaceObject is evaluated there as before
    echo = [template("Echo", ECHO), constraint("Echo", parameters={"word": "w"})]
    assert len(evaluate(echo, cms, known=cms)) == 4


def test_namespace_selector_sees_the_name_label_the_api_server_sets() -> None:
    match = {"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team"]}]}}
    ns = {"team": res("Namespace", "team"), "other": res("Namespace", "other")}
    assert matches(match, res("Pod", "p", "team"), ns) is True
    assert matches(match, res("Pod", "p", "other"), ns) is False
    assert matches(match, ns["team"], ns) is True
    # gator's inventory Namespaces are taken as written: no API server added the label
    assert Matcher(match)(res("Pod", "p", "team"), ns, stored=False) is False


# --- legacy rego vs code[] ---------------------------------------------------------------------

LEGACY = 'package legacy\nviolation[{"msg": "legacy"}] { true }\n'
CODE_V1 = 'package code\nviolation contains {"msg": "code"} if { true }\n'


def with_code(tpl: Resource, *codes: dict[str, Any], legacy: str | None = LEGACY) -> Resource:
    target = tpl.body["spec"]["targets"][0]
    if legacy is None:
        target.pop("rego", None)
        target.pop("libs", None)
    else:
        target["rego"] = legacy
    target["code"] = list(codes)
    return tpl


def test_the_legacy_rego_field_wins_over_code_and_is_v0() -> None:
    """Gatekeeper's v1 conversion replaces the first Rego code[] source with the legacy rego
    and libs (no version: v0); a note says the code[] entry is not what runs."""
    tpl = with_code(template("Legacy", LEGACY),
                    {"engine": "Rego", "source": {"version": "v1", "rego": CODE_V1}})
    t = parse_template(tpl)
    assert (t.package, t.rego_v1) == ("legacy", False)
    assert any("legacy rego field" in n for n in t.notes)
    found = evaluate([tpl, constraint("Legacy")], [res("ConfigMap", "a", "ns")])
    assert sorted((f.rule_id, f.message.split(":")[0]) for f in found) == [
        ("Legacy/c", "legacy"), (RULE_TEMPLATE_NOTE, "ConstraintTemplate 'legacy'")]


def test_without_legacy_rego_the_first_rego_code_entry_runs() -> None:
    second = 'package second\nviolation[{"msg": "second"}] { true }\n'
    tpl = with_code(template("Code", LEGACY),
                    {"engine": "K8sNativeValidation", "source": {}},
                    {"engine": "Rego", "source": {"version": "v1", "rego": CODE_V1}},
                    {"engine": "Rego", "source": {"rego": second}}, legacy=None)
    t = parse_template(tpl)
    assert (t.package, t.rego_v1, t.notes) == ("code", True, ())


def test_a_version_other_than_v1_is_read_as_v0() -> None:
    tpl = with_code(template("Code", LEGACY),
                    {"engine": "Rego", "source": {"version": "v2", "rego": LEGACY}}, legacy=None)
    t = parse_template(tpl)
    assert t.rego_v1 is False and "'v2' is read as v0" in t.notes[0]
    with pytest.raises(PolicyError, match=r"source\.rego is required"):
        parse_template(with_code(template("Code", LEGACY), {"engine": "Rego", "source": {}},
                                 legacy=None))


# --- the Config resource ------------------------------------------------------------------------

DOC_CONFIG = textwrap.dedent("""\
    apiVersion: config.gatekeeper.sh/v1alpha1
    kind: Config
    metadata:
      name: config
      namespace: "gatekeeper-system"
    spec:
      match:
        - excludedNamespaces: ["kube-*", "my-namespace"]
          processes: ["*"]
        - excludedNamespaces: ["audit-excluded-ns"]
          processes: ["audit"]
        - excludedNamespaces: ["audit-webhook-sync-excluded-ns"]
          processes: ["audit", "webhook", "sync"]
        - excludedNamespaces: ["mutation-excluded-ns"]
          processes: ["mutation-webhook"]
    """)


def config(text: str = DOC_CONFIG) -> Resource:
    body = yaml.safe_load(text)
    meta = body["metadata"]
    return Resource(body["apiVersion"], "Config", meta.get("namespace", ""), meta["name"], body,
                    SourceLocation("gk/config.yaml", 1))


def test_the_documented_config_exempts_namespaces_from_webhook_and_audit() -> None:
    """CI stands for the webhook and audit: a namespace both ignore is not evaluated (a note
    on the Config says so); one that only audit or only mutation ignores still is."""
    objects = [template("Says", SAYS), constraint("Says", parameters={"word": "hit"})]
    spaces = ["kube-system", "kube-public", "my-namespace", "audit-excluded-ns",
              "audit-webhook-sync-excluded-ns", "mutation-excluded-ns", "team"]
    cms = [res("ConfigMap", "a", ns) for ns in spaces]
    found = evaluate(objects, [config(), *cms, res("Namespace", "kube-system")])
    hits = sorted(f.resource for f in found if f.rule_id == "Says/c")
    assert hits == ["Config gatekeeper-system/config", "ConfigMap audit-excluded-ns/a",
                    "ConfigMap mutation-excluded-ns/a", "ConfigMap team/a"]
    notes = sorted(f.message for f in found if f.rule_id == RULE_NOT_EVALUATED)
    assert notes == [
        "1 object(s) of namespace 'audit-webhook-sync-excluded-ns' not evaluated: Gatekeeper "
        "Config gatekeeper-system/config excludes it from the webhook and audit processes",
        "1 object(s) of namespace 'kube-public' not evaluated: Gatekeeper Config "
        "gatekeeper-system/config excludes it from the webhook and audit processes",
        "1 object(s) of namespace 'my-namespace' not evaluated: Gatekeeper Config "
        "gatekeeper-system/config excludes it from the webhook and audit processes",
        # the kube-system Namespace itself is excluded by its own name
        "2 object(s) of namespace 'kube-system' not evaluated: Gatekeeper Config "
        "gatekeeper-system/config excludes it from the webhook and audit processes"]
    assert all(f.location == SourceLocation("gk/config.yaml", 1) for f in found
               if f.rule_id == RULE_NOT_EVALUATED)


def test_sync_exclusions_keep_objects_out_of_the_inventory() -> None:
    reads = """
        package reads
        violation[{"msg": msg}] {
          some ns
          data.inventory.namespace[ns].v1.ConfigMap[_]
          msg := ns
        }
    """
    objects = [template("Reads", reads), constraint("Reads", match={"kinds": [
        {"apiGroups": [""], "kinds": ["Namespace"]}]})]
    known = [config(), res("Namespace", "team"),
             res("ConfigMap", "a", "team"), res("ConfigMap", "b", "audit-webhook-sync-excluded-ns"),
             res("ConfigMap", "c", "audit-excluded-ns")]
    found = evaluate(objects, [res("Namespace", "team")], known=known)
    assert sorted(f.message for f in found) == ["audit-excluded-ns", "team"]
    # a Namespace left out of sync is still what the webhook reads for namespaceObject
    ns = res("Namespace", "audit-webhook-sync-excluded-ns", labels={"env": "prod"})
    cm = res("ConfigMap", "a", "audit-excluded-ns")
    env = [template("NsEnv", NS_ENV), constraint("NsEnv")]
    assert evaluate(env, [cm], known=[config(), ns, res("Namespace", "audit-excluded-ns"), cm]
                    )[0].resource == "ConfigMap audit-excluded-ns/a"
    pod = res("ConfigMap", "b", "audit-webhook-sync-excluded-ns")
    cfg = config(DOC_CONFIG.replace('["audit", "webhook", "sync"]', '["sync"]'))
    assert evaluate(env, [pod], known=[cfg, ns, pod]) == []


def test_only_the_config_gatekeeper_reads_is_honoured() -> None:
    other = config(DOC_CONFIG.replace("name: config", "name: mine"))
    assert gatekeeper_config([other])[0] is None
    elsewhere = config(DOC_CONFIG.replace('"gatekeeper-system"', "gk"))
    chosen, notes = gatekeeper_config([elsewhere, other])
    assert chosen is not None and chosen.config == "gk/config"
    assert [n for _, n in notes] == ["Gatekeeper Config gatekeeper-system/mine is ignored: "
                                     "Gatekeeper reads only the Config named 'config'"]
    twice = config(DOC_CONFIG.replace('"gatekeeper-system"', "gk2"))
    chosen, notes = gatekeeper_config([elsewhere, twice])
    assert chosen is None and "no namespace exclusions are applied" in notes[0][1]
    chosen, _ = gatekeeper_config([elsewhere, twice, config()])
    assert chosen is not None and chosen.config == "gatekeeper-system/config"


def test_gator_ignores_a_config_in_its_inventory(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, constraint("Says", parameters={"word": "hit"}).body, "yes")
    (tmp_path / "o.yaml").write_text(yaml.safe_dump(res("ConfigMap", "a", "kube-system").body))
    (tmp_path / "cfg.yaml").write_text(DOC_CONFIG)
    data = yaml.safe_load(suite.read_text())
    data["tests"][0]["cases"][0]["inventory"] = ["cfg.yaml"]
    suite.write_text(yaml.safe_dump(data))
    result = suites.run_suite(suite)
    assert (result.passed, result.failed) == (1, 0), result.failures


def test_a_scan_honours_the_repositorys_gatekeeper_config(tmp_path: Path) -> None:
    """End to end: the Config sits with the cluster's manifests; the built-in packs then skip
    kube-system (with a note on the Config) and still check every other namespace."""
    from checker.options import ScanOptions
    from checker.pipeline import scan

    privileged = {"containers": [{"name": "c", "image": "nginx:1.27",
                                  "securityContext": {"privileged": True}}]}
    (tmp_path / "gatekeeper.yaml").write_text(DOC_CONFIG)
    (tmp_path / "pods.yaml").write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns},
         "spec": privileged} for ns in ("kube-system", "team")]))
    report = scan(ScanOptions(paths=(tmp_path,), root=tmp_path, packs=("pss-baseline",)))
    flagged = {f.resource for f in report.findings if f.category == "policy"
               and f.rule_id != RULE_NOT_EVALUATED}
    assert flagged == {"Pod team/p"}
    notes = [f for f in report.findings if f.rule_id == RULE_NOT_EVALUATED]
    assert [(n.location.path, n.location.line) for n in notes] == [("gatekeeper.yaml", 1)]
    assert "namespace 'kube-system' not evaluated" in notes[0].message


@pytest.mark.parametrize("selector", [
    {"matchExpressions": ["env"]},
    {"matchExpressions": {"key": "env"}},
    {"matchExpressions": [{"key": "env", "operator": "In", "values": "prod"}]},
    {"matchLabels": ["env"]},
])
def test_a_malformed_selector_is_undecided_for_that_constraint_not_a_crash(
        selector: dict[str, Any]) -> None:
    """A pull request's constraint with a selector of the wrong shape gives a finding on that
    constraint; the other constraint still runs."""
    objects = [template("Echo", ECHO),
               constraint("Echo", name="bad", parameters={"word": "w"},
                          match={"labelSelector": selector}),
               constraint("Echo", name="good", parameters={"word": "w"})]
    found = evaluate(objects, [res("ConfigMap", "a", "prod")])
    assert sorted((f.rule_id, f.resource) for f in found) == [
        ("Echo/good", "ConfigMap prod/a"), (RULE_MATCH_UNDECIDED, "ConfigMap prod/a")]
    (undecided,) = [f for f in found if f.rule_id == RULE_MATCH_UNDECIDED]
    assert "must be" in undecided.message
