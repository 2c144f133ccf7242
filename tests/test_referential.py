"""data.inventory per template: the kinds its requires-sync-data annotation names."""

from __future__ import annotations

import json
from typing import Any

import pytest

from checker.errors import PolicyError
from checker.model import Resource, Rule, SourceLocation
from checker.policy import suites
from checker.policy.evaluate import Evaluator
from checker.policy.gatekeeper import SYNC_ANNOTATION, parse_constraint, parse_template
from checker.policy.model import Policy
from checker.policy.packs import load_catalog, packs_dir, template_of
from checker.policy.referential import Inventory, layout, synced, union

REGO = """package reads
import future.keywords.in
violation[{"msg": msg}] {
  input.review.kind.kind == "Namespace"
  some kind, objects in data.inventory.namespace[input.review.object.metadata.name].v1
  count(objects) > 0
  msg := sprintf("sees %v", [kind])
}
"""


def obj(kind: str, name: str, namespace: str = "", api: str = "v1") -> Resource:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return Resource(api, kind, namespace, name,
                    {"apiVersion": api, "kind": kind, "metadata": meta},
                    SourceLocation("x.yaml", 1))


def template(annotation: Any = None) -> Resource:
    meta: dict[str, Any] = {"name": "reads"}
    if annotation is not None:
        meta["annotations"] = {SYNC_ANNOTATION: annotation}
    return Resource("templates.gatekeeper.sh/v1", "ConstraintTemplate", "", "reads", {
        "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
        "metadata": meta,
        "spec": {"crd": {"spec": {"names": {"kind": "Reads"}}},
                 "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": REGO}]}},
        SourceLocation("t.yaml", 1))


def policy(annotation: Any = None) -> Policy:
    t = parse_template(template(annotation))
    c = parse_constraint(Resource("constraints.gatekeeper.sh/v1beta1", "Reads", "", "c", {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "Reads",
        "metadata": {"name": "c"}, "spec": {}}, SourceLocation("c.yaml", 1)), t)
    return Policy(t, c, Rule("reads", "Reads", c.severity), c.severity, "repository")


def test_annotation_lists_every_alternative() -> None:
    annotation = json.dumps([[{"groups": [""], "versions": ["v1"], "kinds": ["Service"]},
                              {"groups": ["apps"], "versions": ["v1", "v2"],
                               "kinds": ["Deployment"]}]])
    assert parse_template(template(annotation)).sync == (
        ("", "v1", "Service"), ("apps", "v1", "Deployment"), ("apps", "v2", "Deployment"))
    assert parse_template(template()).sync is None


@pytest.mark.parametrize("bad", ["not json", '{"groups": []}', '[[{"groups": [""]}]]',
                                 '[[{"groups": [""], "versions": [], "kinds": ["X"]}]]'])
def test_a_malformed_annotation_names_the_template(bad: str) -> None:
    with pytest.raises(PolicyError, match=r"t\.yaml.*requires-sync-data"):
        parse_template(template(bad))


def test_layout_keeps_only_the_kinds_asked_for() -> None:
    objects = [obj("Service", "s", "team"), obj("ConfigMap", "c", "team"),
               obj("Namespace", "team"), obj("Deployment", "d", "team", "apps/v1")]
    assert layout(objects, [("", "v1", "Service")]) == {
        "cluster": {}, "namespace": {"team": {"v1": {"Service": {"s": objects[0].body}}}}}
    assert set(layout(objects, [("*", "*", "Deployment")])["namespace"]["team"]) == {"apps/v1"}
    assert layout(objects)["cluster"] == {"v1": {"Namespace": {"team": objects[2].body}}}
    assert synced("", "v1", "Service", [("*", "v1", "*")])
    assert not synced("apps", "v1", "Deployment", [("", "v1", "*")])


def test_union_is_every_kind_unless_one_reader_declares_none() -> None:
    assert union([(("", "v1", "A"),), (("", "v1", "B"),)]) == (("", "v1", "A"), ("", "v1", "B"))
    assert union([(("", "v1", "A"),), None]) is None


def test_inventory_builds_each_kind_set_once_and_can_hold_everything() -> None:
    objects = [obj("Service", "s", "team"), obj("ConfigMap", "c", "team")]
    pruned = Inventory(objects)
    assert pruned.json((("", "v1", "Service"),)) is pruned.json((("", "v1", "Service"),))
    assert "ConfigMap" not in pruned.json((("", "v1", "Service"),))
    assert "ConfigMap" in Inventory(objects, prune=False).json((("", "v1", "Service"),))


@pytest.mark.parametrize("prune", [True, False])
def test_a_template_sees_only_what_it_declares(prune: bool) -> None:
    objects = [obj("Namespace", "team"), obj("Service", "s", "team"),
               obj("ConfigMap", "c", "team")]
    annotation = json.dumps([[{"groups": [""], "versions": ["v1"], "kinds": ["Service"]}]])
    declared = Evaluator([policy(annotation)], prune_inventory=prune).run(objects, workers=1)
    everything = Evaluator([policy()], prune_inventory=prune).run(objects, workers=1)
    assert sorted(f.message for f in everything.findings) == ["sees ConfigMap", "sees Service"]
    assert sorted(f.message for f in declared.findings) == (
        ["sees Service"] if prune else ["sees ConfigMap", "sees Service"])


def test_every_shipped_referential_template_declares_its_kinds() -> None:
    catalog = load_catalog()
    readers = [template_of(p) for p in catalog.policies.values()]
    readers = [t for t in readers if t.uses_inventory]
    assert len(readers) >= 5
    assert all(t.sync for t in readers), [t.name for t in readers if not t.sync]


class _Pruning(Evaluator):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["prune_inventory"] = True
        super().__init__(*args, **kwargs)


def test_shipped_suites_pass_when_templates_see_only_what_they_declare(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An annotation that leaves out a kind the template reads fails its suite here."""
    monkeypatch.setattr(suites, "Evaluator", _Pruning)
    results = [suites.run_suite(path) for path in suites.find_suites([packs_dir()])]
    assert sum(r.passed for r in results) > 150
    assert [f for r in results for f in r.failures] == []
