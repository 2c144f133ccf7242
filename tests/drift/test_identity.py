"""Object identity as the API server decides it, and what a snapshot says it read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from checker.cli import cli
from checker.drift.compare import DriftOptions, compare
from checker.drift.scope import Scopes
from checker.drift.secrets import SecretHasher
from checker.drift.sources import FileSource, KindRef, Snapshot, protect
from checker.load.objects import load_file
from checker.model import Resource, SourceLocation

HASHER = SecretHasher(b"unit-key")
ENTRY = SourceLocation("clusters/prod/kustomization.yaml")
FLUX = {"kustomize.toolkit.fluxcd.io/name": "infra",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}

CLUSTER_SCOPED_IN_GIT = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: reader
  namespace: shop
rules: []
---
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: letsencrypt
  namespace: shop
spec:
  acme: {server: "https://acme"}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata:
  name: must-have-owner
  namespace: shop
spec:
  match: {kinds: [{apiGroups: [""], kinds: [Namespace]}]}
"""


def desired(tmp_path: Path, text: str) -> list[Resource]:
    (tmp_path / "m.yaml").write_text(text)
    return load_file(tmp_path / "m.yaml", tmp_path).resources


def live_of(res: Resource, labels: dict[str, str] | None = None) -> dict[str, Any]:
    body = json.loads(json.dumps(res.body))
    body["metadata"].pop("namespace", None)  # how the API server stores a cluster-scoped one
    body["metadata"]["labels"] = labels or {}
    return body


def snap(objects: list[dict[str, Any]], kinds: set[KindRef],
         scopes: dict[KindRef, bool] | None = None) -> Snapshot:
    return Snapshot(objects=[protect(o, HASHER) for o in objects], read_kinds=kinds,
                    key_id=HASHER.key_id, scopes=scopes or {})


def test_cluster_scoped_namespace_in_git_is_ignored_and_noted(tmp_path: Path) -> None:
    res = desired(tmp_path, CLUSTER_SCOPED_IN_GIT)
    kinds = {KindRef(r.group, r.kind) for r in res}
    result = compare(res, snap([live_of(r, FLUX) for r in res], kinds), HASHER,
                     DriftOptions(entry=ENTRY))
    # in sync: not missing, not unmanaged, no exit 1
    assert result.in_sync == 3 and result.managed == 3
    assert [(f.rule_id, f.severity.label, f.location.line) for f in result.findings] == [
        ("drift.namespace-ignored", "note", 5),
        ("drift.namespace-ignored", "note", 12),
        ("drift.namespace-ignored", "note", 20)]
    assert "built-in table" in result.findings[0].message


def test_scope_from_repository_crd_and_from_discovery(tmp_path: Path) -> None:
    text = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Cluster
  names: {kind: Widget, plural: widgets}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: shop}
---
apiVersion: other.io/v1
kind: Gadget
metadata: {name: g, namespace: shop}
"""
    res = desired(tmp_path, text)
    widget, gadget = res[1], res[2]
    kinds = {KindRef(r.group, r.kind) for r in res}
    live = [live_of(res[0]), live_of(widget), live_of(gadget)]
    # Gadget's scope is unknown: the live object without a namespace is still its pair
    result = compare(res, snap(live, kinds), HASHER, DriftOptions(entry=ENTRY))
    assert [f.rule_id for f in result.findings] == ["drift.namespace-ignored"] * 2
    assert sorted(f.resource for f in result.findings) == ["Gadget shop/g", "Widget shop/w"]
    assert any("CustomResourceDefinition in the repository" in f.message
               for f in result.findings if f.resource == "Widget shop/w")
    # discovery says Gadget is cluster-scoped: a deleted one is missing, not noise
    result = compare(res, snap(live[:2], kinds, {KindRef("other.io", "Gadget"): False}),
                     HASHER, DriftOptions(entry=ENTRY))
    assert sorted(f.rule_id for f in result.findings) == [
        "drift.missing", "drift.namespace-ignored", "drift.namespace-ignored"]
    missing = next(f for f in result.findings if f.rule_id == "drift.missing")
    assert missing.resource == "Gadget shop/g"
    # discovery beats the repository's CRD
    scopes = Scopes.build(res, {KindRef("example.com", "Widget"): True})
    assert scopes.namespaced(KindRef("example.com", "Widget")) is True
    assert Scopes.build(res).namespaced(KindRef("example.com", "Widget")) is False


def test_namespaced_kind_keeps_its_namespace(tmp_path: Path) -> None:
    res = desired(tmp_path, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, "
                            "namespace: shop}\n")
    other = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "c", "namespace": "other"}}
    result = compare(res, snap([other], {KindRef("", "ConfigMap")}), HASHER,
                     DriftOptions(entry=ENTRY))
    assert [f.rule_id for f in result.findings] == ["drift.missing"]


def test_constraint_template_declares_cluster_scoped_constraint_kind(tmp_path: Path) -> None:
    res = desired(tmp_path, """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8sdenyall}
spec:
  crd: {spec: {names: {kind: K8sDenyAll}}}
""")
    assert Scopes.build(res).declared == {KindRef("constraints.gatekeeper.sh", "K8sDenyAll"):
                                          False}


def test_snapshot_records_discovered_scopes(tmp_path: Path) -> None:
    from checker.drift.sources import write_snapshot

    out = tmp_path / "s.json"
    write_snapshot(snap([], set(), {KindRef("x.io", "A"): False, KindRef("", "B"): True}), out)
    again = FileSource(out, HASHER).read()
    assert again.scopes == {KindRef("x.io", "A"): False, KindRef("", "B"): True}


DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers: [{name: app, image: "web:1"}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{port: 80}]
"""


def _run(tmp_path: Path, live: Any, *extra: str) -> Any:
    (tmp_path / "repo").mkdir(exist_ok=True)
    (tmp_path / "repo" / "m.yaml").write_text(DEPLOY)
    (tmp_path / "live.yaml").write_text(yaml.safe_dump(live))
    return CliRunner().invoke(cli, ["drift", str(tmp_path / "repo"), "--root",
                                    str(tmp_path / "repo"), "--snapshot",
                                    str(tmp_path / "live.yaml"), "--format", "json", *extra],
                              env={"GITHUB_EVENT_NAME": "push"})


def _deploy_live() -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:1"}]}}}}


def test_deleted_last_object_of_a_kind_is_not_in_sync(tmp_path: Path) -> None:
    # the Service was deleted: a kubectl List cannot say that it was exported
    result = _run(tmp_path, {"apiVersion": "v1", "kind": "List", "items": [_deploy_live()]})
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert [(f["rule"], f["severity"]) for f in data["findings"]] == [
        ("drift.unreadable", "error")]
    assert "50.0%" in result.stderr and "1 not checked" in result.stderr
    # declared as exported: the Service is missing
    result = _run(tmp_path, {"apiVersion": "v1", "kind": "List", "items": [_deploy_live()]},
                  "--snapshot-kinds", "Deployment.apps,Service")
    assert result.exit_code == 1, result.output
    assert [f["rule"] for f in json.loads(result.stdout)["findings"]] == ["drift.missing"]


def test_empty_list_is_a_valid_snapshot(tmp_path: Path) -> None:
    empty = {"apiVersion": "v1", "kind": "List", "items": []}
    result = _run(tmp_path, empty, "--snapshot-kinds", "Deployment.apps,Service")
    assert result.exit_code == 1, result.output
    assert sorted(f["rule"] for f in json.loads(result.stdout)["findings"]) == [
        "drift.missing", "drift.missing"]
    result = _run(tmp_path, empty)
    assert result.exit_code == 1, result.output
    assert sorted(f["rule"] for f in json.loads(result.stdout)["findings"]) == [
        "drift.unreadable", "drift.unreadable"]
    assert "0.0%" in result.stderr


@pytest.mark.parametrize("bad", ["", ".apps"])
def test_snapshot_kinds_must_name_kinds(tmp_path: Path, bad: str) -> None:
    result = _run(tmp_path, {"apiVersion": "v1", "kind": "List", "items": []},
                  "--snapshot-kinds", f"Service,{bad}" if bad else ".x")
    assert result.exit_code == 2 and "--snapshot-kinds" in result.output
