"""Fields the GitOps tool applied and Git no longer declares (last-applied, managedFields)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from checker.drift.applied import evidence, field_set
from checker.drift.compare import DriftOptions, DriftResult, compare
from checker.drift.secrets import SecretHasher
from checker.drift.sources import FileSource, KindRef, Snapshot, group_of, protect, write_snapshot
from checker.load.objects import load_file
from checker.model import Resource, SourceLocation

HASHER = SecretHasher(b"unit-key")
ENTRY = SourceLocation("clusters/prod/kustomization.yaml")

GIT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels:
    app: web
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: app
          image: web:1
          env:
            - name: KEEP
              value: "1"
"""
# what was applied before: a label, an annotation, a scalar, an env var and a whole block
BEFORE: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop",
                 "labels": {"app": "web", "team": "payments"},
                 "annotations": {"owner": "alice"}},
    "spec": {"replicas": 2, "minReadySeconds": 10,
             "template": {"spec": {
                 "nodeSelector": {"disk": "ssd", "zone": "a"},
                 "containers": [{"name": "app", "image": "web:1",
                                 "imagePullPolicy": "IfNotPresent",
                                 "env": [{"name": "KEEP", "value": "1"},
                                         {"name": "OLD", "value": "2"}]}]}}}}


def desired(tmp_path: Path, text: str) -> list[Resource]:
    (tmp_path / "m.yaml").write_text(text)
    return load_file(tmp_path / "m.yaml", tmp_path).resources


def check(resources: list[Resource], live: list[dict[str, Any]],
          managers: tuple[str, ...] | None = None) -> DriftResult:
    kinds = {KindRef(r.group, r.kind) for r in resources} | {
        KindRef(group_of(o["apiVersion"]), o["kind"]) for o in live}
    snap = Snapshot(objects=[protect(o, HASHER) for o in live], read_kinds=kinds,
                    key_id=HASHER.key_id)
    options = DriftOptions(entry=ENTRY) if managers is None else DriftOptions(
        entry=ENTRY, field_managers=managers)
    return compare(resources, snap, HASHER, options)


def live_with(**meta: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(BEFORE))
    body["metadata"].update(meta)
    body["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = "apps"  # Flux's own
    return body


def found(result: DriftResult) -> list[tuple[str, str, int]]:
    return sorted((f.details["field"], f.details["change"], f.location.line)
                  for f in result.findings)


EXPECTED = [
    ("metadata.annotations.owner", "not-in-git", 3),
    ("metadata.labels.team", "not-in-git", 6),
    ("spec.minReadySeconds", "not-in-git", 8),
    ("spec.template.spec.containers[app].env[OLD]", "added", 15),  # an extra keyed item
    ("spec.template.spec.nodeSelector.disk", "not-in-git", 11),
    ("spec.template.spec.nodeSelector.zone", "not-in-git", 11),
]


def test_last_applied_shows_fields_deleted_from_git(tmp_path: Path) -> None:
    res = desired(tmp_path, GIT)
    live = live_with(annotations={"owner": "alice", "kubectl.kubernetes.io/last-applied-"
                                  "configuration": json.dumps(BEFORE)})
    result = check(res, [live])
    assert found(result) == EXPECTED
    label = next(f for f in result.findings if f.details["field"] == "metadata.labels.team")
    assert label.message == ('metadata.labels.team is still set in the cluster ("payments"), '
                             "applied by last-applied-configuration, but Git no longer "
                             "declares it")
    # imagePullPolicy was applied and Git dropped it, but live has the default: no change
    assert not any("imagePullPolicy" in f.details["field"] for f in result.findings)
    # without evidence (no managers): only the extra env var, the old blind spot
    assert len(check(res, [live], managers=()).findings) == 1


def test_server_side_apply_field_owner_shows_fields_deleted_from_git(tmp_path: Path) -> None:
    res = desired(tmp_path, GIT)
    flux = {"manager": "kustomize-controller", "operation": "Apply", "apiVersion": "apps/v1",
            "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": field_set(BEFORE)}
    edit = {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:hand": {}}}}}
    status = {"manager": "kube-controller-manager", "operation": "Update",
              "subresource": "status", "fieldsType": "FieldsV1",
              "fieldsV1": {"f:status": {"f:replicas": {}}}}
    live = live_with(managedFields=[flux, edit, status])
    live["metadata"]["labels"]["hand"] = "x"
    result = check(res, [live])
    assert found(result) == EXPECTED  # kubectl-edit is not a GitOps manager by default
    assert len(check(res, [live], managers=("argocd-controller",)).findings) == 1
    edited = check(res, [live], managers=("kubectl-edit",))
    assert found(edited) == [("metadata.labels.hand", "not-in-git", 6), EXPECTED[3]]
    assert len(check(res, [live], managers=("kustomize-controller:Update",)).findings) == 1
    # the snapshot keeps the field sets, not times or subresources, deterministically
    kept = protect(live, HASHER)["metadata"]["managedFields"]
    assert [e["manager"] for e in kept] == ["kustomize-controller", "kubectl-edit"]
    assert all("time" not in e for e in kept)


def test_field_managed_by_another_version_is_not_used(tmp_path: Path) -> None:
    res = desired(tmp_path, GIT)
    flux = {"manager": "kustomize-controller", "operation": "Apply",
            "apiVersion": "apps/v1beta2", "fieldsType": "FieldsV1",
            "fieldsV1": field_set(BEFORE)}
    assert [f.details["field"] for f in check(res, [live_with(managedFields=[flux])]).findings
            ] == ["spec.template.spec.containers[app].env[OLD]"]


def test_a_field_gone_live_is_not_reported(tmp_path: Path) -> None:
    res = desired(tmp_path, GIT)
    live = live_with(annotations={"kubectl.kubernetes.io/last-applied-configuration":
                                  json.dumps(BEFORE)})
    del live["spec"]["minReadySeconds"]
    del live["spec"]["template"]["spec"]["nodeSelector"]
    assert [f[0] for f in found(check(res, [live]))] == [
        "metadata.labels.team", "spec.template.spec.containers[app].env[OLD]"]


SECRET_GIT = """\
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
stringData:
  user: alice
"""


def test_secret_evidence_holds_no_value(tmp_path: Path) -> None:
    res = desired(tmp_path, SECRET_GIT)
    applied = {"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "db", "namespace": "shop", "labels": {"tier": "db"}},
               "stringData": {"user": "alice", "password": "hunter2-secret"}}
    live = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "db", "namespace": "shop", "labels": {"tier": "db"},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                                         json.dumps(applied)},
                         "managedFields": [{
                             "manager": "kustomize-controller", "operation": "Apply",
                             "apiVersion": "v1", "fieldsType": "FieldsV1",
                             "fieldsV1": {"f:data": {"f:password": {}},
                                          "f:metadata": {"f:finalizers": {
                                              'v:"hunter2-secret"': {}}}}}]},
            "data": {"user": "YWxpY2U=", "password": "aHVudGVyMi1zZWNyZXQ="}}
    protected = protect(live, HASHER)
    assert "hunter2" not in json.dumps(protected)
    result = check(res, [live])
    assert sorted((f.details["field"], f.location.line) for f in result.findings) == [
        ("data.password", 6), ("metadata.labels.tier", 3)]
    assert "hunter2" not in json.dumps([(f.message, f.details) for f in result.findings])


def test_evidence_round_trips_through_the_snapshot_file(tmp_path: Path) -> None:
    live = live_with(annotations={"owner": "alice", "kubectl.kubernetes.io/last-applied-"
                                  "configuration":
                                  json.dumps(BEFORE)})
    snap = Snapshot(objects=[protect(live, HASHER)], read_kinds={KindRef("apps", "Deployment")},
                    key_id=HASHER.key_id)
    out = tmp_path / "s.json"
    write_snapshot(snap, out)
    again = FileSource(out, HASHER).read()
    second = tmp_path / "s2.json"
    write_snapshot(again, second)
    assert out.read_bytes() == second.read_bytes()
    assert found(compare(desired(tmp_path, GIT), again, HASHER,
                         DriftOptions(entry=ENTRY))) == EXPECTED


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"x"', "[" * 5000 + "]" * 5000])
def test_unparsable_last_applied_is_no_evidence(text: str) -> None:
    assert evidence({"annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                                     text}}, secret=False) == []


def _cli(tmp_path: Path, config: str | None, *extra: str) -> Any:
    from click.testing import CliRunner

    from checker.cli import cli

    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    (repo / "m.yaml").write_text(GIT)
    if config is not None:
        (repo / ".gitops-checker.yaml").write_text(config)
    live = live_with(annotations={"owner": "alice", "kubectl.kubernetes.io/last-applied-"
                                  "configuration": json.dumps(BEFORE)})
    (tmp_path / "live.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List",
                                                    "items": [live]}))
    return CliRunner().invoke(cli, ["drift", str(repo), "--root", str(repo), "--snapshot",
                                    str(tmp_path / "live.json"), "--format", "json", *extra],
                              env={"GITHUB_EVENT_NAME": "push"})


def test_field_managers_are_configurable(tmp_path: Path) -> None:
    def changes(result: Any) -> list[str]:
        assert result.exit_code in (0, 1), result.output
        return sorted(f["details"]["change"] for f in json.loads(result.stdout)["findings"])

    assert changes(_cli(tmp_path, None)).count("not-in-git") == 5
    assert changes(_cli(tmp_path, "drift:\n  fieldManagers: []\n")) == ["added"]
    assert changes(_cli(tmp_path, "drift:\n  fieldManagers: [kubectl:Apply]\n")) == ["added"]
    assert changes(_cli(tmp_path, "drift:\n  fieldManagers: []\n", "--field-manager",
                        "last-applied-configuration")).count("not-in-git") == 5
    assert changes(_cli(tmp_path, None, "--field-manager", "none")) == ["added"]
    bad = _cli(tmp_path, "drift:\n  fieldManagers:\n    - 'flux:Patch'\n")
    assert bad.exit_code == 2 and ".gitops-checker.yaml:3" in bad.output, bad.output


def test_field_managers_come_from_the_config_the_run_trusts(tmp_path: Path) -> None:
    """The drift stage takes ``drift.fieldManagers`` from the config the pipeline resolved
    (the base ref's in a pull request), not from a second read of the working tree's file:
    here the file on disk switches the evidence off, the trusted config does not."""
    from checker.config import load_config
    from checker.options import DriftRunOptions
    from checker.pipeline import Stages, run

    _cli(tmp_path, "drift:\n  fieldManagers: []\n")  # lays out the repository and snapshot
    repo = tmp_path / "repo"
    trusted = load_config(repo, repo / ".gitops-checker.yaml", content=b"groupBy: cluster\n")
    assert trusted.drift_field_managers is None
    options = DriftRunOptions(paths=(repo,), root=repo, snapshot=tmp_path / "live.json")
    report = run(options.scan_options(), Stages(admit=False, drift=options), config=trusted,
                 environ={"GITHUB_EVENT_NAME": "push"})
    changes = [f.details.get("change") for f in report.findings if f.category == "drift"]
    assert changes.count("not-in-git") == 5
    on_disk = run(options.scan_options(), Stages(admit=False, drift=options),
                  environ={"GITHUB_EVENT_NAME": "push"})
    assert [f.details.get("change") for f in on_disk.findings
            if f.category == "drift"] == ["added"]
