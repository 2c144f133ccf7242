"""Which kinds are cluster-scoped: object identity as the API server decides it.

The API server ignores ``metadata.namespace`` on an object of a cluster-scoped kind (a
``ClusterRole`` with a stray namespace, a Gatekeeper constraint under a Flux
``targetNamespace``, a ``ClusterIssuer`` under a kustomize ``namespace:``): it is stored, and
listed, without one. Pairing a manifest with its live object must do the same, or a healthy
object is reported missing (and, with Flux labels, unmanaged).

The scope of a kind comes from, in this order: the snapshot's discovery data (what the cluster
serves), the ``CustomResourceDefinition``s in the repository (``spec.scope``), and a built-in
table of the Kubernetes API's cluster-scoped kinds and of well-known projects' ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from checker.drift.sources import KindRef
from checker.model import Resource

# Kubernetes' own cluster-scoped kinds (``kubectl api-resources --namespaced=false`` of a
# v1.31 API server), by group.
BUILTIN_CLUSTER_SCOPED = frozenset({
    KindRef("", "Namespace"), KindRef("", "Node"), KindRef("", "PersistentVolume"),
    KindRef("", "ComponentStatus"),
    KindRef("rbac.authorization.k8s.io", "ClusterRole"),
    KindRef("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    KindRef("apiextensions.k8s.io", "CustomResourceDefinition"),
    KindRef("apiregistration.k8s.io", "APIService"),
    KindRef("storage.k8s.io", "StorageClass"), KindRef("storage.k8s.io", "CSIDriver"),
    KindRef("storage.k8s.io", "CSINode"), KindRef("storage.k8s.io", "VolumeAttachment"),
    KindRef("storage.k8s.io", "VolumeAttributesClass"),
    KindRef("scheduling.k8s.io", "PriorityClass"),
    KindRef("networking.k8s.io", "IngressClass"), KindRef("networking.k8s.io", "IPAddress"),
    KindRef("networking.k8s.io", "ServiceCIDR"),
    KindRef("node.k8s.io", "RuntimeClass"),
    KindRef("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    KindRef("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    KindRef("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    KindRef("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    KindRef("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    KindRef("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
    KindRef("certificates.k8s.io", "CertificateSigningRequest"),
    KindRef("certificates.k8s.io", "ClusterTrustBundle"),
    KindRef("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    KindRef("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    KindRef("resource.k8s.io", "DeviceClass"), KindRef("resource.k8s.io", "ResourceSlice"),
    KindRef("internal.apiserver.k8s.io", "StorageVersion"),
    KindRef("storagemigration.k8s.io", "StorageVersionMigration"),
    # Well-known projects whose CRDs a repository often does not vendor.
    KindRef("templates.gatekeeper.sh", "ConstraintTemplate"),
    KindRef("cert-manager.io", "ClusterIssuer"),
    KindRef("kyverno.io", "ClusterPolicy"), KindRef("kyverno.io", "ClusterCleanupPolicy"),
    KindRef("wgpolicyk8s.io", "ClusterPolicyReport"),
    KindRef("external-secrets.io", "ClusterSecretStore"),
    KindRef("external-secrets.io", "ClusterExternalSecret"),
    KindRef("snapshot.storage.k8s.io", "VolumeSnapshotClass"),
    KindRef("snapshot.storage.k8s.io", "VolumeSnapshotContent"),
    KindRef("gateway.networking.k8s.io", "GatewayClass"),
    KindRef("cilium.io", "CiliumClusterwideNetworkPolicy"),
})
# Groups all of whose kinds are cluster-scoped: Gatekeeper's constraint kinds are generated
# from ConstraintTemplates (``constraints.gatekeeper.sh``), its mutators are cluster-wide.
BUILTIN_CLUSTER_SCOPED_GROUPS = frozenset({
    "constraints.gatekeeper.sh", "mutations.gatekeeper.sh", "expansion.gatekeeper.sh",
})
CRD = KindRef("apiextensions.k8s.io", "CustomResourceDefinition")
CONSTRAINT_TEMPLATE = KindRef("templates.gatekeeper.sh", "ConstraintTemplate")


@dataclass
class Scopes:
    """Known scopes: True for a namespaced kind, False for a cluster-scoped one."""

    discovered: dict[KindRef, bool] = field(default_factory=dict)
    declared: dict[KindRef, bool] = field(default_factory=dict)

    @classmethod
    def build(cls, resources: Iterable[Resource],
              discovered: Mapping[KindRef, bool] | None = None) -> Scopes:
        """Scopes from discovery data and the CRDs (and ConstraintTemplates) in Git."""
        declared: dict[KindRef, bool] = {}
        for res in resources:
            ref = KindRef(res.group, res.kind)
            spec = res.body.get("spec")
            if not isinstance(spec, Mapping):
                continue
            if ref == CRD:
                names = spec.get("names")
                kind = names.get("kind") if isinstance(names, Mapping) else None
                group = spec.get("group")
                scope = spec.get("scope")
                if isinstance(kind, str) and isinstance(group, str) and scope in (
                        "Namespaced", "Cluster"):
                    declared.setdefault(KindRef(group, kind), scope == "Namespaced")
            elif ref == CONSTRAINT_TEMPLATE:
                crd = spec.get("crd")
                crd_spec = crd.get("spec") if isinstance(crd, Mapping) else None
                names = crd_spec.get("names") if isinstance(crd_spec, Mapping) else None
                kind = names.get("kind") if isinstance(names, Mapping) else None
                if isinstance(kind, str) and kind:
                    declared.setdefault(KindRef("constraints.gatekeeper.sh", kind), False)
        return cls(dict(discovered or {}), declared)

    def namespaced(self, ref: KindRef) -> bool | None:
        """True, False, or None when nothing says (an unknown custom kind)."""
        if ref in self.discovered:
            return self.discovered[ref]
        if ref in self.declared:
            return self.declared[ref]
        if ref in BUILTIN_CLUSTER_SCOPED or ref.group in BUILTIN_CLUSTER_SCOPED_GROUPS:
            return False
        if ref.group == "" or ref.group.endswith(".k8s.io") or "." not in ref.group:
            return True  # the built-in API's other kinds are namespaced
        return None

    def source(self, ref: KindRef) -> str:
        """Where the scope of a kind comes from, for messages."""
        if ref in self.discovered:
            return "the cluster's discovery data"
        if ref in self.declared:
            return "its CustomResourceDefinition in the repository"
        return "the built-in table of cluster-scoped kinds"
