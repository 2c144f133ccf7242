"""Where the pod spec sits in each pod-bearing kind (shared by drift and the image inventory)."""

from __future__ import annotations

from checker.model import FieldPath

# Built-in kinds, by kind (their API groups are fixed).
POD_SPEC_AT: dict[str, FieldPath] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

# Custom resources, keyed by (API group, kind).
CUSTOM_POD_SPEC_AT: dict[tuple[str, str], FieldPath] = {
    ("argoproj.io", "Rollout"): ("spec", "template", "spec"),
    ("serving.knative.dev", "Service"): ("spec", "template", "spec"),
    ("serving.knative.dev", "Configuration"): ("spec", "template", "spec"),
    ("keda.sh", "ScaledJob"): ("spec", "jobTargetRef", "template", "spec"),
    ("apps.kruise.io", "CloneSet"): ("spec", "template", "spec"),
    ("apps.kruise.io", "StatefulSet"): ("spec", "template", "spec"),
    ("apps.kruise.io", "DaemonSet"): ("spec", "template", "spec"),
}
