"""data.inventory per template: the kinds its requires-sync-data annotation names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from checker.model import Resource, Rule, Severity, SourceLocation
from checker.policy import suites
from checker.policy.evaluate import RULE_TEMPLATE_NOTE, Evaluator
from checker.policy.gatekeeper import (
    SYNC_ANNOTATION,
    SyncAnnotationError,
    parse_constraint,
    parse_template,
    read_sync_requirements,
)
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


# The gatekeeper-library's form: a block scalar holding a quoted, multi-line JSON list.
LIBRARY_FORM = """"[
  [
    {
      "groups": ["networking.k8s.io"],
      "versions": ["v1beta1", "v1"],
      "kinds": ["Ingress"]
    }
  ]
]"
"""


def test_the_library_form_is_trimmed_and_decoded_as_gatekeeper_does() -> None:
    # Gatekeeper trims newlines and double quotes from both ends, then decodes one JSON value
    assert read_sync_requirements(LIBRARY_FORM) == (
        ("networking.k8s.io", "v1", "Ingress"), ("networking.k8s.io", "v1beta1", "Ingress"))
    t = parse_template(template(LIBRARY_FORM))
    assert t.sync == read_sync_requirements(LIBRARY_FORM) and t.notes == ()


@pytest.mark.parametrize(("raw", "kinds"), [
    # only the first JSON value is decoded; what follows it is never read
    ('[[{"groups": [""], "versions": ["v1"], "kinds": ["Service"]}]] trailing', (("", "v1", "Service"),)),
    # Go matches field names case-insensitively
    ('[[{"Groups": [""], "VERSIONS": ["v1"], "kinds": ["Pod"]}]]', (("", "v1", "Pod"),)),
    # a missing or null field is an empty list: the clause names no kind
    ('[[{"groups": [""]}]]', ()),
    ('[[{"groups": [""], "versions": null, "kinds": ["X"]}]]', ()),
    ("null", ()), ("[null, [null]]", ()), ("[]", ()),
])
def test_decoding_follows_gos_json_decoder(raw: str, kinds: tuple[Any, ...]) -> None:
    assert read_sync_requirements(raw) == kinds


@pytest.mark.parametrize("bad", ["not json", '{"groups": []}', "", '""',
                                 '[[{"groups": [""], "version": ["v1"], "kinds": ["X"]}]]',
                                 '[[{"groups": [1], "versions": ["v1"], "kinds": ["X"]}]]',
                                 '[["x"]]', '["x"]', 5])
def test_a_malformed_annotation_is_a_note_and_the_template_still_loads(bad: Any) -> None:
    t = parse_template(template(bad))
    assert t.sync is None  # not pruned: the template sees every object
    assert len(t.notes) == 1 and SYNC_ANNOTATION in t.notes[0] and "ignored" in t.notes[0]
    if isinstance(bad, str):
        with pytest.raises(SyncAnnotationError):
            read_sync_requirements(bad)


def test_the_note_is_reported_once_on_the_template_and_evaluation_goes_on() -> None:
    p = policy("not json")
    ns = obj("Namespace", "team")
    out = Evaluator([p, p]).run([ns, obj("Service", "s", "team")])
    notes = [f for f in out.findings if f.rule_id == RULE_TEMPLATE_NOTE]
    assert len(notes) == 1 and notes[0].location.path == "t.yaml"
    assert notes[0].severity is Severity.NOTE and "'reads'" in notes[0].message
    assert not out.errors
    assert [f.message for f in out.findings if f.rule_id == "reads"] == ["sees Service"] * 2


def test_suites_do_not_count_the_note_as_a_verdict(tmp_path: Path) -> None:
    import yaml
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(template("not json").body))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "Reads",
        "metadata": {"name": "c"}, "spec": {}}))
    (tmp_path / "ns.yaml").write_text(yaml.safe_dump(obj("Namespace", "team").body))
    (tmp_path / "svc.yaml").write_text(yaml.safe_dump(obj("Service", "s", "team").body))
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump({
        "kind": "Suite", "apiVersion": "test.gatekeeper.sh/v1alpha1",
        "tests": [{"name": "t", "template": "t.yaml", "constraint": "c.yaml", "cases": [
            {"name": "empty", "object": "ns.yaml", "assertions": [{"violations": "no"}]},
            {"name": "sees", "object": "ns.yaml", "inventory": ["svc.yaml"],
             "assertions": [{"violations": 1, "message": "sees Service"}]}]}]}))
    result = suites.run_suite(tmp_path / "suite.yaml")
    assert (result.passed, result.failed) == (2, 0), result.failures


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


@pytest.mark.slow
def test_shipped_suites_pass_when_templates_see_only_what_they_declare(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An annotation that leaves out a kind the template reads fails its suite here."""
    monkeypatch.setattr(suites, "Evaluator", _Pruning)
    results = [suites.run_suite(path) for path in suites.find_suites([packs_dir()])]
    assert sum(r.passed for r in results) > 150
    assert [f for r in results for f in r.failures] == []
