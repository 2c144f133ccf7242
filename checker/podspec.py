"""Where the pod spec sits in each pod-bearing kind (shared by drift and the image inventory)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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

# Argo Workflows kinds whose templates the pod policies check (policy-packs/lib/pods.rego),
# with where the workflow spec sits.
WORKFLOW_SPEC_AT: dict[str, FieldPath] = {
    "Workflow": ("spec",),
    "WorkflowTemplate": ("spec",),
    "ClusterWorkflowTemplate": ("spec",),
    "CronWorkflow": ("spec", "workflowSpec"),
}


def unchecked_workflow_fields(kind: str, group: str, body: Mapping[str, Any],
                              ) -> list[tuple[FieldPath, str]]:
    """Fields of an Argo Workflows object that change its pods but are not policy-checked.

    ``podSpecPatch`` is a patch the controller applies to each pod and ``templateDefaults``
    fields merged into every template: the pod policies see neither, so each is reported.
    """
    at = WORKFLOW_SPEC_AT.get(kind) if group == "argoproj.io" else None
    if at is None:
        return []
    spec: Any = body
    for key in at:
        spec = spec.get(key) if isinstance(spec, Mapping) else None
    if not isinstance(spec, Mapping):
        return []
    out: list[tuple[FieldPath, str]] = []
    for field in ("podSpecPatch", "templateDefaults"):
        if spec.get(field):
            out.append(((*at, field), field))
    templates = spec.get("templates")
    for index, template in enumerate(templates if isinstance(templates, list) else []):
        if isinstance(template, Mapping) and template.get("podSpecPatch"):
            out.append(((*at, "templates", index, "podSpecPatch"), "podSpecPatch"))
    return out
