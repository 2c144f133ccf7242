package lib.gitops_checker.pods

import future.keywords.contains
import future.keywords.if
import future.keywords.in

# Group and kind of the object under review, as the AdmissionRequest names them.
group := input.review.kind.group

kind := input.review.kind.kind

# Kinds whose pod template sits at spec.template, by API group: built-in workloads and
# well-known custom resources whose pod template path is documented.
template_kinds := {
  "apps": {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"},
  "extensions": {"Deployment", "ReplicaSet", "DaemonSet"},
  "batch": {"Job"},
  "": {"ReplicationController"},
  "argoproj.io": {"Rollout"},
  "apps.kruise.io": {"CloneSet", "StatefulSet", "DaemonSet"},
  "serving.knative.dev": {"Service", "Configuration"},
}

# Kinds whose pod template sits at spec.jobTemplate.spec.template.
job_template_kinds := {"batch": {"CronJob"}, "keda.sh": {"ScaledJob"}}

# Every pod spec in the object under review: the field path that leads to it ("path"), the
# spec ("spec"), and the pod metadata with its path ("meta", "meta_path").
specs contains {"path": ["spec"], "spec": spec, "meta_path": ["metadata"], "meta": meta} if {
  kind == "Pod"
  group == ""
  spec := input.review.object.spec
  meta := object.get(input.review.object, "metadata", {})
}

specs contains {
  "path": ["spec", "template", "spec"], "spec": spec,
  "meta_path": ["spec", "template", "metadata"], "meta": meta,
} if {
  kind in template_kinds[group]
  spec := input.review.object.spec.template.spec
  meta := object.get(input.review.object.spec.template, "metadata", {})
}

specs contains {
  "path": ["spec", "jobTemplate", "spec", "template", "spec"], "spec": spec,
  "meta_path": ["spec", "jobTemplate", "spec", "template", "metadata"], "meta": meta,
} if {
  kind in job_template_kinds[group]
  template := input.review.object.spec.jobTemplate.spec.template
  spec := template.spec
  meta := object.get(template, "metadata", {})
}

specs contains {
  "path": ["template", "spec"], "spec": spec,
  "meta_path": ["template", "metadata"], "meta": meta,
} if {
  kind == "PodTemplate"
  group == ""
  spec := input.review.object.template.spec
  meta := object.get(input.review.object.template, "metadata", {})
}

container_fields := ["initContainers", "containers", "ephemeralContainers"]

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

# Containers of long-running or batch workloads, without ephemeral (debug) containers.
app_containers contains entry if {
  some entry in containers
  entry.path[count(entry.path) - 2] != "ephemeralContainers"
}

# The pod runs Windows (spec.os.name), which exempts it from Linux-only controls.
windows(spec) if spec.os.name == "windows"

# The pod runs in a user namespace (spec.hostUsers: false).
user_namespace(spec) if spec.hostUsers == false

# A securityContext as an object ({} when absent or null), so lookups in it are plain.
security_context(x) := sc if {
  sc := x.securityContext
  is_object(sc)
} else := {}
