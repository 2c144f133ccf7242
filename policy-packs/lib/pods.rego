package lib.gitops_checker.pods

import future.keywords.contains
import future.keywords.if
import future.keywords.in

# Every pod spec in the object under review: the field path that leads to it ("path"), the
# spec ("spec"), and the pod metadata with its path ("meta", "meta_path").
#
# Which kinds are checked is decided by the constraint's spec.match (Gatekeeper evaluates a
# template only for the kinds its constraint matches); here the pod spec is found by where it
# sits: spec (Pod), spec.template.spec (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
# ReplicationController, Argo Rollout, OpenKruise CloneSet, Knative Service, ...),
# spec.jobTemplate.spec.template.spec (CronJob, KEDA ScaledJob) and template.spec (PodTemplate).
# Matching by path, not by a list of kinds, keeps each evaluation cheap.
specs contains {"path": ["spec"], "spec": spec, "meta_path": ["metadata"], "meta": meta} if {
  input.review.kind.kind == "Pod"
  input.review.kind.group == ""
  spec := input.review.object.spec
  meta := object.get(input.review.object, "metadata", {})
}

specs contains {
  "path": ["spec", "template", "spec"], "spec": spec,
  "meta_path": ["spec", "template", "metadata"], "meta": meta,
} if {
  spec := input.review.object.spec.template.spec
  meta := object.get(input.review.object.spec.template, "metadata", {})
}

specs contains {
  "path": ["spec", "jobTemplate", "spec", "template", "spec"], "spec": spec,
  "meta_path": ["spec", "jobTemplate", "spec", "template", "metadata"], "meta": meta,
} if {
  template := input.review.object.spec.jobTemplate.spec.template
  spec := template.spec
  meta := object.get(template, "metadata", {})
}

specs contains {
  "path": ["template", "spec"], "spec": spec,
  "meta_path": ["template", "metadata"], "meta": meta,
} if {
  input.review.kind.kind == "PodTemplate"
  input.review.kind.group == ""
  spec := input.review.object.template.spec
  meta := object.get(input.review.object.template, "metadata", {})
}

# Argo Workflows (Workflow, WorkflowTemplate, ClusterWorkflowTemplate, CronWorkflow): the
# controller runs each container or script template as a pod with restartPolicy Never. Its
# pod spec is the workflow's pod-level fields, overridden by the template's, with the main
# container (container or script) and the sidecars as containers, the template's
# initContainers, and the workflow's and template's volumes. "path" is the template (a pod-level
# finding points at it), "workflow" marks such specs; their containers are listed below with
# the paths they have in the workflow.
workflow_at := {"path": ["spec"], "spec": input.review.object.spec} if {
  input.review.kind.group == "argoproj.io"
  input.review.kind.kind in {"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate"}
}

workflow_at := {"path": ["spec", "workflowSpec"], "spec": input.review.object.spec.workflowSpec} if {
  input.review.kind.group == "argoproj.io"
  input.review.kind.kind == "CronWorkflow"
}

workflow_pod_fields := {
  "securityContext", "hostNetwork", "automountServiceAccountToken", "serviceAccountName",
  "nodeSelector", "tolerations", "affinity", "priorityClassName", "schedulerName",
  "dnsPolicy", "dnsConfig", "hostAliases", "imagePullSecrets", "runtimeClassName",
}

pod_fields(source) := {k: v | some k in workflow_pod_fields; v := source[k]}

specs contains {
  "path": path, "spec": spec, "meta_path": array.concat(path, ["metadata"]), "meta": meta,
  "workflow": true, "main": field, "template": t,
} if {
  wf := workflow_at
  some i, t in wf.spec.templates
  some field in ["container", "script"]
  is_object(t[field])
  main := object.union({"name": "main"}, t[field])  # Argo names an unnamed main container "main"
  path := array.concat(wf.path, ["templates", i])
  meta := object.get(t, "metadata", {})
  spec := object.union(object.union(pod_fields(wf.spec), pod_fields(t)), {
    "containers": array.concat([main], object.get(t, "sidecars", [])),
    "initContainers": object.get(t, "initContainers", []),
    "volumes": array.concat(object.get(wf.spec, "volumes", []), object.get(t, "volumes", [])),
    "restartPolicy": "Never",
  })
}

# Tekton Pipelines (tekton.dev): a TaskRun runs as one pod whose containers are the task's
# steps, each over the task's stepTemplate (a v1 step's computeResources are its container's
# resources), then its sidecars, with the task's volumes and restartPolicy Never; pod-level
# fields come from the run's podTemplate and service account. A task spec sits in a Task or
# ClusterTask, a TaskRun, and each task of a Pipeline or PipelineRun (tasks and finally).
# "path" is the task spec (a pod-level finding points at it); "entries" lists its containers
# with the paths they have in the object.
tekton_run(spec, template) := object.union(
  object.union(object.get(spec, "podTemplate", {}), object.get(template, "podTemplate", {})),
  {k: v | some src in [spec, template]; k := "serviceAccountName"; v := src[k]},
)

tekton_pipelines contains {"path": ["spec"], "pipeline": input.review.object.spec, "run": {}} if {
  input.review.kind.group == "tekton.dev"
  input.review.kind.kind == "Pipeline"
}

tekton_pipelines contains {"path": ["spec", "pipelineSpec"], "pipeline": pipeline, "run": run} if {
  input.review.kind.group == "tekton.dev"
  input.review.kind.kind == "PipelineRun"
  spec := input.review.object.spec
  pipeline := spec.pipelineSpec
  run := tekton_run(spec, object.get(spec, "taskRunTemplate", {}))
}

tekton_tasks contains {"path": ["spec"], "task": input.review.object.spec, "run": {}} if {
  input.review.kind.group == "tekton.dev"
  input.review.kind.kind in {"Task", "ClusterTask"}
}

tekton_tasks contains {"path": ["spec", "taskSpec"], "task": task, "run": run} if {
  input.review.kind.group == "tekton.dev"
  input.review.kind.kind == "TaskRun"
  spec := input.review.object.spec
  task := spec.taskSpec
  run := tekton_run(spec, {})
}

tekton_tasks contains {"path": array.concat(p.path, [list, i, "taskSpec"]), "task": task, "run": p.run} if {
  some p in tekton_pipelines
  some list in ["tasks", "finally"]
  some i, t in p.pipeline[list]
  task := t.taskSpec  # bound here: a task with a taskRef has none
}

tekton_container(c) := object.union(object.remove(c, ["computeResources"]), {"resources": c.computeResources}) if {
  is_object(c.computeResources)
} else := c

specs contains {
  "path": t.path, "spec": spec, "meta_path": ["metadata"], "meta": meta, "entries": entries,
} if {
  some t in tekton_tasks
  is_object(t.task)
  template := object.get(t.task, "stepTemplate", {})
  steps := [{"path": array.concat(t.path, ["steps", i]), "container": tekton_container(step)} |
    some i, s in object.get(t.task, "steps", [])
    step := object.union(object.union({"name": sprintf("unnamed-%d", [i])}, template), s)
  ]
  sidecars := [{"path": array.concat(t.path, ["sidecars", i]), "container": tekton_container(c)} |
    some i, c in object.get(t.task, "sidecars", [])
  ]
  entries := array.concat(steps, sidecars)
  meta := object.get(input.review.object, "metadata", {})
  spec := object.union(pod_fields(t.run), {
    "containers": [e.container | some e in entries],
    "volumes": array.concat(object.get(t.task, "volumes", []), object.get(t.run, "volumes", [])),
    "restartPolicy": "Never",
  })
}

# A StepAction is one step a task's steps may reference: its spec is that step's container.
specs contains {
  "path": ["spec"], "spec": {"containers": [c], "restartPolicy": "Never"},
  "meta_path": ["metadata"], "meta": meta, "entries": [{"path": ["spec"], "container": c}],
} if {
  input.review.kind.group == "tekton.dev"
  input.review.kind.kind == "StepAction"
  meta := object.get(input.review.object, "metadata", {})
  c := tekton_container(object.union({"name": object.get(meta, "name", "step")}, input.review.object.spec))
}

# Every container of every pod spec: {"path", "container", "pod"}, where "pod" is the pod spec.
containers contains {"path": array.concat(s.path, [field, i]), "container": c, "pod": s.spec} if {
  some s in specs
  not s.workflow
  not s.entries
  some field in ["initContainers", "containers", "ephemeralContainers"]
  some i, c in s.spec[field]
}

containers contains {"path": array.concat(s.path, [s.main]), "container": c, "pod": s.spec} if {
  some s in specs
  s.workflow
  c := s.spec.containers[0]
}

containers contains {"path": array.concat(s.path, [field, i]), "container": c, "pod": s.spec} if {
  some s in specs
  s.workflow
  some field in ["initContainers", "sidecars"]
  some i, c in s.template[field]
}

containers contains {"path": e.path, "container": e.container, "pod": s.spec} if {
  some s in specs
  some e in s.entries
}

# Containers of long-running or batch workloads, without ephemeral (debug) containers.
app_containers contains entry if {
  some entry in containers
  entry.path[count(entry.path) - 2] != "ephemeralContainers"
}

app_containers contains entry if {  # a StepAction's container is its spec
  some entry in containers
  count(entry.path) < 2
}
