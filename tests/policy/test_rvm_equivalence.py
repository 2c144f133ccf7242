"""Every shipped template gives the same results on the RVM as on the interpreter.

checker.policy.rvm runs only templates that are byte-identical to a shipped one, because this
test checks exactly those: every suite case (with its inventory), every Pod Security fixture as
a Pod, a Deployment and a CronJob, and variants of all of them with one field removed or given
a value of another type, evaluated with every constraint of every suite. A failure here means a
shipped template uses something the RVM evaluates differently: fix the template or the rewrite
in checker.policy.rvm before shipping it.

One difference is expected and excluded: when a built-in gets an argument of the wrong type
(``split(0, "/")``, only possible in objects the API server would reject), the interpreter
raises an error while the RVM treats the call as undefined, as OPA does unless strict built-in
errors are on. Pairs (object, constraint) on which the interpreter raised are compared only in
count, and must stay a minority of the variants.
"""

from __future__ import annotations

import copy
import random
import re
from collections import Counter as Tally
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from checker.load.objects import make_resource
from checker.model import Resource, SourceLocation
from checker.policy.evaluate import Evaluation, Evaluator
from checker.policy.model import Policy
from checker.policy.packs import is_shipped, packs_dir
from checker.policy.regorus_engine import RegorusEngine
from checker.policy.suites import _policy, find_suites, read_objects
from tests.conftest import FIXTURES, RvmRuns

PACKS = packs_dir()
PSS = FIXTURES / "pss" / "v1.37"
ODD_VALUES: list[Any] = [None, "", 0, 1.5, True, False, [], {}, "x", ["x"], {"x": "y"}]


def suite_cases() -> Iterator[tuple[Policy, Path, list[Path]]]:
    """(policy, object file, inventory files) of every case of every shipped suite."""
    for suite_file in find_suites([PACKS]):
        suite = yaml.safe_load(suite_file.read_text(encoding="utf-8"))
        for test in suite.get("tests") or []:
            if test.get("invalid"):
                continue
            policy = _policy(suite_file.parent, test)
            for case in test.get("cases") or []:
                yield (policy, suite_file.parent / case["object"],
                       [suite_file.parent / p for p in case.get("inventory") or []])


def policies() -> list[Policy]:
    """Each distinct (template, constraint) of the suites, once."""
    seen: dict[str, Policy] = {}
    for policy, _, _ in suite_cases():
        key = repr((policy.template.name, sorted(policy.constraint.body.items())))
        seen.setdefault(key, policy)
    return list(seen.values())


def wrapped(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """A PSS fixture pod as a Pod, a Deployment and a CronJob."""
    meta = copy.deepcopy(pod.get("metadata") or {})
    template = {"metadata": meta, "spec": copy.deepcopy(pod["spec"])}
    return [
        pod,
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": meta.get("name", "d"), "namespace": "team"},
         "spec": {"replicas": 1, "template": copy.deepcopy(template)}},
        {"apiVersion": "batch/v1", "kind": "CronJob",
         "metadata": {"name": meta.get("name", "c"), "namespace": "team"},
         "spec": {"schedule": "0 0 * * *", "jobTemplate": {"spec": {"template": template}}}},
    ]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside ``value`` below its root."""
    items = (value.items() if isinstance(value, dict)
             else enumerate(value) if isinstance(value, list) else ())
    for key, sub in items:
        yield (*prefix, key)
        yield from paths(sub, (*prefix, key))


def mutated(obj: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """``obj`` with the field at ``path`` removed (value is ``paths``) or replaced."""
    out = copy.deepcopy(obj)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    if value is paths:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(value)
    return out


def variants(obj: dict[str, Any], rng: random.Random, count: int) -> list[dict[str, Any]]:
    """``count`` copies of ``obj``, each with one field below ``spec`` removed or retyped."""
    candidates = [p for p in paths(obj) if p[0] in ("spec", "metadata") and len(p) > 1]
    out = []
    for path in rng.sample(candidates, min(count, len(candidates))):
        out.append(mutated(obj, path, rng.choice([paths, *ODD_VALUES])))
    return out


def resource(obj: dict[str, Any], where: str) -> Resource:
    return make_resource(obj, SourceLocation(where), {})


def corpus() -> list[Resource]:
    """Suite objects, PSS fixtures and their variants."""
    rng = random.Random(20261127)
    bodies: list[tuple[dict[str, Any], str]] = []
    for _, object_file, inventory in suite_cases():
        for res in read_objects(object_file) + [o for p in inventory for o in read_objects(p)]:
            bodies.append((res.body, str(object_file)))
    for fixture in sorted(PSS.glob("*/*/*.yaml")):
        pod = yaml.safe_load(fixture.read_text(encoding="utf-8"))
        bodies += [(obj, str(fixture)) for obj in wrapped(pod)]
    out = []
    for body, where in bodies:
        out.append(resource(body, where))
        out += [resource(v, f"{where}#variant{n}")
                for n, v in enumerate(variants(body, rng, 4))]
    return out


_CONSTRAINT = re.compile(r"\(constraint ([^)]+)\) failed on")


def by_pair(evaluation: Evaluation) -> dict[tuple[str, str, str], Tally[str]]:
    """Findings per (object's file, object, constraint)."""
    out: dict[tuple[str, str, str], Tally[str]] = {}
    for f in evaluation.findings:
        match = _CONSTRAINT.search(f.message)
        constraint = match.group(1) if match else str(f.details.get("constraint"))
        key = (f.location.path, f.resource, constraint)
        out.setdefault(key, Tally())[repr((f.rule_id, f.message, f.field_path))] += 1
    return out


def errored(evaluation: Evaluation) -> set[tuple[str, str, str]]:
    """Pairs on which evaluation raised an error."""
    return {key for key, found in by_pair(evaluation).items()
            if any("policy.evaluation-error" in k for k in found)}


def both(policies: list[Policy], resources: list[Resource], known: list[Resource],
         monkeypatch: pytest.MonkeyPatch) -> tuple[Evaluation, Evaluation]:
    """(RVM, interpreter-only) evaluations of the same run."""
    compiled = Evaluator(policies).run(resources, known=known, workers=1)
    with monkeypatch.context() as patch:  # the engine given: regorus, not OPA for unverified
        patch.setattr(Evaluator, "may_compile", lambda self, template: False)
        interpreted = Evaluator(policies, engine=RegorusEngine()).run(resources, known=known,
                                                                      workers=1)
    return compiled, interpreted


def test_every_shipped_template_is_verified() -> None:
    assert all(is_shipped(p.template) for p in policies())


@pytest.mark.slow
def test_rvm_matches_interpreter_on_suites_fixtures_and_variants(
        monkeypatch: pytest.MonkeyPatch, rvm_runs: RvmRuns) -> None:
    counter = rvm_runs
    resources = corpus()
    compiled, interpreted = both(policies(), resources, resources, monkeypatch)
    assert counter.runs >= len(resources) // 2
    assert compiled.errors == interpreted.errors
    strict = errored(interpreted)
    assert errored(compiled) <= strict
    assert len({key[:2] for key in strict}) < len(resources) // 4
    ours = {k: v for k, v in by_pair(compiled).items() if k not in strict}
    theirs = {k: v for k, v in by_pair(interpreted).items() if k not in strict}
    assert ours == theirs
    assert sum(sum(t.values()) for t in ours.values()) > 1000  # the corpus does violate
    if not strict:  # nothing excluded: the whole result is identical, order included
        assert compiled.findings == interpreted.findings
    assert counter.gave_up == 0


def test_rvm_matches_interpreter_with_each_case_inventory(
        monkeypatch: pytest.MonkeyPatch, rvm_runs: RvmRuns) -> None:
    counter = rvm_runs
    cases = [(p, o, inv) for p, o, inv in suite_cases() if inv]
    assert cases
    for policy, object_file, inventory in cases:
        known = [o for p in inventory for o in read_objects(p)]
        objects = read_objects(object_file)
        compiled, interpreted = both([policy], objects, known, monkeypatch)
        assert compiled.findings == interpreted.findings, object_file
    assert counter.runs >= len(cases)
    assert counter.gave_up == 0
