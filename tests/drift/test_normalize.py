"""Normalization and comparison rules: only real drift survives."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from checker.drift.compare import DriftOptions, DriftResult, compare
from checker.drift.ignore import IgnoreRule, load_ignore_file, parse_ignore_rules
from checker.drift.normalize import apply_defaults, canonical, desired_path, parse_quantity
from checker.drift.secrets import SecretHasher
from checker.drift.sources import KindRef, Snapshot, group_of, protect
from checker.errors import ConfigError
from checker.load.objects import load_file
from checker.model import Resource, SourceLocation

HASHER = SecretHasher(b"unit-key")
ENTRY = SourceLocation("clusters/prod/kustomization.yaml")

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    spec:
      containers:
        - name: app
          image: web:1
          env:
            - name: A
              value: "1"
            - name: B
              value: "2"
          resources:
            limits:
              cpu: 1
              memory: 1Gi
"""


def desired(tmp_path: Path, text: str) -> list[Resource]:
    (tmp_path / "m.yaml").write_text(text)
    return load_file(tmp_path / "m.yaml", tmp_path).resources


def live_of(text: str, **changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(text)
    return obj


def check(resources: list[Resource], live: list[dict[str, Any]], hasher: SecretHasher = HASHER,
          key_id: str | None = None, ignore: tuple[IgnoreRule, ...] = (),
          owners: tuple[str, ...] = ()) -> DriftResult:
    kinds = {KindRef(r.group, r.kind) for r in resources} | {
        KindRef(group_of(o["apiVersion"]), o["kind"]) for o in live}
    snap = Snapshot(objects=[protect(o, hasher) for o in live], read_kinds=kinds,
                    key_id=hasher.key_id if key_id is None else key_id)
    return compare(resources, snap, hasher, DriftOptions(entry=ENTRY, cluster="c",
                                                         ignore=ignore, owners=owners))


def fields(result: DriftResult) -> list[str]:
    return sorted(str(f.details.get("field")) for f in result.findings)


@pytest.mark.parametrize(("a", "b"), [
    ("1000m", 1), ("0.5", "500m"), ("1Ki", 1024), ("1k", "1e3"), ("1Gi", "1024Mi"),
    ("0.25Gi", "268435456"), (2, "2000m"),
])
def test_quantities_compare_by_value(a: Any, b: Any) -> None:
    assert parse_quantity(a) == parse_quantity(b)
    assert canonical({"limits": {"cpu": a}}) == canonical({"limits": {"cpu": b}})


def test_quantity_difference_is_drift_and_invalid_is_not_a_quantity(tmp_path: Path) -> None:
    assert parse_quantity("lots") is None
    assert parse_quantity(True) is None
    res = desired(tmp_path, DEPLOY)
    live = live_of(DEPLOY)
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "1001m"
    assert fields(check(res, [live])) == [
        "spec.template.spec.containers[app].resources.limits.cpu"]


def test_keyed_lists_compare_by_key_not_position(tmp_path: Path) -> None:
    res = desired(tmp_path, DEPLOY)
    live = live_of(DEPLOY)
    container = live["spec"]["template"]["spec"]["containers"][0]
    container["env"].reverse()
    container["resources"]["limits"] = {"cpu": "1000m", "memory": "1024Mi"}
    assert check(res, [live]).findings == []
    container["env"] = [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    result = check(res, [live])
    assert fields(result) == ["spec.template.spec.containers[app].env[A]",
                              "spec.template.spec.containers[app].env[C]"]
    removed = next(f for f in result.findings if f.details["field"].endswith("[A]"))
    assert removed.details["change"] == "removed"
    assert removed.location.line == 13  # the "- name: A" item in the manifest
    added = next(f for f in result.findings if f.details["field"].endswith("[C]"))
    assert added.details["after"] == {"name": "C", "value": "3"}
    assert added.location.line == 12  # deepest declared parent: the env list


def test_empty_vs_absent_and_int_or_string(tmp_path: Path) -> None:
    text = DEPLOY.replace("          image: web:1\n", "          image: web:1\n"
                          "          args: []\n          securityContext: {}\n") + (
        "      hostNetwork: false\n      volumes: []\n")
    res = desired(tmp_path, text + "---\napiVersion: v1\nkind: Service\nmetadata:\n"
                  "  name: web\n  namespace: shop\nspec:\n  ports:\n    - port: 80\n"
                  "      targetPort: 8080\n")
    live = live_of(DEPLOY)
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"ports": [{"port": 80, "targetPort": "8080", "protocol": "TCP"}],
                    "type": "ClusterIP", "sessionAffinity": "None", "clusterIP": "10.0.0.1"}}
    assert check(res, [live, svc]).findings == []


def test_fields_whose_live_presence_matters(tmp_path: Path) -> None:
    res = desired(tmp_path, DEPLOY)
    live = live_of(DEPLOY)
    pod = live["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    pod["containers"][0]["securityContext"] = {"capabilities": {"add": ["NET_ADMIN"]},
                                               "runAsUser": 1000}
    pod["containers"][0]["command"] = ["sh", "-c", "sleep 1d"]
    pod["terminationGracePeriodSeconds"] = 0
    assert fields(check(res, [live])) == [
        "spec.template.spec.containers[app].command[0]",
        "spec.template.spec.containers[app].command[1]",
        "spec.template.spec.containers[app].command[2]",
        "spec.template.spec.containers[app].securityContext.capabilities.add[0]",
        "spec.template.spec.hostNetwork",
        "spec.template.spec.terminationGracePeriodSeconds",
    ]


SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: s
  namespace: shop
stringData:
  token: plain-token-value
data:
  user: {user}
"""


def secret_live(**values: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "s", "namespace": "shop"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}


def test_secret_stringdata_equals_data_and_changes_are_masked(tmp_path: Path) -> None:
    res = desired(tmp_path, SECRET.format(user=base64.b64encode(b"alice").decode()))
    assert check(res, [secret_live(token="plain-token-value", user="alice")]).findings == []
    result = check(res, [secret_live(token="other-token-value", user="alice", extra="x")])
    messages = sorted(f.message for f in result.findings)
    assert messages == ["Secret key 'extra' exists in the cluster but not in Git",
                        "Secret key 'token' has a different value in the cluster "
                        "(values not shown)"]
    token = next(f for f in result.findings if "token" in f.message)
    assert token.field_path == ("stringData", "token")
    assert token.location.line == 7
    assert token.details["before"] == token.details["after"] == "<redacted>"
    text = repr([(f.message, dict(f.details)) for f in result.findings])
    assert "plain-token-value" not in text and "other-token-value" not in text


def test_secret_hashed_with_another_key_compares_key_names_only(tmp_path: Path) -> None:
    res = desired(tmp_path, SECRET.format(user=base64.b64encode(b"alice").decode()))
    other = SecretHasher(b"someone-else")
    live = protect(secret_live(token="changed", user="alice"), other)
    assert check(res, [live], key_id=other.key_id).findings == []
    live = protect(secret_live(user="alice"), other)
    result = check(res, [live], key_id=other.key_id)
    assert [f.message for f in result.findings] == [
        "Secret key 'token' is in Git but missing in the cluster"]


def test_hasher_key_from_env_is_stable_and_ephemeral_otherwise() -> None:
    a = SecretHasher.from_env({"GITOPS_CHECKER_SECRET_KEY": "k"})
    b = SecretHasher.from_env({"GITOPS_CHECKER_SECRET_KEY": "k"})
    assert a.key_id == b.key_id and not a.ephemeral
    assert a.digest(b"v") == b.digest(b"v") != SecretHasher(b"x").digest(b"v")
    c, d = SecretHasher.from_env({}), SecretHasher.from_env({})
    assert c.ephemeral and c.key_id != d.key_id
    assert "k" not in a.key_id or len(a.key_id) == 16


def test_kinds_not_in_snapshot_are_not_called_missing(tmp_path: Path) -> None:
    res = desired(tmp_path, DEPLOY + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                  "  name: c\n  namespace: shop\n")
    snap = Snapshot(objects=[live_of(DEPLOY)], read_kinds={KindRef("apps", "Deployment")},
                    key_id=HASHER.key_id)
    result = compare(res, snap, HASHER, DriftOptions(entry=ENTRY))
    # not checked is never "in sync": an error, and the coverage counts it as not in sync
    assert [(f.rule_id, f.severity.label) for f in result.findings] == [
        ("drift.unreadable", "error")]
    assert result.managed == 1 and result.not_compared == 1 and result.coverage == 0.5


def owned(name: str, labels: dict[str, str] | None = None,
          annotations: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "shop", "labels": labels or {},
                         "annotations": annotations or {}, **meta}}


def test_unmanaged_needs_gitops_ownership(tmp_path: Path) -> None:
    res = desired(tmp_path, DEPLOY + "---\napiVersion: argoproj.io/v1alpha1\nkind: Application\n"
                  "metadata:\n  name: shop\n  namespace: argocd\nspec: {}\n")
    live = [
        live_of(DEPLOY),
        owned("flux", {"kustomize.toolkit.fluxcd.io/name": "apps",
                       "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}),
        owned("argo-annotation", annotations={
            "argocd.argoproj.io/tracking-id": "shop:/ConfigMap:shop/argo-annotation"}),
        owned("copied-annotation", annotations={
            "argocd.argoproj.io/tracking-id": "shop:/ConfigMap:shop/elsewhere"}),
        owned("argo-label", {"app.kubernetes.io/instance": "shop"}),
        owned("helm-label", {"app.kubernetes.io/instance": "some-helm-release"}),
        owned("child", {"kustomize.toolkit.fluxcd.io/name": "apps"},
              ownerReferences=[{"kind": "Deployment", "name": "web", "controller": True}]),
        owned("plain"),
    ]
    result = check(res, live)
    unmanaged = sorted(f.resource for f in result.findings if f.rule_id == "drift.unmanaged")
    assert unmanaged == ["ConfigMap shop/argo-annotation", "ConfigMap shop/argo-label",
                         "ConfigMap shop/flux"]
    argo = next(f for f in result.findings if f.resource == "ConfigMap shop/argo-label")
    assert argo.location.path == "m.yaml" and argo.location.line == 22  # the Application
    # an explicit owner narrows Flux ownership to that Kustomization
    result = check(res, live, owners=("flux-system/other",))
    assert "ConfigMap shop/flux" not in {f.resource for f in result.findings}


def test_ignore_rules_by_selector_pointer_and_autoscaler(tmp_path: Path) -> None:
    res = desired(tmp_path, DEPLOY.replace("spec:\n  template:", "spec:\n  replicas: 2\n"
                                           "  template:"))
    live = live_of(DEPLOY)
    live["spec"]["replicas"] = 5
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    assert fields(check(res, [live])) == ["spec.replicas",
                                          "spec.template.spec.containers[app].image"]
    rule = IgnoreRule(kind="Deploy*", namespace="shop", pointers=("/spec/replicas",))
    assert fields(check(res, [live], ignore=(rule,))) == [
        "spec.template.spec.containers[app].image"]
    wildcard = IgnoreRule(pointers=("/spec/template/spec/containers/*/image",))
    assert fields(check(res, [live], ignore=(wildcard,))) == ["spec.replicas"]
    other = IgnoreRule(name="api", pointers=("/spec/replicas",))
    assert len(check(res, [live], ignore=(other,)).findings) == 2


def test_ignore_file_shapes_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "ignore.yaml"
    path.write_text("drift:\n  ignore:\n    - kind: Deployment\n      jsonPointers: "
                    "[/spec/replicas]\n      reason: HPA\n")
    rules = load_ignore_file(path, "ignore.yaml")
    assert rules == [IgnoreRule(kind="Deployment", pointers=("/spec/replicas",), reason="HPA",
                                source="ignore.yaml:3")]
    path.write_text("- kind: Deployment\n- kind: Service\n  colour: red\n")
    with pytest.raises(ConfigError, match=r"ignore.yaml:2: unknown key\(s\).*colour"):
        load_ignore_file(path, "ignore.yaml")
    path.write_text("ignore:\n  - jsonPointers: [spec/replicas]\n")
    with pytest.raises(ConfigError, match=r"ignore.yaml:2: JSON pointer .* must start"):
        load_ignore_file(path, "ignore.yaml")
    path.write_text("something: else\n")
    with pytest.raises(ConfigError, match=r"ignore\.yaml:1"):
        load_ignore_file(path, "ignore.yaml")
    with pytest.raises(ConfigError, match="must be a list"):
        parse_ignore_rules({"kind": "x"}, ".gitops-checker.yaml")
    assert parse_ignore_rules([{"name": "x", "pointers": "/a"}])[0].pointers == ("/a",)


def test_desired_path_maps_keys_back_to_indexes() -> None:
    body = {"spec": {"containers": [{"name": "a"}, {"name": "b", "ports": [
        {"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]}]}}
    assert desired_path(body, ("spec", "containers", "b", "ports", "53/UDP")) == (
        ("spec", "containers", 1, "ports", 1), True)
    assert desired_path(body, ("spec", "containers", "c", "image")) == (
        ("spec", "containers"), False)


def test_missing_namespace_defaults_and_cluster_scoped_kinds(tmp_path: Path) -> None:
    res = desired(tmp_path, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
                  "data:\n  a: b\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n")
    live = [{"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"},
             "metadata": {"name": "c", "namespace": "default"}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}]
    result = check(res, live)
    assert result.findings == [] and result.in_sync == 2


def test_unkeyable_live_list_still_compares(tmp_path: Path) -> None:
    res = desired(tmp_path, DEPLOY)
    live = live_of(DEPLOY)
    env = live["spec"]["template"]["spec"]["containers"][0]["env"]
    env.append(dict(env[0]))  # duplicate name: cannot be keyed
    result = check(res, [live])
    assert [f.details["field"] for f in result.findings] == [
        "spec.template.spec.containers[app].env"]
    assert result.findings[0].details["change"] == "changed"


def test_sops_encrypted_secret_compares_key_names_only(tmp_path: Path) -> None:
    res = desired(tmp_path, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n"
                  "  namespace: shop\nstringData:\n  token: ENC[AES256_GCM,data:abc=,type:str]\n"
                  "sops:\n  version: 3.9.0\n")
    assert check(res, [secret_live(token="decrypted-value")]).findings == []
    result = check(res, [secret_live(token="v", extra="x")])
    assert [f.message for f in result.findings] == [
        "Secret key 'extra' exists in the cluster but not in Git"]


@pytest.mark.parametrize(("image", "policy"), [
    ("app", "Always"), ("app:latest", "Always"), ("app:1.2", "IfNotPresent"),
    ("app@sha256:" + "a" * 64, "IfNotPresent"),
    ("app:latest@sha256:" + "a" * 64, "Always"),  # ParseImageName keeps the tag
    ("registry:5000/app", "Always"), ("registry:5000/app:2", "IfNotPresent"),
])
def test_image_pull_policy_default_follows_set_defaults_container(image: str,
                                                                  policy: str) -> None:
    from checker.drift.normalize import _image_pull_policy

    assert _image_pull_policy(image) == policy


def test_a_default_git_relies_on_is_shown_as_a_default(tmp_path: Path) -> None:
    res = desired(tmp_path, DEPLOY.replace("image: web:1", "image: web:latest@sha256:" + "a" * 64))
    live = live_of(DEPLOY.replace("image: web:1", "image: web:latest@sha256:" + "a" * 64))
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    assert check(res, [live]).findings == []  # latest@digest defaults to Always
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    (finding,) = check(res, [live]).findings
    assert finding.message == ('spec.template.spec.containers[app].imagePullPolicy differs: '
                               'Git does not set it (API default "Always"), cluster "Never"')


def test_hpa_target_quantities_and_probe_path_default(tmp_path: Path) -> None:
    res = desired(tmp_path, """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: shop}
spec:
  metrics:
    - type: Pods
      pods:
        metric: {name: rps}
        target: {type: AverageValue, averageValue: "0.5"}
    - type: Object
      object:
        metric: {name: q}
        target: {type: Value, value: 1k}
""")
    live = yaml.safe_load(res[0].location.path and (tmp_path / "m.yaml").read_text())
    live["spec"]["metrics"][0]["pods"]["target"]["averageValue"] = "500m"
    live["spec"]["metrics"][1]["object"]["target"]["value"] = "1000"
    assert check(res, [live]).findings == []
    live["spec"]["metrics"][1]["object"]["target"]["value"] = "1001"
    assert fields(check(res, [live])) == ["spec.metrics[1].object.target.value"]


SERVICE_GIT = """\
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
    - name: http
      port: 80
"""
# What a v1.30+ API server returns for SERVICE_GIT: SetDefaults_Service's fields and the
# registry's allocations (clusterIPs, ipFamilies, ipFamilyPolicy, nodePort).
SERVICE_LIVE: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
             "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80,
                        "nodePort": 31380}],
             "clusterIP": "10.96.12.7", "clusterIPs": ["10.96.12.7"],
             "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
             "internalTrafficPolicy": "Cluster", "externalTrafficPolicy": "Cluster",
             "allocateLoadBalancerNodePorts": True, "sessionAffinity": "None"}}


def _service_live(**spec: Any) -> dict[str, Any]:
    live = json.loads(json.dumps(SERVICE_LIVE))
    live["spec"].update(spec)
    return live


def test_newer_service_defaults_are_not_drift(tmp_path: Path) -> None:
    res = desired(tmp_path, SERVICE_GIT)
    assert check(res, [_service_live()]).findings == []
    # a Git version that had copied every field of `kubectl get -o yaml` was applied before:
    # the fields it dropped are defaults or allocations the server keeps, not drift
    applied = json.loads(json.dumps(SERVICE_LIVE))
    applied["spec"]["healthCheckNodePort"] = 32001
    live = _service_live(externalTrafficPolicy="Cluster")
    live["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)}
    assert check(res, [live]).findings == []


@pytest.mark.parametrize(("field", "value", "default"), [
    ("externalTrafficPolicy", "Local", "Cluster"),
    ("internalTrafficPolicy", "Local", "Cluster"),
    ("allocateLoadBalancerNodePorts", False, True),
])
def test_hand_change_of_a_service_default_is_drift(tmp_path: Path, field: str, value: Any,
                                                    default: Any) -> None:
    res = desired(tmp_path, SERVICE_GIT)
    [finding] = check(res, [_service_live(**{field: value})]).findings
    assert finding.details["field"] == f"spec.{field}"
    assert finding.details["gitDefault"] is True
    assert finding.message == (f"spec.{field} differs: Git does not set it (API default "
                               f"{json.dumps(default)}), cluster {json.dumps(value)}")
    assert finding.location.line == 6  # the spec: line, the deepest declared parent


@pytest.mark.parametrize(("spec", "filled"), [
    ({}, {"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"}),
    ({"type": "NodePort"}, {"type": "NodePort", "sessionAffinity": "None",
                            "internalTrafficPolicy": "Cluster",
                            "externalTrafficPolicy": "Cluster"}),
    ({"type": "LoadBalancer"}, {"type": "LoadBalancer", "sessionAffinity": "None",
                                "internalTrafficPolicy": "Cluster",
                                "externalTrafficPolicy": "Cluster",
                                "allocateLoadBalancerNodePorts": True}),
    ({"externalIPs": ["192.0.2.1"]}, {"type": "ClusterIP", "sessionAffinity": "None",
                                      "externalIPs": ["192.0.2.1"],
                                      "internalTrafficPolicy": "Cluster",
                                      "externalTrafficPolicy": "Cluster"}),
    ({"type": "ExternalName", "externalName": "db.example.com"},
     {"type": "ExternalName", "externalName": "db.example.com", "sessionAffinity": "None"}),
    ({"sessionAffinity": "ClientIP"},
     {"type": "ClusterIP", "sessionAffinity": "ClientIP", "internalTrafficPolicy": "Cluster",
      "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}}}),
    ({"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}},
     {"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"}),
    ({"internalTrafficPolicy": "Local", "trafficDistribution": "PreferClose"},
     {"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Local",
      "trafficDistribution": "PreferClose"}),
])
def test_service_defaults_follow_set_defaults_service(spec: dict[str, Any],
                                                      filled: dict[str, Any]) -> None:
    body: dict[str, Any] = {"spec": json.loads(json.dumps(spec))}
    apply_defaults("Service", body)
    assert body["spec"] == filled


def test_server_kept_service_fields_are_never_no_longer_declared(tmp_path: Path) -> None:
    res = desired(tmp_path, SERVICE_GIT)
    flux = {"manager": "kustomize-controller", "operation": "Apply", "apiVersion": "v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {
                "f:clusterIP": {}, "f:clusterIPs": {}, "f:ipFamilies": {},
                "f:ipFamilyPolicy": {}, "f:healthCheckNodePort": {}, "f:selector": {},
                "f:publishNotReadyAddresses": {},
                "f:ports": {'k:{"port":80,"protocol":"TCP"}': {
                    ".": {}, "f:port": {}, "f:nodePort": {}}}}}}
    live = _service_live(healthCheckNodePort=32001, publishNotReadyAddresses=True)
    live["metadata"]["managedFields"] = [flux]
    # only the field the server neither allocates nor keeps is reported
    assert fields(check(res, [live])) == ["spec.publishNotReadyAddresses"]
