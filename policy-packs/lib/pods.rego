package lib.gitops_checker.pods

import future.keywords.contains
import future.keywords.if
import future.keywords.in

# Kinds whose pod template sits at spec.template.spec.
template_kinds := {
	"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job",
	"ReplicationController", "Rollout",
}

# Every pod spec in the object under review, with the field path that leads to it.
specs contains {"path": ["spec"], "spec": spec} if {
	input.review.object.kind == "Pod"
	spec := input.review.object.spec
}

specs contains {"path": ["spec", "template", "spec"], "spec": spec} if {
	input.review.object.kind in template_kinds
	spec := input.review.object.spec.template.spec
}

specs contains {"path": ["spec", "jobTemplate", "spec", "template", "spec"], "spec": spec} if {
	input.review.object.kind == "CronJob"
	spec := input.review.object.spec.jobTemplate.spec.template.spec
}

specs contains {"path": ["template", "spec"], "spec": spec} if {
	input.review.object.kind == "PodTemplate"
	spec := input.review.object.template.spec
}

container_fields := ["containers", "initContainers", "ephemeralContainers"]

# Every container of every pod spec: {"path", "container", "pod_path", "pod"}.
containers contains {
	"path": array.concat(s.path, [field, i]),
	"container": c,
	"pod_path": s.path,
	"pod": s.spec,
} if {
	some s in specs
	some field in container_fields
	some i, c in s.spec[field]
}
