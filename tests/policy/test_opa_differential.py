"""Real OPA is the oracle: every path that runs the shipped templates gives OPA's verdicts.

OPA v1.20.2 (``opa-golib-python-bindings``) is driven as Gatekeeper's Rego driver drives it
(checker.policy.opa). Compared with it, verdict by verdict and message by message:

- every shipped suite passes under OPA;
- ``policies export`` of the Pod Security packs, run by OPA, classifies the Kubernetes Pod
  Security fixtures exactly (baseline and restricted, as Pod, Deployment and CronJob);
- the paths a scan uses (the compiled RVM program in a batch, and regorus's interpreter) give
  OPA's findings on every suite object, every Pod Security fixture as a Pod, a Deployment and a
  CronJob, and deterministic one-field variants of each (a field removed, or given a value of
  another type), with every constraint of every suite.

One rule for ill-typed objects: where a built-in fails on an argument of the wrong type
(``split(0, "/")``, only possible in objects the API server rejects), Gatekeeper treats the
call as undefined. The OPA path gives that verdict (checker.policy.opa evaluates again with
stand-ins for the built-ins it lists; tests/policy/test_opa_builtin_errors.py), the compiled
RVM gives undefined as well, and regorus's interpreter raises: the scan then reports
``policy.evaluation-error`` and fails closed. Pairs where one side failed are counted, not
compared, and must only come from variants with a retyped field.

In CI the OPA binding is installed (scripts/test.sh); a missing binding is a failure there.
"""

from __future__ import annotations

import random
from collections import Counter as Tally
from typing import Any

import pytest
import yaml

from checker.load.objects import make_resource
from checker.model import Resource, SourceLocation
from checker.policy import evaluate, opa
from checker.policy.evaluate import Evaluation, Evaluator
from checker.policy.export import export_objects
from checker.policy.packs import load_catalog, packs_dir, repository_policies
from checker.policy.regorus_engine import RegorusEngine
from checker.policy.suites import find_suites, read_objects, run_suite
from tests.conftest import FIXTURES, RvmRuns
from tests.policy.test_rvm_equivalence import (
    ODD_VALUES,
    by_pair,
    mutated,
    paths,
    policies,
    resource,
    suite_cases,
    wrapped,
)

pytestmark = pytest.mark.skipif(not opa.available(),
                                reason="the OPA binding (opa-golib-python-bindings) is not "
                                       "installed")

PSS = FIXTURES / "pss" / "v1.37"
VARIANTS = 6  # one-field variants per object, chosen with a fixed seed


def test_oracle_is_real_opa() -> None:
    assert opa.version().startswith("v1.20.2 ")
    engine = opa.OpaEngine()
    compiled = engine.compile("t", [("t.rego", 'package t\nviolation[{"msg": m}] {\n'
                                               '  not startswith(input.review.missing, "a")\n'
                                               '  m := "x"\n}\n')],
                              rego_v1=False, data_json=None)
    # the OPA reading of a negated call with an undefined argument: the body fails
    assert compiled.evaluate('{"review": {}, "parameters": {}}') == []


def test_hook_semantics_of_gatekeeper() -> None:
    """Violations without msg are dropped, details default to {}, duplicates are one."""
    engine = opa.OpaEngine()
    rego = ('package t\nviolation[v] {\n  v := input.parameters.out[_]\n}\n')
    compiled = engine.compile("t", [("t.rego", rego)], rego_v1=False, data_json=None)
    out = [{"msg": "a"}, {"msg": "a", "details": {}}, {"details": {"x": 1}}, "text",
           {"msg": "b", "details": {"k": 1}, "extra": 1}]
    import json
    got = compiled.evaluate(json.dumps({"review": {}, "parameters": {"out": out}}))
    assert isinstance(got, list)
    assert sorted(got, key=json.dumps) == [{"details": {}, "msg": "a"},
                                           {"details": {"k": 1}, "msg": "b"}]


def test_builtin_errors_are_reported_not_hidden() -> None:
    """A failing built-in that is not rerouted (``object.keys``) is an error that says so."""
    engine = opa.OpaEngine()
    rego = ('package t\nviolation[{"msg": m}] {\n  m := object.keys(input.review.object.x)\n'
            '}\n')
    compiled = engine.compile("t", [("t.rego", rego)], rego_v1=False, data_json=None)
    got = compiled.evaluate('{"review": {"object": {"x": "abc"}}, "parameters": {}}')
    assert isinstance(got, evaluate.EvalError)
    assert "object.keys" in got.message and "Gatekeeper" in got.message
    lax = engine.compile("t", [("t.rego", rego.replace("object.keys(input.review.object.x)",
                                                        "to_number(input.review.object.x)"))],
                         rego_v1=False, data_json=None)
    assert lax.evaluate('{"review": {"object": {"x": "abc"}}, "parameters": {}}') == []


@pytest.fixture
def on_opa(monkeypatch: pytest.MonkeyPatch) -> None:
    """Evaluators built without an explicit engine use OPA."""
    monkeypatch.setattr(evaluate, "default_engine", opa.OpaEngine)


def test_every_shipped_suite_passes_under_opa(on_opa: None) -> None:
    failures = []
    passed = 0
    for suite in find_suites([packs_dir()]):
        result = run_suite(suite)
        failures += [f"{suite.parent.name}: {f}" for f in result.failures]
        passed += result.passed
    assert failures == []
    assert passed >= 182


def _exported(level: str) -> list[Resource]:
    files = export_objects(load_catalog(), [f"pss-{level}"], None)
    out = []
    for name, text in sorted(files.items()):
        for doc in yaml.safe_load_all(text):
            if doc:
                out.append(make_resource(doc, SourceLocation(name), {}))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_exported_pss_pack_classifies_fixtures_exactly_under_opa(level: str) -> None:
    exported, errors = repository_policies(_exported(level))
    assert errors == [] and exported
    evaluator = Evaluator(exported, engine=opa.OpaEngine())
    wrong, checked = [], 0
    for fixture in sorted((PSS / level).glob("*/*.yaml")):
        pod = yaml.safe_load(fixture.read_text(encoding="utf-8"))
        for obj in wrapped(pod):
            result = evaluator.run([make_resource(obj, SourceLocation(str(fixture)), {})])
            assert result.errors == []
            assert not [f for f in result.findings if f.rule_id.startswith("policy.")]
            checked += 1
            if bool(result.findings) != (fixture.parent.name == "fail"):
                wrong.append(f"{obj['kind']} {fixture.relative_to(PSS)}")
    assert wrong == []
    assert checked == 3 * {"baseline": 49, "restricted": 99}[level]


def _variants(obj: dict[str, Any], rng: random.Random) -> list[tuple[dict[str, Any], bool]]:
    """(variant, retyped) pairs: one field below spec/metadata removed or given another type."""
    candidates = [p for p in paths(obj) if p[0] in ("spec", "metadata") and len(p) > 1]
    out = []
    for path in rng.sample(candidates, min(VARIANTS, len(candidates))):
        value = rng.choice([paths, *ODD_VALUES])
        out.append((mutated(obj, path, value), value is not paths))
    return out


def _corpus() -> tuple[list[Resource], list[Resource], set[str]]:
    """Objects to compare on, the unchanged ones among them (what referential templates see:
    an ill-typed inventory object would make every evaluation that reads it fail), and the
    locations of the retyped (ill-typed) variants."""
    rng = random.Random(20261202)
    bodies: list[tuple[dict[str, Any], str]] = []
    for _, object_file, inventory in suite_cases():
        for res in read_objects(object_file) + [o for p in inventory for o in read_objects(p)]:
            bodies.append((res.body, str(object_file)))
    for fixture in sorted(PSS.glob("*/*/*.yaml")):
        pod = yaml.safe_load(fixture.read_text(encoding="utf-8"))
        bodies += [(obj, f"{fixture}#{obj['kind']}") for obj in wrapped(pod)]
    out, originals, retyped = [], [], set()
    for body, where in bodies:
        out.append(resource(body, where))
        originals.append(out[-1])
        for n, (variant, odd) in enumerate(_variants(body, rng)):
            out.append(resource(variant, f"{where}#variant{n}"))
            if odd:
                retyped.add(f"{where}#variant{n}")
    return out, originals, retyped


def _failed(evaluation: Evaluation) -> set[tuple[str, str, str]]:
    return {key for key, found in by_pair(evaluation).items()
            if any("policy.evaluation-error" in k for k in found)}


def _compare(ours: Evaluation, oracle: Evaluation, retyped: set[str]) -> Tally[str]:
    """Assert equality with the oracle outside failed pairs; the failures, tallied."""
    oracle_failed, ours_failed = _failed(oracle), _failed(ours)
    failed = oracle_failed | ours_failed
    assert {key[0] for key in failed} <= retyped, "a built-in failed on a well-typed object"
    mine = {k: v for k, v in by_pair(ours).items() if k not in failed}
    theirs = {k: v for k, v in by_pair(oracle).items() if k not in failed}
    missing = {k: v for k, v in theirs.items() if mine.get(k) != v}
    extra = {k: v for k, v in mine.items() if theirs.get(k) != v}
    assert (missing, extra) == ({}, {})
    assert sum(sum(t.values()) for t in theirs.values()) > 1000  # the corpus does violate
    return Tally("both" if key in oracle_failed and key in ours_failed else
                 "oracle only" if key in oracle_failed else "ours only" for key in failed)


@pytest.mark.slow
def test_scan_paths_give_opas_verdicts(monkeypatch: pytest.MonkeyPatch,
                                       rvm_runs: RvmRuns) -> None:
    resources, known, retyped = _corpus()
    chosen = policies()
    oracle = Evaluator(chosen, engine=opa.OpaEngine()).run(resources, known=known, workers=1)
    compiled = Evaluator(chosen).run(resources, known=known, workers=1)
    assert rvm_runs.runs > 0  # the scan's path: the compiled VM
    with monkeypatch.context() as patch:  # regorus's interpreter only (engine given: no OPA)
        patch.setattr(Evaluator, "may_compile", lambda self, template: False)
        before = rvm_runs.runs
        interpreted = Evaluator(chosen, engine=RegorusEngine()).run(resources, known=known,
                                                                    workers=1)
        assert rvm_runs.runs == before  # really the interpreter
    assert oracle.errors == compiled.errors == interpreted.errors == []
    assert oracle.engines[0].startswith("opa ") and compiled.engines[0].startswith("regorus ")
    assert all(e.startswith("regorus ") for e in interpreted.engines)
    for path in (compiled, interpreted):
        tally = _compare(path, oracle, retyped)
        # ill-typed variants only (asserted in _compare), and a minority of the pairs
        assert sum(tally.values()) < len(resources) * len(chosen) // 10, tally


def test_each_case_inventory_gives_opas_verdicts() -> None:
    cases = [(p, o, inv) for p, o, inv in suite_cases() if inv]
    assert cases
    for policy, object_file, inventory in cases:
        known = [o for p in inventory for o in read_objects(p)]
        objects = read_objects(object_file)
        oracle = Evaluator([policy], engine=opa.OpaEngine()).run(objects, known=known,
                                                                 workers=1)
        ours = Evaluator([policy]).run(objects, known=known, workers=1)
        assert ours.findings == oracle.findings, object_file
