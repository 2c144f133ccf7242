"""Flux and Argo CD per-object annotations: what the engines do not reconcile or compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from checker.drift.compare import DriftOptions, DriftResult, compare
from checker.drift.secrets import SecretHasher
from checker.drift.sources import KindRef, Snapshot, protect
from checker.load.objects import load_file
from checker.model import Resource, SourceLocation

HASHER = SecretHasher(b"unit-key")
ENTRY = SourceLocation("clusters/prod/kustomization.yaml")
FLUX = {"kustomize.toolkit.fluxcd.io/name": "apps",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}


def manifest(annotation: str = "") -> str:
    notes = f"  annotations:\n    {annotation}\n" if annotation else ""
    return ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: shop\n"
            f"{notes}data:\n  a: \"1\"\n")


def desired(tmp_path: Path, text: str) -> list[Resource]:
    (tmp_path / "m.yaml").write_text(text)
    return load_file(tmp_path / "m.yaml", tmp_path).resources


def cm(name: str = "c", value: str = "2", **notes: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "shop", "labels": dict(FLUX),
                         "annotations": notes},
            "data": {"a": value}}


def check(resources: list[Resource], live: list[dict[str, Any]]) -> DriftResult:
    snap = Snapshot(objects=[protect(o, HASHER) for o in live],
                    read_kinds={KindRef("", "ConfigMap")}, key_id=HASHER.key_id)
    return compare(resources, snap, HASHER, DriftOptions(entry=ENTRY))


def rules(result: DriftResult) -> list[str]:
    return sorted(f.rule_id for f in result.findings)


def test_changed_value_is_drift_without_annotations(tmp_path: Path) -> None:
    assert rules(check(desired(tmp_path, manifest()), [cm()])) == ["drift.modified"]


@pytest.mark.parametrize(("in_git", "live_notes"), [
    ("kustomize.toolkit.fluxcd.io/reconcile: disabled", {}),
    ("", {"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}),
    ("kustomize.toolkit.fluxcd.io/ssa: Ignore", {}),
])
def test_flux_does_not_reconcile_is_a_note_not_a_pass(tmp_path: Path, in_git: str,
                                                      live_notes: dict[str, str]) -> None:
    result = check(desired(tmp_path, manifest(in_git)), [cm(**live_notes)])
    assert rules(result) == ["drift.not-reconciled"]
    assert result.findings[0].severity.label == "note"
    assert "Flux does not reconcile" in result.findings[0].message
    assert result.managed == 0 and result.in_sync == 0


def test_flux_if_not_present_only_checks_existence(tmp_path: Path) -> None:
    res = desired(tmp_path, manifest("kustomize.toolkit.fluxcd.io/ssa: IfNotPresent"))
    result = check(res, [cm()])
    assert result.findings == [] and result.in_sync == 1
    assert rules(check(res, [])) == ["drift.missing"]


def test_flux_merge_is_compared_as_usual(tmp_path: Path) -> None:
    res = desired(tmp_path, manifest("kustomize.toolkit.fluxcd.io/ssa: Merge"))
    assert rules(check(res, [cm()])) == ["drift.modified"]


@pytest.mark.parametrize(("notes", "unmanaged"), [
    ({}, True),
    ({"kustomize.toolkit.fluxcd.io/prune": "disabled"}, False),
    ({"argocd.argoproj.io/compare-options": "ServerSideDiff=true, IgnoreExtraneous"}, False),
    ({"argocd.argoproj.io/compare-options": "ServerSideDiff=true"}, True),
])
def test_extraneous_objects_the_engine_keeps(tmp_path: Path, notes: dict[str, str],
                                            unmanaged: bool) -> None:
    res = desired(tmp_path, manifest())
    result = check(res, [cm(value="1"), cm(name="extra", **notes)])
    assert rules(result) == (["drift.unmanaged"] if unmanaged else [])


@pytest.mark.parametrize(("labels", "notes", "expected"), [
    ({"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}, {}, ["drift.not-reconciled"]),
    ({"kustomize.toolkit.fluxcd.io/ssa": "ignore"}, {}, ["drift.not-reconciled"]),
    ({"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}, {}, []),
    # a label that says disabled wins over an annotation that does not (AnyInMetadata)
    ({"kustomize.toolkit.fluxcd.io/reconcile": "Disabled"},
     {"kustomize.toolkit.fluxcd.io/reconcile": "enabled"}, ["drift.not-reconciled"]),
    ({"kustomize.toolkit.fluxcd.io/reconcile": "enabled"}, {}, ["drift.modified"]),
])
def test_flux_reads_its_keys_as_labels_too(tmp_path: Path, labels: dict[str, str],
                                           notes: dict[str, str], expected: list[str]) -> None:
    live = cm(**notes)
    live["metadata"]["labels"].update(labels)
    assert rules(check(desired(tmp_path, manifest()), [live])) == expected


def test_flux_prune_disabled_as_a_label_keeps_an_extraneous_object(tmp_path: Path) -> None:
    extra = cm(name="extra")
    extra["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/prune"] = "disabled"
    assert rules(check(desired(tmp_path, manifest()), [cm(value="1"), extra])) == []
