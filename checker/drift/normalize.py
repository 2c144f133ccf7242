"""Normalization: turn a desired manifest and a live object into comparable data.

Only real drift should survive. This module removes what the API server and the tools write
(server metadata, ``status``, bookkeeping annotations), fills the API defaults of the built-in
kinds into the desired object (so a live value that differs from the default Git relies on is
still seen), canonicalizes quantities and int-or-string values, turns lists keyed by name into
mappings, and finally projects the live object onto the fields the desired object declares.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from checker.model import FieldPath
from checker.podspec import POD_SPEC_AT

SERVER_METADATA = frozenset({
    "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
    "deletionTimestamp", "deletionGracePeriodSeconds",
})
BOOKKEEPING_ANNOTATIONS = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "argocd.argoproj.io/tracking-id",
    "control-plane.alpha.kubernetes.io/leader",
})
BOOKKEEPING_PREFIXES = (
    "config.kubernetes.io/", "internal.config.kubernetes.io/", "kustomize.toolkit.fluxcd.io/",
    "kapp.k14s.io/",
)

# Defaults follow the API server's defaulting functions (kubernetes/kubernetes,
# pkg/apis/<group>/v1/defaults.go); each table names the function it mirrors.
# core/v1 SetDefaults_PodSpec: DNSPolicy, RestartPolicy, TerminationGracePeriodSeconds,
# SchedulerName. The host namespaces and shareProcessNamespace are false when unset (the
# Go zero value), listed so that a live true is drift when Git is silent.
POD_DEFAULTS: dict[str, Any] = {
    "dnsPolicy": "ClusterFirst",
    "restartPolicy": "Always",
    "schedulerName": "default-scheduler",
    "terminationGracePeriodSeconds": 30,
    "hostNetwork": False,
    "hostPID": False,
    "hostIPC": False,
    "shareProcessNamespace": False,
}
# core/v1 SetDefaults_Container: TerminationMessagePath, TerminationMessagePolicy (and
# ImagePullPolicy, see _image_pull_policy). privileged, capabilities.add, command and args
# are unset (zero) by default, listed so that a live value is drift when Git is silent.
CONTAINER_DEFAULTS: dict[str, Any] = {
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
    "securityContext": {"privileged": False, "capabilities": {"add": []}},
    "command": [],
    "args": [],
}
# core/v1 SetDefaults_Probe.
PROBE_DEFAULTS: dict[str, Any] = {
    "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3,
}
# apps/v1 SetDefaults_Deployment, SetDefaults_StatefulSet, SetDefaults_DaemonSet
# (RevisionHistoryLimit, ProgressDeadlineSeconds, PodManagementPolicy); batch/v1
# SetDefaults_Job (BackoffLimit, CompletionMode, Suspend) and SetDefaults_CronJob
# (ConcurrencyPolicy, Suspend, Successful/FailedJobsHistoryLimit).
WORKLOAD_DEFAULTS: dict[str, dict[str, Any]] = {
    "Deployment": {"revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
    "StatefulSet": {"revisionHistoryLimit": 10, "podManagementPolicy": "OrderedReady"},
    "DaemonSet": {"revisionHistoryLimit": 10},
    "Job": {"backoffLimit": 6, "completionMode": "NonIndexed", "suspend": False},
    "CronJob": {"concurrencyPolicy": "Allow", "suspend": False,
                "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1},
}
# apps/v1 SetDefaults_Deployment (Strategy RollingUpdate, MaxSurge/MaxUnavailable 25%),
# SetDefaults_StatefulSet (UpdateStrategy RollingUpdate, Partition 0), SetDefaults_DaemonSet
# (UpdateStrategy RollingUpdate, MaxUnavailable 1, MaxSurge 0).
STRATEGY_DEFAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "Deployment": ("strategy", {"maxSurge": "25%", "maxUnavailable": "25%"}),
    "StatefulSet": ("updateStrategy", {"partition": 0}),
    "DaemonSet": ("updateStrategy", {"maxUnavailable": 1, "maxSurge": 0}),
}
# core/v1 SetDefaults_Service: Type, SessionAffinity; ports' Protocol and TargetPort; the
# newer fields by type in _service_defaults.
SERVICE_DEFAULTS: dict[str, Any] = {"type": "ClusterIP", "sessionAffinity": "None"}
# core/v1 SetDefaults_Service: InternalTrafficPolicy Cluster for these types (not ExternalName).
SERVICE_INTERNAL_POLICY_TYPES = frozenset({"ClusterIP", "NodePort", "LoadBalancer"})
# core/v1 DefaultClientIPServiceAffinitySeconds (SetDefaults_Service with ClientIP affinity).
CLIENT_IP_AFFINITY_SECONDS = 10800
# Fields of a Service the API server allocates or infers and keeps on every update that does not
# name them (pkg/registry/core/service/storage: patchAllocatedValues keeps clusterIP,
# clusterIPs, ports' nodePort, healthCheckNodePort; initIPFamilyFields keeps the old
# ipFamilyPolicy and fills ipFamilies from the cluster's families). Removing them from Git never
# removes them live, and their values depend on the cluster, so they are never filled as
# defaults and never reported as "no longer declared". trafficDistribution (v1.31+) has no
# default: it is absent unless set, and compared like any other field.
SERVICE_SERVER_KEPT: frozenset[FieldPath] = frozenset({
    ("spec", "clusterIP"), ("spec", "clusterIPs"), ("spec", "ipFamilies"),
    ("spec", "ipFamilyPolicy"), ("spec", "healthCheckNodePort"),
})
# core/v1 SetDefaults_ConfigMapVolumeSource, SetDefaults_SecretVolumeSource,
# SetDefaults_ProjectedVolumeSource, SetDefaults_DownwardAPIVolumeSource: DefaultMode 0644.
VOLUME_MODE_SOURCES = ("configMap", "secret", "projected", "downwardAPI")

QUANTITY_PARENTS = frozenset({
    "limits", "requests", "hard", "used", "capacity", "allocatable", "overhead",
    "default", "defaultRequest", "max", "min",
})
# resource.Quantity fields of the built-in API outside a ResourceList: emptyDir sizeLimit,
# HPA (autoscaling/v2 MetricTarget) averageValue and value, CSIStorageCapacity.
QUANTITY_KEYS = frozenset({"sizeLimit", "storage", "averageValue", "maximumVolumeSize"})
QUANTITY_UNDER = {"target": frozenset({"value", "averageValue"})}
INT_OR_STRING = frozenset({"targetPort", "maxSurge", "maxUnavailable", "minAvailable", "port"})
_QUANTITY = re.compile(
    r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_SUFFIX = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}


def _port_key(item: Mapping[str, Any]) -> str | None:
    port = item.get("containerPort", item.get("port"))
    if port is None or isinstance(port, bool):
        return None
    return f"{port}/{item.get('protocol') or 'TCP'}"


def _field_key(name: str) -> Callable[[Mapping[str, Any]], str | None]:
    def key(item: Mapping[str, Any]) -> str | None:
        value = item.get(name)
        return value if isinstance(value, str) and value else None
    return key


KEYED_LISTS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "containers": _field_key("name"),
    "initContainers": _field_key("name"),
    "ephemeralContainers": _field_key("name"),
    "volumes": _field_key("name"),
    "env": _field_key("name"),
    "imagePullSecrets": _field_key("name"),
    "volumeMounts": _field_key("mountPath"),
    "volumeDevices": _field_key("devicePath"),
    "hostAliases": _field_key("ip"),
    "ports": _port_key,
}


class Keyed(dict[str, Any]):
    """A list keyed by name, turned into a mapping: compared by key, not by position."""


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity's value (``1000m`` -> 1, ``1Ki`` -> 1024), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value.strip())
    if match is None:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2) or ""]
    except InvalidOperation:
        return None


def canonical_quantity(value: Any) -> Any:
    """A quantity as a canonical decimal string; anything else unchanged."""
    number = parse_quantity(value)
    if number is None:
        return value
    text = format(number.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def is_zero(value: Any) -> bool:
    """Empty or default-zero data: absent live is the same as this in the desired state."""
    if value is None or value is False or value == "" or (
            isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0):
        return True
    if isinstance(value, dict):
        return all(is_zero(v) for v in value.values())
    if isinstance(value, list):
        return not value
    return False


def _bookkeeping(name: str) -> bool:
    return name in BOOKKEEPING_ANNOTATIONS or name.startswith(BOOKKEEPING_PREFIXES)


def strip_server_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy without ``status``, server-set metadata and bookkeeping annotations."""
    out = {k: v for k, v in body.items() if k not in ("status", "apiVersion", "kind")}
    meta = body.get("metadata")
    if isinstance(meta, Mapping):
        clean = {k: v for k, v in meta.items() if k not in SERVER_METADATA and k != "namespace"}
        annotations = meta.get("annotations")
        if isinstance(annotations, Mapping):
            kept = {k: v for k, v in annotations.items() if not _bookkeeping(str(k))}
            if kept:
                clean["annotations"] = kept
            else:
                clean.pop("annotations", None)
        out["metadata"] = clean
    return out


def _clone(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def _fill(target: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    for key, value in defaults.items():
        current = target.get(key)
        if current is None:
            target[key] = _clone(value)
        elif isinstance(value, dict) and isinstance(current, dict):
            _fill(current, value)


def _at(body: dict[str, Any], path: FieldPath) -> dict[str, Any] | None:
    node: Any = body
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node if isinstance(node, dict) else None


def _image_pull_policy(image: Any) -> str:
    """core/v1 SetDefaults_Container: Always when the tag is ``latest``, else IfNotPresent.

    The tag is what pkg/util/parsers.ParseImageName returns: ``latest`` when the reference
    has neither tag nor digest, so ``app`` and ``app:latest@sha256:...`` pull Always and
    ``app@sha256:...`` (a digest, no tag) IfNotPresent.
    """
    if not isinstance(image, str):
        return "IfNotPresent"
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    if not tag:
        tag = "" if digest else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _pod_defaults(pod: dict[str, Any]) -> None:
    _fill(pod, POD_DEFAULTS)
    for list_name in ("containers", "initContainers"):
        containers = pod.get(list_name)
        if not isinstance(containers, list):
            continue
        for container in containers:
            if not isinstance(container, dict):
                continue
            _fill(container, CONTAINER_DEFAULTS)
            container.setdefault("imagePullPolicy", _image_pull_policy(container.get("image")))
            for port in container.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
            for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
                probe = container.get(probe_name)
                if isinstance(probe, dict):
                    _fill(probe, PROBE_DEFAULTS)
                    if isinstance(probe.get("httpGet"), dict):  # SetDefaults_HTTPGetAction
                        probe["httpGet"].setdefault("scheme", "HTTP")
                        probe["httpGet"].setdefault("path", "/")
    for volume in pod.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        for source in VOLUME_MODE_SOURCES:
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 420)


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if target.get(key) is None:  # unset or null: the Go zero value the defaulter replaces
        target[key] = value


def _service_defaults(spec: dict[str, Any]) -> None:
    """core/v1 SetDefaults_Service (pkg/apis/core/v1/defaults.go), in its order."""
    _fill(spec, SERVICE_DEFAULTS)
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)  # the defaulter drops it
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig")
        config = config if isinstance(config, dict) else {}
        client = config.get("clientIP")
        client = client if isinstance(client, dict) else {}
        _set(client, "timeoutSeconds", CLIENT_IP_AFFINITY_SECONDS)
        config["clientIP"] = client
        spec["sessionAffinityConfig"] = config
    kind = spec["type"]
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
            if port.get("port") is not None and is_zero(port.get("targetPort")):
                port["targetPort"] = port["port"]
    # pkg/api/v1/service.ExternallyAccessible: LoadBalancer, NodePort, or ClusterIP with
    # externalIPs
    if kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP"
                                                 and spec.get("externalIPs")):
        _set(spec, "externalTrafficPolicy", "Cluster")
    if kind in SERVICE_INTERNAL_POLICY_TYPES:
        _set(spec, "internalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        _set(spec, "allocateLoadBalancerNodePorts", True)


def aggregated(kind: str, *bodies: Mapping[str, Any]) -> bool:
    """A ClusterRole with an ``aggregationRule``: its ``rules`` are the clusterrole-aggregation
    controller's (pkg/controller/clusterroleaggregation overwrites them with the union of the
    selected roles' rules), never Git's."""
    return kind == "ClusterRole" and any(
        isinstance(b.get("aggregationRule"), Mapping) for b in bodies)


def server_kept(kind: str, path: FieldPath) -> bool:
    """A field the API server allocated or inferred and keeps when an update leaves it out
    (``SERVICE_SERVER_KEPT``, and a Service port's ``nodePort``)."""
    if kind != "Service":
        return False
    return tuple(path[:2]) in SERVICE_SERVER_KEPT or (
        len(path) == 4 and tuple(path[:2]) == ("spec", "ports") and path[3] == "nodePort")


def apply_defaults(kind: str, body: dict[str, Any]) -> None:
    """Fill the API server's defaults of built-in kinds into a desired object, in place.

    ``replicas`` is never filled: an autoscaler may own it.
    """
    spec = body.get("spec")
    if kind == "Secret":
        body.setdefault("type", "Opaque")
    if not isinstance(spec, dict):
        return
    if kind in WORKLOAD_DEFAULTS:
        _fill(spec, WORKLOAD_DEFAULTS[kind])
    if kind == "CronJob":
        job = _at(body, ("spec", "jobTemplate", "spec"))
        if job is not None:
            _fill(job, WORKLOAD_DEFAULTS["Job"])
    if kind in STRATEGY_DEFAULTS:
        field_name, rolling = STRATEGY_DEFAULTS[kind]
        strategy = spec.setdefault(field_name, {"type": "RollingUpdate"})
        if isinstance(strategy, dict):
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                _fill(strategy.setdefault("rollingUpdate", {}), rolling)
    if kind == "Service":
        _service_defaults(spec)
    pod_path = POD_SPEC_AT.get(kind)
    if pod_path is not None:
        pod = _at(body, pod_path)
        if pod is not None:
            _pod_defaults(pod)


def canonical(value: Any, parent: str = "") -> Any:
    """Quantities by value, int-or-string as strings, keyed lists as ``Keyed`` mappings."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        quantities = parent in QUANTITY_PARENTS
        under = QUANTITY_UNDER.get(parent, frozenset())
        for key, item in value.items():
            key = str(key)
            if isinstance(item, (dict, list)):
                out[key] = canonical(item, key)
                continue
            if quantities or key in QUANTITY_KEYS or key in under:
                item = canonical_quantity(item)
            elif key in INT_OR_STRING and type(item) is int:
                item = str(item)
            out[key] = item
        return out
    if isinstance(value, list):
        items = [canonical(v) if isinstance(v, (dict, list)) else v for v in value]
        key_of = KEYED_LISTS.get(parent)
        if key_of is not None and items and all(isinstance(i, dict) for i in value):
            keys = [key_of(i) for i in value]
            if None not in keys and len(set(keys)) == len(keys):
                return Keyed(sorted(zip((str(k) for k in keys), items, strict=True)))
        return items
    return value


def _scalar(key: str, value: Any, quantities: bool) -> Any:
    if quantities or key in QUANTITY_KEYS:
        return canonical_quantity(value)
    if key in INT_OR_STRING and type(value) is int:
        return str(value)
    return value


def _keyed(items: list[Any], parent: str) -> dict[str, Any] | None:
    key_of = KEYED_LISTS.get(parent)
    if key_of is None or not items or not all(isinstance(i, dict) for i in items):
        return None
    keys = [key_of(i) for i in items]
    if None in keys or len(set(keys)) != len(keys):
        return None
    return dict(zip((str(k) for k in keys), items, strict=True))


def normalize_pair(desired: Any, live: Any, parent: str = "") -> tuple[Any, Any]:
    """Canonicalize both sides and restrict them to the fields the desired object declares.

    Desired fields set to null are not declared. A desired empty or zero value equals an absent
    live field. Extra live items of a keyed list (a container, an env var, a volume added by
    hand) are kept, so they show as drift. One walk visits only the declared parts of the live
    object, which is what makes comparing ten thousand objects fast.
    """
    if isinstance(desired, dict) and isinstance(live, dict):
        keyed = isinstance(desired, Keyed)
        out_d: dict[str, Any] = Keyed() if keyed else {}
        out_l: dict[str, Any] = Keyed() if isinstance(live, Keyed) else {}
        quantities = parent in QUANTITY_PARENTS
        under = QUANTITY_UNDER.get(parent, frozenset())
        for key, value in desired.items():
            if value is None:
                continue
            key = str(key)
            other = live.get(key)
            q = quantities or key in under
            if other is None:
                if not is_zero(value):
                    out_d[key] = canonical(value, key) if isinstance(value, (dict, list)) \
                        else _scalar(key, value, q)
                continue
            if isinstance(value, (dict, list)):
                out_d[key], out_l[key] = normalize_pair(value, other, key)
            elif isinstance(other, (dict, list)):
                out_d[key], out_l[key] = _scalar(key, value, q), canonical(other, key)
            else:
                out_d[key] = _scalar(key, value, q)
                out_l[key] = _scalar(key, other, q)
        if keyed:
            for key in live.keys() - desired.keys():
                item = live[key]
                out_l[key] = canonical(item, key) if isinstance(item, (dict, list)) else item
        return out_d, out_l
    if isinstance(desired, list) and isinstance(live, list):
        want, have = _keyed(desired, parent), _keyed(live, parent)
        if want is not None and have is not None:
            keyed_d, keyed_l = Keyed(), Keyed()
            for key in sorted(want.keys() | have.keys()):
                if key in want and key in have:
                    keyed_d[key], keyed_l[key] = normalize_pair(want[key], have[key])
                elif key in want:
                    keyed_d[key] = canonical(want[key])
                else:
                    keyed_l[key] = canonical(have[key])
            return keyed_d, keyed_l
        if want is not None or have is not None:
            return canonical(desired, parent), canonical(live, parent)
        pairs = [normalize_pair(d, v) for d, v in zip(desired, live, strict=False)]
        out_dl = [p[0] for p in pairs] + [canonical(d) for d in desired[len(live):]]
        out_ll = [p[1] for p in pairs] + [canonical(v) for v in live[len(desired):]]
        return out_dl, out_ll
    return canonical(desired, parent), canonical(live, parent)


def desired_path(body: Mapping[str, Any], norm_path: FieldPath) -> tuple[FieldPath, bool]:
    """Map a normalized field path back to the desired manifest's path (list indexes).

    Returns the path and whether it was found entirely in the manifest; for a field only the
    live object has, the path of its deepest declared parent.
    """
    out: list[str | int] = []
    node: Any = body
    parent = ""
    for part in norm_path:
        if isinstance(node, Mapping):
            if part not in node:
                return tuple(out), False
            out.append(part)
            node = node[part]
            parent = str(part)
        elif isinstance(node, list):
            key_of = KEYED_LISTS.get(parent)
            index: int | None = None
            if isinstance(part, int):
                index = part if part < len(node) else None
            elif key_of is not None:
                for i, item in enumerate(node):
                    if isinstance(item, Mapping) and str(key_of(item)) == part:
                        index = i
                        break
            if index is None:
                return tuple(out), False
            out.append(index)
            node = node[index]
            parent = ""
        else:
            return tuple(out), False
    return tuple(out), True


def keyed_path(body: Any, path: FieldPath) -> FieldPath:
    """The inverse of ``desired_path``: list indexes replaced by keys where a list is keyed."""
    out: list[str | int] = []
    node = body
    parent = ""
    for part in path:
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            keyed = _keyed(node, parent)
            item = node[part]
            if keyed is not None:
                key_of = KEYED_LISTS[parent]
                out.append(str(key_of(item)))
            else:
                out.append(part)
            node, parent = item, ""
        elif isinstance(node, dict) and part in node:
            out.append(part)
            node, parent = node[part], str(part)
        else:
            out.extend(path[len(out):])
            break
    return tuple(out)


def path_text(path: FieldPath) -> str:
    """``spec.template.spec.containers[app].image``-style text for a normalized path."""
    text = ""
    previous: str | int = ""
    for part in path:
        if isinstance(part, int) or previous in KEYED_LISTS:
            text += f"[{part}]"
        elif text and ("." in part or "/" in part):
            text += f"[{part!r}]"
        else:
            text += f".{part}" if text else part
        previous = part
    return text
