"""Drift's verdicts on the GitOps engines' own test vectors (tests/fixtures/engines).

Argo CD's gitops-engine (``pkg/diff``) and Flux's ``fluxcd/pkg`` (``ssa``, ``ssa/jsondiff``) test
their diffs on these files; ``cases.yaml`` beside them lists each of their tests that uses a pair,
with the edits the test makes and the verdict it asserts. Every case runs here: drift must give
the engine's verdict, or the different verdict the case names with the reason (``ours`` and
``why``), so a change in either direction fails. The totals are the figures in docs/drift.md.
"""

from __future__ import annotations

import base64
import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from checker.drift.applied import field_set
from checker.drift.compare import DriftOptions, DriftResult, compare
from checker.drift.ignore import IgnoreRule
from checker.drift.rules import RULE_MISSING, RULE_MODIFIED, RULE_NOT_RECONCILED
from checker.drift.secrets import SecretHasher
from checker.drift.sources import KindRef, Snapshot, group_of, protect
from checker.load.objects import load_file
from checker.model import SourceLocation

ENGINES = Path(__file__).resolve().parents[1] / "fixtures" / "engines"
HASHER = SecretHasher(b"engine-vectors")
ENTRY = SourceLocation("clusters/test/kustomization.yaml")
NAMESPACED_WITHOUT_ONE = frozenset({"ClusterRole", "MutatingWebhookConfiguration"})


def _cases(engine: str) -> list[dict[str, Any]]:
    data = yaml.safe_load((ENGINES / engine / "cases.yaml").read_text(encoding="utf-8"))
    return list(data["cases"])


ARGO = _cases("argo")
FLUX = _cases("flux")
FLUX_NAMESPACE = yaml.safe_load((ENGINES / "flux" / "cases.yaml").read_text())["namespace"]


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def edit(obj: dict[str, Any], ops: list[dict[str, Any]]) -> None:
    """The test's edits: ``set`` (creating mappings), ``add`` (``-`` appends), ``remove``,
    ``keep-first`` (a slice)."""
    for op in ops:
        if "kind" in op and op["kind"] != obj.get("kind"):
            continue
        verb = next(v for v in ("set", "add", "remove", "keep-first") if v in op)
        *parents, last = _pointer(op[verb])
        node: Any = obj
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if verb == "remove":
            del node[last]
        elif verb == "keep-first":  # the test's slice [:count]
            node[last] = node[last][:op["count"]]
        elif isinstance(node, list):
            node.append(copy.deepcopy(op["value"])) if last == "-" else node.insert(
                int(last), copy.deepcopy(op["value"]))
        else:
            node[last] = copy.deepcopy(op["value"])


def as_stored(obj: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores for an object: ``stringData`` merged into ``data``."""
    if obj.get("kind") == "Secret" and isinstance(obj.get("stringData"), dict):
        data = dict(obj.get("data") or {})
        for key, value in obj.pop("stringData").items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data
    return obj


def run(tmp_path: Path, desired: dict[str, Any], live: dict[str, Any] | None,
        ignore: tuple[IgnoreRule, ...] = (), managers: tuple[str, ...] | None = None,
        ) -> DriftResult:
    (tmp_path / "manifest.yaml").write_text(json.dumps(desired), encoding="utf-8")
    resources = load_file(tmp_path / "manifest.yaml", tmp_path).resources
    assert len(resources) == 1
    snap = Snapshot(objects=[protect(live, HASHER)] if live is not None else [],
                    read_kinds={KindRef(group_of(desired["apiVersion"]), desired["kind"])},
                    key_id=HASHER.key_id)
    options = DriftOptions(entry=ENTRY, ignore=ignore) if managers is None else DriftOptions(
        entry=ENTRY, ignore=ignore, field_managers=managers)
    return compare(resources, snap, HASHER, options)


def verdict(result: DriftResult) -> str:
    """none, update, create or exclude (not compared), as the engines name them."""
    rules = {f.rule_id for f in result.findings}
    if RULE_MISSING in rules:
        return "create"
    if RULE_MODIFIED in rules:
        return "update"
    if RULE_NOT_RECONCILED in rules or result.managed == 0:
        return "exclude"
    assert result.in_sync == 1
    return "none"


def _load(engine: str, name: str, kind: str | None = None) -> dict[str, Any]:
    """The file's object (of ``kind``, in a multi-document file); ``%[1]s`` is the id the
    fluxcd/pkg ssa tests format into their object names."""
    text = (ENGINES / engine / name).read_text(encoding="utf-8").replace("%[1]s", "ssa-test")
    docs = [d for d in yaml.safe_load_all(text) if d]
    data: dict[str, Any] = next(d for d in docs if kind is None or d.get("kind") == kind)
    return data


def argo_verdict(tmp_path: Path, case: dict[str, Any]) -> bool:
    config, live = _load("argo", case["config"]), _load("argo", case["live"])
    edit(config, case.get("edit-config", []))
    edit(live, case.get("edit-live", []))
    namespace = (live.get("metadata") or {}).get("namespace")
    if namespace and not config["metadata"].get("namespace"):
        config["metadata"]["namespace"] = namespace  # an Application's destination namespace
    rules = tuple(IgnoreRule(pointers=(p,)) for p in case.get("ignore", []))
    found = verdict(run(tmp_path, config, live, rules))
    assert found in ("none", "update"), found
    return found == "update"


def flux_verdicts(tmp_path: Path, case: dict[str, Any]) -> list[str]:
    out = []
    manager = case.get("manager", "dummy")
    for name in case["files"]:
        base = _load("flux", name, case.get("kind"))
        base.setdefault("metadata", {})["namespace"] = FLUX_NAMESPACE
        desired, cluster = copy.deepcopy(base), copy.deepcopy(base)
        edit(desired, case.get("edit-desired", []))
        edit(cluster, case.get("edit-cluster", []))
        live = None
        if not case.get("cluster-absent"):
            live = as_stored(cluster)
            # applied with server-side apply by the tests' field manager
            live["metadata"]["managedFields"] = [{
                "manager": manager, "operation": "Apply", "apiVersion": live["apiVersion"],
                "fieldsType": "FieldsV1", "fieldsV1": field_set(live)}]
        rules = tuple(IgnoreRule(kind=rule.get("kind", "*"),
                                 pointers=tuple(p for p in rule["paths"] if p))
                      for rule in case.get("ignore", []))
        out.append(verdict(run(tmp_path, desired, live, rules, managers=(manager,))))
    return out


@pytest.mark.parametrize("case", ARGO, ids=[c["test"] for c in ARGO])
def test_argo_cd_gitops_engine_vectors(tmp_path: Path, case: dict[str, Any]) -> None:
    expected = case.get("ours", case["modified"])
    assert argo_verdict(tmp_path, case) is expected, case.get("why", "the engine's verdict")


@pytest.mark.parametrize("case", FLUX, ids=[c["test"] for c in FLUX])
def test_flux_ssa_jsondiff_vectors(tmp_path: Path, case: dict[str, Any]) -> None:
    expected = case.get("ours", case["want"])
    assert flux_verdicts(tmp_path, case) == expected, case.get("why", "the engine's verdict")


def test_every_difference_from_an_engine_is_explained() -> None:
    for case in [*ARGO, *FLUX]:
        if "ours" in case:
            assert case["ours"] != case.get("modified", case.get("want")), case["test"]
            assert len(case.get("why", "")) > 40, case["test"]


def test_agreement_figures(tmp_path: Path) -> None:
    """The totals docs/drift.md states: how many vectors agree, by engine and kind."""
    tally: Counter[str] = Counter()
    for case in ARGO:
        kind = case.get("compares", "config-live")
        agree = argo_verdict(tmp_path, case) is case["modified"]
        tally[f"argo {kind} {'agree' if agree else 'differ'}"] += 1
    for case in FLUX:
        kind = "manager" if case.get("manager") == "resource-manager" else "jsondiff"
        for ours, theirs in zip(flux_verdicts(tmp_path, case), case["want"], strict=True):
            tally[f"flux {kind} {'agree' if ours == theirs else 'differ'}"] += 1
    assert tally == {"argo config-live agree": 15, "argo config-live differ": 2,
                     "argo predicted-live agree": 5, "argo predicted-live differ": 3,
                     "flux jsondiff agree": 35, "flux jsondiff differ": 1,
                     "flux manager agree": 9}
    docs = (Path(__file__).resolve().parents[2] / "docs" / "drift.md").read_text()
    assert all(f"| {figure} |" in docs for figure in ("15 of 17", "5 of 8", "35 of 36",
                                                       "9 of 9"))
