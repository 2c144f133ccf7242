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

# Every container of every pod spec: {"path", "container", "pod"}, where "pod" is the pod spec.
containers contains {"path": array.concat(s.path, [field, i]), "container": c, "pod": s.spec} if {
  some s in specs
  some field in ["initContainers", "containers", "ephemeralContainers"]
  some i, c in s.spec[field]
}

# Containers of long-running or batch workloads, without ephemeral (debug) containers.
app_containers contains entry if {
  some entry in containers
  entry.path[count(entry.path) - 2] != "ephemeralContainers"
}
