"""One finding per drifted key at its line, and Secrets as the API server and its
controllers store them (values never shown)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from checker.drift.compare import DriftOptions, DriftResult, compare
from checker.drift.secrets import SecretHasher
from checker.drift.sources import KindRef, Snapshot, group_of, protect
from checker.load.objects import load_file
from checker.model import Resource, SourceLocation

HASHER = SecretHasher(b"unit-key")
ENTRY = SourceLocation("clusters/prod/kustomization.yaml")


def desired(tmp_path: Path, text: str) -> list[Resource]:
    (tmp_path / "m.yaml").write_text(text)
    return load_file(tmp_path / "m.yaml", tmp_path).resources


def check(resources: list[Resource], live: list[dict[str, Any]]) -> DriftResult:
    kinds = {KindRef(r.group, r.kind) for r in resources} | {
        KindRef(group_of(o["apiVersion"]), o["kind"]) for o in live}
    snap = Snapshot(objects=[protect(o, HASHER) for o in live], read_kinds=kinds,
                    key_id=HASHER.key_id)
    return compare(resources, snap, HASHER, DriftOptions(entry=ENTRY))


def by_field(result: DriftResult) -> list[tuple[str, str, int]]:
    return sorted((str(f.details.get("field")), str(f.details.get("change")), f.location.line)
                  for f in result.findings)


CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  a: "1"
  b: "2"
  c: "3"
"""


def test_a_mapping_sharing_few_keys_is_not_collapsed(tmp_path: Path) -> None:
    res = desired(tmp_path, CONFIGMAP)
    live = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "shop"},
            "data": {"a": "1", "x": "2", "y": "3", "z": "4"}}
    assert by_field(check(res, [live])) == [
        ("data.b", "removed", 8), ("data.c", "removed", 9), ("data.x", "added", 6),
        ("data.y", "added", 6), ("data.z", "added", 6)]


def test_env_and_service_port_entries_are_separate_findings(tmp_path: Path) -> None:
    res = desired(tmp_path, """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers:
        - name: app
          image: web:1
          env:
            - name: PORT
              value: "8080"
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports:
    - name: http
      port: 80
      targetPort: 8080
""")
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "namespace": "shop"},
              "spec": {"template": {"spec": {"containers": [{
                  "name": "app", "image": "web:1",
                  "env": [{"name": "PORT", "value": "9090"}, {"name": "A", "value": "1"},
                          {"name": "B", "value": "2"}]}]}}}}
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"ports": [{"name": "web", "port": 80, "targetPort": 9090,
                               "protocol": "TCP"}]}}
    assert by_field(check(res, [deploy, svc])) == [
        ("spec.ports[80/TCP].name", "changed", 19),
        ("spec.ports[80/TCP].targetPort", "changed", 21),
        ("spec.template.spec.containers[app].env[A]", "added", 10),
        ("spec.template.spec.containers[app].env[B]", "added", 10),
        ("spec.template.spec.containers[app].env[PORT].value", "changed", 12)]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(data: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                            "metadata": {"name": "s", "namespace": "shop"}, **extra}
    if data is not None:
        body["data"] = data
    return body


def test_empty_secret_value_equals_null_live(tmp_path: Path) -> None:
    res = desired(tmp_path, "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: "
                            "shop}\ndata:\n  empty: \"\"\nstringData:\n  blank: \"\"\n")
    assert check(res, [secret({"empty": None, "blank": ""})]).findings == []
    result = check(res, [secret({"empty": b64("x"), "blank": ""})])
    assert [f.message for f in result.findings] == [
        "Secret key 'empty' has a different value in the cluster (values not shown)"]


def test_token_secret_declared_empty_is_in_sync(tmp_path: Path) -> None:
    res = desired(tmp_path, """\
apiVersion: v1
kind: Secret
metadata:
  name: builder-token
  namespace: shop
  annotations:
    kubernetes.io/service-account.name: builder
type: kubernetes.io/service-account-token
data: {}
""")
    live = secret({"token": b64("eyJhbGciOi-secret"), "ca.crt": b64("CERT"),
                   "namespace": b64("shop")}, type="kubernetes.io/service-account-token")
    live["metadata"] = {"name": "builder-token", "namespace": "shop", "annotations": {
        "kubernetes.io/service-account.name": "builder",
        "kubernetes.io/service-account.uid": "1234"}}
    assert check(res, [live]).findings == []
    live["data"]["extra"] = b64("hand-added")
    result = check(res, [live])
    assert [f.message for f in result.findings] == [
        "Secret key 'extra' exists in the cluster but not in Git"]
    assert result.findings[0].location.line == 9
    assert "hand-added" not in json.dumps([f.details for f in result.findings])


def test_stringdata_only_secret_keys_at_their_lines(tmp_path: Path) -> None:
    res = desired(tmp_path, """\
apiVersion: v1
kind: Secret
metadata:
  name: s
  namespace: shop
stringData:
  old: value-one
  kept: value-two
""")
    live = secret({"new": b64("value-three"), "kept": b64("value-two")})
    result = check(res, [live])
    got = sorted((f.message, f.location.line) for f in result.findings)
    assert got == [("Secret key 'new' exists in the cluster but not in Git", 6),
                   ("Secret key 'old' is in Git but missing in the cluster", 7)]
    text = json.dumps([(f.message, f.details) for f in result.findings])
    assert "value-" not in text
