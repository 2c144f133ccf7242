"""Find every container image a Kubernetes object declares, with the field path of each.

Pod-bearing built-in kinds carry a PodSpec at a known path; a few widely used custom
resources (Argo Rollouts and Workflows, Knative Services, Tekton Tasks, KEDA ScaledJobs,
OpenKruise workloads) declare images in their own shapes. Each is described as data below:
a path to a PodSpec, or a pattern of the image fields themselves (``*`` = every list item).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from checker.model import FieldPath, Resource
from checker.podspec import CUSTOM_POD_SPEC_AT, POD_SPEC_AT

CONTAINER_LISTS = (
    ("containers", "container"),
    ("initContainers", "initContainer"),
    ("ephemeralContainers", "ephemeralContainer"),
)

_WORKFLOW = (("templates", "*", "container"), ("templates", "*", "script"),
             ("templates", "*", "initContainers", "*"), ("templates", "*", "sidecars", "*"))


def _tekton(task: FieldPath) -> tuple[tuple[FieldPath, str], ...]:
    """The steps and sidecars of a Tekton task spec at ``task``."""
    return (((*task, "steps", "*"), "step"), ((*task, "sidecars", "*"), "sidecar"))


CUSTOM_CONTAINERS_AT: dict[tuple[str, str], tuple[tuple[FieldPath, str], ...]] = {
    ("argoproj.io", "Workflow"): tuple((("spec", *p), "template") for p in _WORKFLOW),
    ("argoproj.io", "WorkflowTemplate"): tuple((("spec", *p), "template") for p in _WORKFLOW),
    ("argoproj.io", "ClusterWorkflowTemplate"): tuple((("spec", *p), "template")
                                                      for p in _WORKFLOW),
    ("argoproj.io", "CronWorkflow"): tuple((("spec", "workflowSpec", *p), "template")
                                           for p in _WORKFLOW),
    ("tekton.dev", "Task"): _tekton(("spec",)),
    ("tekton.dev", "ClusterTask"): _tekton(("spec",)),
    ("tekton.dev", "TaskRun"): _tekton(("spec", "taskSpec")),
    ("tekton.dev", "Pipeline"): (*_tekton(("spec", "tasks", "*", "taskSpec")),
                                 *_tekton(("spec", "finally", "*", "taskSpec"))),
    ("tekton.dev", "PipelineRun"): (*_tekton(("spec", "pipelineSpec", "tasks", "*", "taskSpec")),
                                    *_tekton(("spec", "pipelineSpec", "finally", "*",
                                              "taskSpec"))),
    ("tekton.dev", "StepAction"): ((("spec",), "step"),),
}


@dataclass(frozen=True)
class DeclaredImage:
    """One ``image:`` field: the raw value, the container it belongs to and its field path."""

    image: str
    container: str
    container_type: str
    field_path: FieldPath


def _walk(value: Any, pattern: FieldPath, prefix: FieldPath) -> Iterator[tuple[FieldPath, Any]]:
    if not pattern:
        yield prefix, value
        return
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield from _walk(item, rest, (*prefix, index))
    elif isinstance(value, Mapping) and head in value:
        yield from _walk(value[head], rest, (*prefix, head))


def _container(value: Any, path: FieldPath, ctype: str) -> Iterator[DeclaredImage]:
    if isinstance(value, Mapping) and "image" in value:
        image = value["image"]
        name = value.get("name")
        yield DeclaredImage(
            image if isinstance(image, str) else str(image),
            name if isinstance(name, str) else "", ctype, (*path, "image"),
        )


def pod_spec_path(res: Resource) -> FieldPath | None:
    """Where the PodSpec of a pod-bearing object is, or None."""
    custom = CUSTOM_POD_SPEC_AT.get((res.group, res.kind))
    if custom is not None:
        return custom
    if res.group in ("", "apps", "batch", "extensions", "apps.openshift.io"):
        return POD_SPEC_AT.get(res.kind)
    return None


def declared_images(res: Resource) -> list[DeclaredImage]:
    """Every image the object declares, in document order of the container lists."""
    out: list[DeclaredImage] = []
    spec_path = pod_spec_path(res)
    if spec_path is not None:
        for field, ctype in CONTAINER_LISTS:
            for path, value in _walk(res.body, (*spec_path, field, "*"), ()):
                out.extend(_container(value, path, ctype))
    for pattern, ctype in CUSTOM_CONTAINERS_AT.get((res.group, res.kind), ()):
        for path, value in _walk(res.body, pattern, ()):
            out.extend(_container(value, path, ctype))
    return out
