"""Mutation and expansion before validation (checker.admit), with Gatekeeper's semantics.

The expected results are Gatekeeper's documented behaviour (website/docs/mutation.md,
expansion.md) and what its mutation code does in the cases its tests cover; fixtures are ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from checker.admit import mutate
from checker.admit.location import Field, Keyed, LocationError, parse, render
from checker.admit.settings import AdmissionSettings
from checker.admit.stage import (
    RULE_EXPANSION_ERROR,
    RULE_EXPANSION_INVALID,
    RULE_MUTATED,
    RULE_MUTATION_ERROR,
    RULE_MUTATION_EXTERNAL,
    RULE_MUTATION_UNDECIDED,
    RULE_MUTATOR_CONFLICT,
    RULE_MUTATOR_INVALID,
    admit,
)
from checker.cli import cli
from checker.model import Resource, SourceLocation
from tests.conftest import FIXTURES, GOLDEN

REPO = GOLDEN / "admission" / "repo"


def res(doc: str | dict[str, Any], path: str = "m.yaml", line: int = 1) -> Resource:
    data = yaml.safe_load(doc) if isinstance(doc, str) else doc
    meta = data.get("metadata") or {}
    return Resource(data["apiVersion"], data["kind"], meta.get("namespace", ""),
                    meta.get("name", ""), data, SourceLocation(path, line))


def pod(name: str = "p", ns: str = "apps", **spec: Any) -> Resource:
    return res({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns},
                "spec": spec or {"containers": [{"name": "main", "image": "nginx:1"}]}})


def assign(name: str, location: str, value: Any = None, tests: Any = None,
           match: Any = None, kind: str = "Assign", **params: Any) -> Resource:
    parameters: dict[str, Any] = dict(params)
    if kind == "Assign":
        parameters.setdefault("assign", {"value": value})
    if tests is not None:
        parameters["pathTests"] = tests
    spec: dict[str, Any] = {"location": location, "parameters": parameters,
                            "match": match or {}}
    if kind != "AssignMetadata":
        spec["applyTo"] = [{"groups": [""], "versions": ["v1"], "kinds": ["Pod"]}]
    return res({"apiVersion": "mutations.gatekeeper.sh/v1", "kind": kind,
                "metadata": {"name": name}, "spec": spec})


def run(objects: list[Resource], **kw: Any) -> tuple[list[Resource], list[Any]]:
    out = admit(objects, **kw)
    return out.resources, out.findings


# --- location syntax ------------------------------------------------------------------------


def test_location_parses_fields_keys_globs_and_quotes() -> None:
    assert parse('spec.containers[name: foo].ports[containerPort: 80]."a.b"') == (
        Field("spec"), Field("containers"), Keyed("name", "foo"), Field("ports"),
        Keyed("containerPort", 80), Field("a.b"))
    assert parse("spec.containers[name:*].image")[2] == Keyed("name", None, True)
    assert render(parse('metadata.labels."kubernetes.io/name"')) == (
        'metadata.labels."kubernetes.io/name"')


# Inputs and outcomes from Gatekeeper's parser tests (pkg/mutation/path/parser), as data.
PARSED = {
    "": (),
    '"sp\\"ec"': (Field('sp"ec'),),
    "-123-_456_": (Field("-123-_456_"),),
    "area51": (Field("area51"),),
    '"012345"': (Field("012345"),),
    'spec."123"': (Field("spec"), Field("123")),
    'foo."".bar': (Field("foo"), Field(""), Field("bar")),
    '    spec   .    "containers"    ': (Field("spec"), Field("containers")),
    'spec.containers[name: "*"]': (Field("spec"), Field("containers"), Keyed("name", "*")),
    'spec.containers[name: ""]': (Field("spec"), Field("containers"), Keyed("name", "")),
    'spec.containers["": "someValue"]': (Field("spec"), Field("containers"),
                                         Keyed("", "someValue")),
    'spec.containers["my key": "foo bar"]': (Field("spec"), Field("containers"),
                                             Keyed("my key", "foo bar")),
    "spec[bignum: 9223372036854775807]": (Field("spec"), Keyed("bignum", 2 ** 63 - 1)),
    'spec[quoted: "123"]': (Field("spec"), Keyed("quoted", "123")),
}
REJECTED = [".spec", "spec.", 'spec.containers[my key: "foo bar"]', "spec.containers[key: foo bar]",
            "spec.containers[name: ].x", "spec.containers[].x", "spec.containers[:].x",
            "spec.containers[:foo].x", "spec.containers[foo].x", "spec.containers[*].x",
            "foo..bar", "[foo: bar]", "spec.containers[foo: bar][bar: *]", "spec.[foo: bar]",
            "spec.containers[123: opa]", "spec[bignum: 9223372036854775808]", "012345",
            "spec.123.bar", "spec$", '"unterminated']


@pytest.mark.parametrize("text", sorted(PARSED))
def test_location_parses_as_gatekeeper(text: str) -> None:
    assert parse(text) == PARSED[text]


@pytest.mark.parametrize("text", REJECTED)
def test_location_errors(text: str) -> None:
    with pytest.raises(LocationError):
        parse(text)


# --- mutators -----------------------------------------------------------------------------


def test_assign_creates_missing_keyed_element_and_fields() -> None:
    original = pod()
    objects, findings = run([original, assign("a", "spec.containers[name: side].image",
                                              "x:1")])
    assert original.body == pod().body  # the loaded object is never modified
    containers = objects[0].body["spec"]["containers"]
    assert containers == [{"name": "main", "image": "nginx:1"}, {"name": "side", "image": "x:1"}]
    mutated = [f for f in findings if f.rule_id == RULE_MUTATED]
    assert len(mutated) == 1 and "Assign/a (spec.containers)" in mutated[0].message


def test_glob_visits_every_element_and_creates_nothing_on_empty_list() -> None:
    two = pod(containers=[{"name": "a"}, {"name": "b", "securityContext": {"x": 1}}])
    objects, _ = run([two, pod("empty", containers=[]),
                      assign("a", "spec.containers[name: *].securityContext.runAsNonRoot",
                             True)])
    assert [c["securityContext"]["runAsNonRoot"] for c in objects[0].body["spec"][
        "containers"]] == [True, True]
    assert objects[0].body["spec"]["containers"][1]["securityContext"]["x"] == 1
    assert objects[1].body["spec"]["containers"] == []


def test_path_tests_must_exist_and_must_not_exist() -> None:
    keep = pod(containers=[{"name": "main", "imagePullPolicy": "Never"}])
    objects, _ = run([keep, pod("other"), assign(
        "default", "spec.containers[name: main].imagePullPolicy", "Always",
        tests=[{"subPath": "spec.containers[name: main].imagePullPolicy",
                "condition": "MustNotExist"}])])
    assert objects[0].body["spec"]["containers"][0]["imagePullPolicy"] == "Never"
    assert objects[1].body["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    objects, _ = run([pod(), assign("only-if", "spec.containers[name: side].image", "x",
                                    tests=[{"subPath": "spec.containers[name: side]",
                                            "condition": "MustExist"}])])
    assert len(objects[0].body["spec"]["containers"]) == 1


def test_invalid_mutators_are_findings_and_never_run() -> None:
    bad = [assign("meta", "metadata.labels.x", "y"),
           assign("test", "spec.a.b", 1, tests=[{"subPath": "spec.z", "condition":
                                                 "MustExist"}]),
           assign("key", "spec.containers[name: a].name", "b"),
           assign("list", "spec.containers[name: a]", {"name": "b"}),
           assign("loc", "spec.[x]", 1),
           assign("img", "spec.containers[name: *].image", kind="AssignImage",
                  assignTag="latest")]
    objects, findings = run([pod(), *bad])
    assert objects[0].body == pod().body
    invalid = sorted(f.message.split(" ")[1] for f in findings
                     if f.rule_id == RULE_MUTATOR_INVALID)
    assert invalid == sorted(["AssignImage/img", "Assign/key", "Assign/list", "Assign/loc",
                              "Assign/meta", "Assign/test"])


def test_unknown_kinds_of_the_admission_groups_are_findings() -> None:
    out = admit([pod(), res("apiVersion: mutations.gatekeeper.sh/v1\nkind: AssignFuture\n"
                            "metadata: {name: f}\nspec: {}\n"),
                 res("apiVersion: expansion.gatekeeper.sh/v1alpha1\nkind: Expander\n"
                     "metadata: {name: e}\n")])
    assert sorted(f.rule_id for f in out.findings) == [RULE_EXPANSION_INVALID,
                                                       "admission.mutator-unsupported"]


def test_assign_metadata_only_adds_and_reads_metadata() -> None:
    labelled = pod()
    labelled.body["metadata"]["labels"] = {"team": "a"}  # type: ignore[index]
    objects, _ = run([labelled, res({"apiVersion": "mutations.gatekeeper.sh/v1",
                                     "kind": "AssignMetadata", "metadata": {"name": "m"},
                                     "spec": {"location": "metadata.labels.team",
                                              "parameters": {"assign": {
                                                  "fromMetadata": {"field": "namespace"}}}}}),
                      res({"apiVersion": "mutations.gatekeeper.sh/v1",
                           "kind": "AssignMetadata", "metadata": {"name": "n"},
                           "spec": {"location": "metadata.annotations.owner",
                                    "parameters": {"assign": {
                                        "fromMetadata": {"field": "name"}}}}})])
    meta = objects[0].body["metadata"]
    assert meta["labels"] == {"team": "a"}  # existing labels are never changed
    assert meta["annotations"] == {"owner": "p"}


def test_modify_set_merge_and_prune() -> None:
    p = pod(containers=[{"name": "a", "args": ["x", "--debug", 1]}])
    merge = assign("m", "spec.containers[name: *].args", kind="ModifySet",
                   operation="merge", values={"fromList": ["y", "x", True]})
    prune = assign("z", "spec.containers[name: *].args", kind="ModifySet",
                   operation="prune", values={"fromList": ["--debug"]})
    objects, _ = run([p, merge, prune])
    assert objects[0].body["spec"]["containers"][0]["args"] == ["x", 1, "y", True]


def test_assign_image_changes_components() -> None:
    images = ["nginx", "nginx:1.2", "localhost:5000/team/app@sha256:" + "a" * 64,
              "my.reg.io:2000/repo/app:latest"]
    p = pod(containers=[{"name": str(i), "image": image} for i, image in enumerate(images)])
    objects, _ = run([p, assign("i", "spec.containers[name: *].image", kind="AssignImage",
                                assignDomain="mirror.example.com", assignTag=":v2")])
    assert [c["image"] for c in objects[0].body["spec"]["containers"]] == [
        "mirror.example.com/nginx:v2", "mirror.example.com/nginx:v2",
        "mirror.example.com/team/app:v2", "mirror.example.com/repo/app:v2"]
    assert mutate.mutate_image("", "other/app", "", "reg.io/x/y:1") == "reg.io/other/app:1"


def test_order_is_by_kind_then_name_and_iterates_to_convergence() -> None:
    # ModifySet (later kind) merges into the list an Assign created; the second iteration
    # changes nothing, so the mutation converges
    objects, findings = run([
        pod(),
        assign("b", "spec.containers[name: main].args", kind="ModifySet",
               values={"fromList": ["--v"]}),
        assign("a", "spec.containers[name: main].args", ["start"])])
    assert objects[0].body["spec"]["containers"][0]["args"] == ["start", "--v"]
    labels = [f.details["mutators"] for f in findings if f.rule_id == RULE_MUTATED]
    assert labels == [["Assign/a", "ModifySet/b"]]


def test_a_fixed_point_is_reached_across_iterations() -> None:
    # each iteration sets [x] again and merges y after it: the state repeats, so Gatekeeper
    # stops (converged) with the last iteration's result
    objects, findings = run([
        pod(),
        assign("a", "spec.containers[name: main].args", ["x"]),
        assign("b", "spec.containers[name: main].args", kind="ModifySet",
               values={"fromList": ["y"]})])
    assert not [f for f in findings if f.rule_id == RULE_MUTATION_ERROR]
    assert objects[0].body["spec"]["containers"][0]["args"] == ["x", "y"]


def test_type_mismatch_fails_the_object() -> None:
    _, findings = run([pod(containers={"name": "x"}),
                       assign("a", "spec.containers[name: *].image", "x")])
    assert [f.rule_id for f in findings] == [RULE_MUTATION_ERROR]


def test_schema_conflicts_leave_both_out() -> None:
    objects, findings = run([
        pod(),
        assign("obj", "spec.containers.image", "x"),
        assign("list", "spec.containers[name: main].image", "y")])
    assert objects[0].body == pod().body
    conflicts = [f for f in findings if f.rule_id == RULE_MUTATOR_CONFLICT]
    assert sorted(f.message.split(" ")[1] for f in conflicts) == ["Assign/list", "Assign/obj"]
    # each finding names the mutator object itself (acceptance and fingerprints join on it)
    assert sorted((f.ref.group, f.ref.kind, f.ref.name) for f in conflicts if f.ref) == [
        ("mutations.gatekeeper.sh", "Assign", "list"), ("mutations.gatekeeper.sh", "Assign", "obj")]


def test_match_source_operation_namespace_selector() -> None:
    selected = assign("sel", "spec.hostNetwork", False,
                      match={"namespaceSelector": {"matchLabels": {"tier": "web"}}})
    generated_only = assign("gen", "spec.dnsPolicy", "None", match={"source": "Generated"})
    update_only = assign("upd", "spec.priority", 1)
    update_only.body["spec"]["applyTo"][0]["operations"] = ["UPDATE"]  # type: ignore[index]
    ns = res({"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": "apps", "labels": {"tier": "web"}}})
    objects, findings = run([ns, pod(), pod("lost", ns="unknown"), selected, generated_only,
                             update_only])
    assert objects[1].body["spec"]["hostNetwork"] is False
    assert "dnsPolicy" not in objects[1].body["spec"]
    assert "priority" not in objects[1].body["spec"]
    undecided = [f for f in findings if f.rule_id == RULE_MUTATION_UNDECIDED]
    assert len(undecided) == 1 and "unknown" in undecided[0].message


def test_external_data_is_reported_not_applied() -> None:
    ext = assign("ext", "spec.containers[name: *].image")
    ext.body["spec"]["parameters"]["assign"] = {"externalData": {"provider": "tags"}}  # type: ignore[index]
    objects, findings = run([pod(), ext])
    assert objects[0].body == pod().body
    assert [f.rule_id for f in findings] == [RULE_MUTATION_EXTERNAL]
    assert findings[0].category == "input"


def test_switch_off_validates_as_written() -> None:
    objects, findings = run([pod(), assign("a", "spec.hostPID", False)],
                            settings=AdmissionSettings(mutation=False))
    assert objects[0].body == pod().body and findings == []


# --- expansion ----------------------------------------------------------------------------

TEMPLATE = """
apiVersion: expansion.gatekeeper.sh/v1alpha1
kind: ExpansionTemplate
metadata: {name: %s}
spec:
  applyTo: [{groups: [%s], kinds: [%s], versions: [v1]}]
  templateSource: %s
  generatedGVK: {group: "%s", version: v1, kind: %s}
"""


def template(name: str, group: str, kind: str, source: str, gen_group: str,
             gen_kind: str) -> Resource:
    return res(TEMPLATE % (name, group or '""', kind, source, gen_group, gen_kind))


CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: Nightly, namespace: ops}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: c, image: busybox}]
"""


def test_expansion_generates_nested_objects_named_as_gatekeeper_names_them() -> None:
    cron = res(CRONJOB)
    out = admit([cron, template("cron-jobs", "batch", "CronJob", "spec.jobTemplate",
                                "batch", "Job"),
                 template("job-pods", "batch", "Job", "spec.template", "", "Pod")])
    kinds = [(g.kind, g.namespace, g.name, g.template) for g in out.generated]
    assert kinds == [("Pod", "ops", "nightly-job-pod", "job-pods"),
                     ("Job", "ops", "nightly-job", "cron-jobs")]
    p = out.generated[0]
    assert p.body["apiVersion"] == "v1" and p.display == "CronJob ops/Nightly"
    assert p.body["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "nightly-job", "uid": ""}]


def test_expansion_cycles_and_missing_sources() -> None:
    out = admit([res(CRONJOB),
                 template("a", "batch", "CronJob", "spec.jobTemplate", "batch", "Job"),
                 template("b", "batch", "Job", "spec.template", "batch", "CronJob"),
                 template("self", "apps", "Deployment", "spec.template", "apps",
                          "Deployment")])
    assert out.generated == []
    cycles = [f for f in out.findings if f.rule_id == RULE_EXPANSION_INVALID]
    assert sorted(f.message.split("'")[1] for f in cycles) == ["a", "b", "self"]
    assert sorted((f.ref.kind, f.ref.name) for f in cycles if f.ref) == [
        ("ExpansionTemplate", "a"), ("ExpansionTemplate", "b"), ("ExpansionTemplate", "self")]
    broken = res("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {}\n")
    out = admit([broken, template("pods", "apps", "Deployment", "spec.template", "", "Pod")])
    assert [f.rule_id for f in out.findings] == [RULE_EXPANSION_ERROR]


GATOR_EXPAND = FIXTURES / "admission" / "gator-expand"


@pytest.mark.parametrize("case", sorted(p.name for p in GATOR_EXPAND.iterdir() if p.is_dir()))
def test_gator_expand_vectors(case: str) -> None:
    """Gatekeeper's own `gator expand` cases (data, see the NOTICE there): our mutation and
    expansion of each input gives the objects gator's expected output lists."""
    objects = [res(doc, str(f.name)) for f in sorted((GATOR_EXPAND / case / "input").iterdir())
               for doc in yaml.safe_load_all(f.read_text(encoding="utf-8")) if doc]
    out = admit(objects, operation="")  # gator expand mutates with no operation
    assert not [f for f in out.findings if f.severity.label == "error"], out.findings
    want = [d for d in yaml.safe_load_all(
        (GATOR_EXPAND / case / "output" / "output.yaml").read_text(encoding="utf-8")) if d]
    got = [dict(g.body) for g in out.generated]
    if not want:  # gator's case only requires a successful expansion
        assert got
        return
    assert sorted(got, key=repr) == sorted(want, key=repr)


# --- through scan ---------------------------------------------------------------------------


def scan_args(fmt: str, *extra: str) -> list[str]:
    return ["scan", str(REPO / "manifests"), "--root", str(REPO), "--pack", "none",
            "--policies", str(REPO / "policies"), "--format", fmt, *extra]


def test_scan_verdicts_change_with_admission(runner: CliRunner, tmp_path: Path) -> None:
    """With mutation, web passes and api fails; with the switch off (gator's view), the
    reverse; the implied violation points at the Deployment's privileged line."""
    import json

    on = json.loads(runner.invoke(cli, scan_args("json")).stdout)["findings"]
    failing = {(f["rule"], f["resource"]) for f in on if f["severity"] == "error"}
    assert failing == {("AdmAllowedRegistry/internal-registry", "Pod apps/api")}
    implied = [f for f in on if f["message"].startswith("[Implied by expand-deployments]")]
    assert [(f["location"]["path"], f["location"]["line"], f["severity"]) for f in implied
            ] == [("manifests/worker.yaml", 21, "warning")]
    config = tmp_path / "config.yaml"
    config.write_text("admission:\n  mutation: false\n  expansion: false\n", encoding="utf-8")
    off = json.loads(runner.invoke(cli, [*scan_args("json"), "--config", str(config)]
                                   ).stdout)["findings"]
    failing = {(f["rule"], f["resource"]) for f in off if f["severity"] == "error"}
    assert failing == {("AdmRunAsNonRoot/pods-run-as-non-root", "Pod apps/web")}
    assert not any(f["rule"].startswith("admission.") or "Implied" in f["message"]
                   for f in off)


SUITES = FIXTURES / "admission" / "suite"


def test_verify_honours_expansion_key() -> None:
    """A suite test's `expansion:` file expands the case object; the generated Pod's
    violation counts, prefixed as gator prefixes it; source: Original does not see it."""
    from checker.policy.suites import run_suite

    result = run_suite(SUITES / "suite.yaml")
    assert (result.passed, result.failed) == (4, 0), result.failures
    bad = run_suite(SUITES / "bad-suite.yaml")
    assert bad.failed == 1 and "not an Expansion Template" in bad.failures[0]


def test_expansion_templates_from_a_config_folder(runner: CliRunner, tmp_path: Path) -> None:
    """Templates kept outside the scanned paths, in a folder the config names."""
    import json
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo)
    admission = (repo / "manifests" / "admission.yaml").read_text(encoding="utf-8")
    head, _, template = admission.rpartition("---\n")
    (repo / "manifests" / "admission.yaml").write_text(head, encoding="utf-8")
    (repo / "platform").mkdir()
    (repo / "platform" / "expansion.yaml").write_text(template, encoding="utf-8")
    args = ["scan", str(repo / "manifests"), "--root", str(repo), "--pack", "none",
            "--policies", str(repo / "policies"), "--format", "json"]
    without = json.loads(runner.invoke(cli, args).stdout)["findings"]
    assert not any("Implied by" in f["message"] for f in without)
    (repo / ".gitops-checker.yaml").write_text(
        "admission:\n  expansionTemplates: [platform]\n", encoding="utf-8")
    found = json.loads(runner.invoke(cli, args).stdout)["findings"]
    assert [f["location"]["line"] for f in found if "Implied by" in f["message"]] == [21]


def test_mutation_work_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the run's budget of mutator applications, objects are reported, not mutated
    (each Pod here takes two: the iteration that changes it and the one that confirms)."""
    monkeypatch.setattr(mutate, "MAX_STEPS", 4)
    monkeypatch.setattr(mutate.Budget.__init__, "__defaults__", (4,))
    objects, findings = run([pod("a"), pod("b"), pod("c"), assign("x", "spec.hostPID", False)])
    assert [o.body["spec"].get("hostPID") for o in objects[:3]] == [False, False, None]
    errors = [f for f in findings if f.rule_id == RULE_MUTATION_ERROR]
    assert [f.resource for f in errors] == ["Pod apps/c"] and "exceeded 4" in errors[0].message


def test_a_mutator_cannot_add_an_acceptance(runner: CliRunner, tmp_path: Path) -> None:
    """An AssignMetadata that adds a Security Tower exclusion annotation changes what the
    cluster stores, not what the repository accepted: the violation stays active."""
    import json
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo)
    with (repo / "manifests" / "admission.yaml").open("a", encoding="utf-8") as out:
        out.write("---\napiVersion: mutations.gatekeeper.sh/v1\nkind: AssignMetadata\n"
                  "metadata: {name: sneaky}\nspec:\n  location: metadata.annotations."
                  '"securitytower.io/policy.exclusion.admallowedregistry"\n'
                  "  parameters: {assign: {value: accepted}}\n")
    args = ["scan", str(repo / "manifests"), "--root", str(repo), "--pack", "none",
            "--policies", str(repo / "policies"), "--format", "json"]
    report = json.loads(runner.invoke(cli, args).stdout)
    mutated = [f for f in report["findings"] if f["resource"] == "Pod apps/api"
               and f["rule"] == "admission.mutated"]
    assert "AssignMetadata/sneaky" in mutated[0]["message"]
    assert [f["rule"] for f in report["findings"] if f["severity"] == "error"] == [
        "AdmAllowedRegistry/internal-registry"]
    assert report["accepted"] == []


_MALFORMED = ["x", 5, None, [], {}, [1], {"a": 1}, True, [{"a": 1}],
              {"matchExpressions": [1]},
              {"matchExpressions": [{"key": "x", "operator": "In", "values": "abc"}]},
              {"matchLabels": [1]}, {"matchLabels": {"a": 1}}]


def _malformed_mutators() -> list[Resource]:
    out = []
    for kind in mutate.KINDS:
        base: dict[str, Any] = {
            "applyTo": [{"groups": [""], "versions": ["v1"], "kinds": ["Pod"]}], "match": {},
            "location": ("metadata.labels.z" if kind == "AssignMetadata"
                         else "spec.containers[name: *].image"),
            "parameters": {"assign": {"value": "x"}, "assignTag": ":v1",
                           "values": {"fromList": ["a"]}}}
        specs = [{**base, key: v} for key in ("applyTo", "match", "location", "parameters")
                 for v in _MALFORMED]
        specs += [{**base, "match": {key: v}} for key in (
            "kinds", "scope", "namespaces", "excludedNamespaces", "labelSelector",
            "namespaceSelector", "name", "source") for v in _MALFORMED]
        specs += [{**base, "parameters": {**base["parameters"], key: v}} for key in (
            "assign", "pathTests", "operation", "values", "assignDomain", "assignPath",
            "assignTag") for v in _MALFORMED]
        out += [res({"apiVersion": "mutations.gatekeeper.sh/v1", "kind": kind,
                     "metadata": {"name": f"m{i}"}, "spec": spec})
                for i, spec in enumerate(specs)]
    for key in ("applyTo", "templateSource", "generatedGVK", "enforcementAction"):
        for i, v in enumerate(_MALFORMED):
            spec = {"applyTo": [{"groups": [""], "versions": ["v1"], "kinds": ["Pod"]}],
                    "templateSource": "spec", "generatedGVK": {"group": "x", "version": "v1",
                                                               "kind": "K"}, key: v}
            out.append(res({"apiVersion": "expansion.gatekeeper.sh/v1alpha1",
                            "kind": "ExpansionTemplate", "metadata": {"name": f"t-{key}-{i}"},
                            "spec": spec}))
    return out


@pytest.mark.parametrize("hostile", _malformed_mutators(), ids=lambda r: f"{r.kind}-{r.name}")
def test_malformed_mutators_and_templates_are_results_not_crashes(hostile: Resource) -> None:
    """Whatever shape a pull request gives a mutator or template, admit returns findings."""
    target = pod()
    target.body["metadata"]["labels"] = {"x": "y"}  # type: ignore[index]
    out = admit([target, hostile])
    assert all(f.message for f in out.findings)
