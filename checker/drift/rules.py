"""Rule metadata of the drift findings (merged into ``checker.rules.BUILTIN_RULES``)."""

from __future__ import annotations

from checker.model import Rule, Severity

RULE_MODIFIED = "drift.modified"
RULE_MISSING = "drift.missing"
RULE_UNMANAGED = "drift.unmanaged"
RULE_UNREADABLE = "drift.unreadable"
RULE_POLICY = "drift.policy-violation"
RULE_NAMESPACE_IGNORED = "drift.namespace-ignored"
RULE_NOT_RECONCILED = "drift.not-reconciled"

DRIFT_RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(RULE_MODIFIED, "Live field differs from Git", Severity.ERROR,
             "A field the manifest declares (or a field whose presence matters, such as a "
             "privileged flag or an extra container) has a different value in the cluster. "
             "Server-populated fields, bookkeeping annotations and API defaults are not "
             "drift.",
             "Find out who changed the live object; revert it by re-syncing from Git, or "
             "change Git. A field a controller owns (autoscaled replicas) belongs in the "
             "drift ignore rules."),
        Rule(RULE_MISSING, "Object in Git is missing from the cluster", Severity.ERROR,
             "The manifest declares an object that does not exist in the cluster.",
             "Check the GitOps controller's sync status for this object."),
        Rule(RULE_UNMANAGED, "Object owned by GitOps is not in Git", Severity.ERROR,
             "A live object carries the ownership labels or annotations of this cluster's "
             "GitOps controller but no manifest declares it.",
             "Add it to Git, or delete it from the cluster (enable pruning)."),
        Rule(RULE_UNREADABLE, "Kind not compared", Severity.ERROR,
             "Objects of this kind could not be read from the cluster (forbidden, not "
             "served, failed after retries) or are not in the snapshot file, so they were not "
             "compared. They are never reported as missing.",
             "Grant get/list on the kind to the snapshot reader (deploy/rbac/"
             "snapshot-reader.yaml) or include the kind in the exported snapshot."),
        Rule(RULE_POLICY, "Live object changed into a policy violation", Severity.ERROR,
             "The live object violates a policy that its manifest in Git satisfies: it was "
             "changed by hand into a violation.",
             "Revert the live change; the policy named in the message says what is wrong."),
        Rule(RULE_NAMESPACE_IGNORED, "Namespace on a cluster-scoped object", Severity.NOTE,
             "The manifest gives a namespace to an object of a cluster-scoped kind (often "
             "set by a kustomize 'namespace:' or a Flux 'targetNamespace'). The API server "
             "ignores it, and so does drift when it pairs the manifest with the live object. "
             "The scope comes from the snapshot's discovery data, the CRDs in the "
             "repository, or the built-in table.",
             "Remove the namespace from the manifest, or keep it: it has no effect."),
        Rule(RULE_NOT_RECONCILED, "Object Flux does not reconcile", Severity.NOTE,
             "The object carries kustomize.toolkit.fluxcd.io/reconcile: disabled or "
             "kustomize.toolkit.fluxcd.io/ssa: Ignore, in Git or in the cluster: Flux does "
             "not apply it, so its live state is not compared with Git.",
             "Remove the annotation when Flux should manage the object again."),
    )
}
DRIFT_PACK = "drift"
DRIFT_RULES = {
    rid: Rule(r.id, r.title, r.severity, r.description, r.help, pack=DRIFT_PACK,
              help_uri=f"docs/rules.md#{rid.replace('.', '')}")  # its heading's anchor
    for rid, r in DRIFT_RULES.items()
}
