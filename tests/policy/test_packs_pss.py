"""The PSS packs classify the Kubernetes Pod Security admission fixtures exactly as Kubernetes.

Fixtures: tests/fixtures/pss/<version>/<level>/{pass,fail}/*.yaml (see the NOTICE there). A
``fail`` fixture must get at least one violation from the level's pack, a ``pass`` fixture none;
the same pod specs are also checked wrapped in a Deployment and a CronJob.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from checker.load.objects import make_resource
from checker.model import Finding, Resource, SourceLocation
from checker.policy.evaluate import Evaluator
from checker.policy.packs import load_catalog, pack_policies
from tests.conftest import FIXTURES

PSS_VERSION = "v1.37"
FIXTURES = FIXTURES / "pss" / PSS_VERSION
LEVELS = ("baseline", "restricted")


def fixtures(level: str) -> list[Path]:
    return sorted((FIXTURES / level).glob("*/*.yaml"))


def as_deployment(pod: dict[str, Any]) -> dict[str, Any]:
    meta = copy.deepcopy(pod.get("metadata") or {})
    meta.setdefault("labels", {})["app"] = "fixture"
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": meta["name"]},
            "spec": {"selector": {"matchLabels": {"app": "fixture"}},
                     "template": {"metadata": meta, "spec": copy.deepcopy(pod["spec"])}}}


def as_cronjob(pod: dict[str, Any]) -> dict[str, Any]:
    meta = copy.deepcopy(pod.get("metadata") or {})
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": meta["name"]},
            "spec": {"schedule": "0 0 * * *", "jobTemplate": {"spec": {"template": {
                "metadata": meta, "spec": copy.deepcopy(pod["spec"])}}}}}


WRAPPERS = {"Pod": lambda pod: pod, "Deployment": as_deployment, "CronJob": as_cronjob}


@pytest.fixture(scope="module")
def evaluators() -> dict[str, Evaluator]:
    catalog = load_catalog()
    return {level: Evaluator(pack_policies(catalog, [f"pss-{level}"])) for level in LEVELS}


def violations(evaluator: Evaluator, obj: dict[str, Any], path: Path) -> list[Finding]:
    res: Resource = make_resource(obj, SourceLocation(path.as_posix()), {})
    result = evaluator.run([res])
    assert result.errors == []
    assert [f for f in result.findings if f.rule_id.startswith("policy.")] == []
    return result.findings


def test_fixture_set_is_complete() -> None:
    """Both levels, both verdicts, and the number of files the Kubernetes tree has."""
    counts = {(lvl, v): len(list((FIXTURES / lvl / v).glob("*.yaml")))
              for lvl in LEVELS for v in ("pass", "fail")}
    assert counts == {("baseline", "pass"): 15, ("baseline", "fail"): 34,
                      ("restricted", "pass"): 23, ("restricted", "fail"): 76}


@pytest.mark.slow
@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
@pytest.mark.parametrize("level", LEVELS)
def test_fixtures_classify_exactly(evaluators: dict[str, Evaluator], level: str,
                                   wrapper: str) -> None:
    wrong = []
    for path in fixtures(level):
        pod = yaml.safe_load(path.read_text(encoding="utf-8"))
        found = violations(evaluators[level], WRAPPERS[wrapper](pod), path)
        expected_fail = path.parent.name == "fail"
        if bool(found) != expected_fail:
            wrong.append(f"{path.relative_to(FIXTURES)}: {[f.message for f in found]}")
    assert wrong == [], f"{len(wrong)} fixtures misclassified as {wrapper}"


@pytest.mark.slow
def test_every_pss_policy_is_exercised_by_the_fixtures(evaluators: dict[str, Evaluator]) -> None:
    """The fixtures are not vacuous: each PSS policy fires on at least one fail fixture."""
    fired: set[str] = set()
    for path in fixtures("restricted"):
        if path.parent.name == "fail":
            pod = yaml.safe_load(path.read_text(encoding="utf-8"))
            fired |= {f.rule_id for f in violations(evaluators["restricted"], pod, path)}
    catalog = load_catalog()
    assert fired == set(catalog.resolve(["pss-restricted"]))


def test_findings_point_at_the_offending_field(evaluators: dict[str, Evaluator]) -> None:
    """details.path reaches the exact field of the wrapped pod spec."""
    pod = yaml.safe_load((FIXTURES / "baseline/fail/hostports0.yaml").read_text())
    found = violations(evaluators["baseline"], as_cronjob(pod), Path("x.yaml"))
    paths = {f.field_path for f in found}
    assert ("spec", "jobTemplate", "spec", "template", "spec", "containers", 0, "ports", 0,
            "hostPort") in paths


@pytest.mark.parametrize(("api_version", "kind", "spec_path"), [
    ("argoproj.io/v1alpha1", "Rollout", ("spec", "template", "spec")),
    ("apps.kruise.io/v1alpha1", "CloneSet", ("spec", "template", "spec")),
    ("serving.knative.dev/v1", "Service", ("spec", "template", "spec")),
    ("keda.sh/v1alpha1", "ScaledJob", ("spec", "jobTemplate", "spec", "template", "spec")),
    ("v1", "PodTemplate", ("template", "spec")),
    ("v1", "ReplicationController", ("spec", "template", "spec")),
])
def test_well_known_custom_resources_are_checked(evaluators: dict[str, Evaluator],
                                                 api_version: str, kind: str,
                                                 spec_path: tuple[str, ...]) -> None:
    spec = {"containers": [{"name": "app", "image": "app:1",
                            "securityContext": {"privileged": True}}]}
    body: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
    node = body
    for key in spec_path[:-1]:
        node = node.setdefault(key, {})
    node[spec_path[-1]] = spec
    found = violations(evaluators["baseline"], body, Path("x.yaml"))
    assert [f.rule_id for f in found] == ["pss-privileged"]
    assert found[0].field_path == (*spec_path, "containers", 0, "securityContext", "privileged")


def test_unmatched_kinds_are_not_checked(evaluators: dict[str, Evaluator]) -> None:
    """A kind the constraints do not match is not evaluated, whatever its shape."""
    body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"},
            "spec": {"template": {"spec": {"hostNetwork": True, "containers": []}}}}
    assert violations(evaluators["baseline"], body, Path("x.yaml")) == []
