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
    """Fields of an Argo Workflows or Tekton object that change its pods but are not
    policy-checked, with a name for each.

    Argo Workflows: ``podSpecPatch`` is a patch the controller applies to each pod and
    ``templateDefaults`` fields merged into every template: the pod policies see neither.
    Tekton: see ``unchecked_tekton_fields``.
    """
    if group == TEKTON_GROUP:
        return unchecked_tekton_fields(kind, body)
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


# Tekton Pipelines: the kinds whose task specs the pod policies check (policy-packs/lib/pods.rego).
TEKTON_GROUP = "tekton.dev"
TEKTON_KINDS = ("Task", "ClusterTask", "TaskRun", "Pipeline", "PipelineRun", "StepAction")


def _remote(ref: Any) -> bool:
    """A Tekton ``taskRef``/``pipelineRef``/step ``ref`` that a resolver or a bundle fetches."""
    return isinstance(ref, Mapping) and bool(ref.get("resolver") or ref.get("bundle"))


def _task_spec_gaps(spec: Any, at: FieldPath) -> list[tuple[FieldPath, str]]:
    out: list[tuple[FieldPath, str]] = []
    steps = spec.get("steps") if isinstance(spec, Mapping) else None
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if isinstance(step, Mapping) and _remote(step.get("ref")):
            out.append(((*at, "steps", index, "ref"),
                        "a step whose StepAction is fetched by a resolver"))
    return out


def unchecked_tekton_fields(kind: str, body: Mapping[str, Any]) -> list[tuple[FieldPath, str]]:
    """What a Tekton object runs that is fetched at run time and so not in the repository: a
    ``taskRef``, ``pipelineRef`` or step ``ref`` resolved by a resolver (git, hub, bundles,
    cluster, http) or an OCI bundle. Tasks referenced by name are objects of their own, checked
    where they are declared; embedded task specs are checked as the pods they become."""
    spec = body.get("spec")
    if not isinstance(spec, Mapping) or kind not in TEKTON_KINDS:
        return []
    out: list[tuple[FieldPath, str]] = []

    def pipeline(pipe: Any, at: FieldPath) -> None:
        for part in ("tasks", "finally"):
            tasks = pipe.get(part) if isinstance(pipe, Mapping) else None
            for index, task in enumerate(tasks if isinstance(tasks, list) else []):
                if not isinstance(task, Mapping):
                    continue
                if _remote(task.get("taskRef")):
                    out.append(((*at, part, index, "taskRef"),
                                "a task fetched by a resolver or bundle"))
                out.extend(_task_spec_gaps(task.get("taskSpec"), (*at, part, index, "taskSpec")))

    if kind in ("Task", "ClusterTask"):
        out.extend(_task_spec_gaps(spec, ("spec",)))
    elif kind == "TaskRun":
        if _remote(spec.get("taskRef")):
            out.append((("spec", "taskRef"), "a task fetched by a resolver or bundle"))
        out.extend(_task_spec_gaps(spec.get("taskSpec"), ("spec", "taskSpec")))
    elif kind == "Pipeline":
        pipeline(spec, ("spec",))
    elif kind == "PipelineRun":
        if _remote(spec.get("pipelineRef")):
            out.append((("spec", "pipelineRef"), "a pipeline fetched by a resolver or bundle"))
        pipeline(spec.get("pipelineSpec"), ("spec", "pipelineSpec"))
    return out
