"""Compare the desired state with a snapshot: modified, missing, unmanaged, and coverage.

Both sides are normalized (``normalize``), the live object is projected onto the fields the
desired object declares, and deepdiff does the structural comparison of what is left. Each
differing field becomes one finding at the desired manifest's line of that field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import notpresent

from checker.drift.applied import (
    DEFAULT_FIELD_MANAGERS,
    applied_fields,
    child,
    declares,
    undeclared,
)
from checker.drift.crdtypes import FieldTypes
from checker.drift.engines import create_only, kept_when_not_in_git, not_reconciled
from checker.drift.ignore import IgnoreRule
from checker.drift.normalize import (
    Keyed,
    aggregated,
    apply_defaults,
    desired_path,
    normalize_pair,
    path_text,
    server_kept,
    strip_server_fields,
)
from checker.drift.rules import (
    RULE_MISSING,
    RULE_MODIFIED,
    RULE_NAMESPACE_IGNORED,
    RULE_NOT_RECONCILED,
    RULE_UNMANAGED,
    RULE_UNREADABLE,
)
from checker.drift.scope import Scopes
from checker.drift.secrets import (
    REDACTED,
    SECRET_KINDS,
    SecretHasher,
    blind_values,
    hash_secret_values,
    is_encrypted,
)
from checker.drift.sources import KindRef, Snapshot, group_of
from checker.model import FieldPath, Finding, ObjectRef, Resource, Severity, SourceLocation

Ident = tuple[str, str, str, str]
Pair = tuple[Resource, dict[str, Any], list[IgnoreRule]]
FLUX_NAME = "kustomize.toolkit.fluxcd.io/name"
FLUX_NAMESPACE = "kustomize.toolkit.fluxcd.io/namespace"
ARGO_TRACKING = "argocd.argoproj.io/tracking-id"
ARGO_INSTANCE = "app.kubernetes.io/instance"
NOT_APPLIED = frozenset({
    KindRef("kustomize.config.k8s.io", "Kustomization"),
    KindRef("kustomize.config.k8s.io", "Component"),
    KindRef("config.kubernetes.io", "ResourceList"),
})
MAX_SHOWN = 120
DATA_KINDS = frozenset({"Secret", "ConfigMap"})


@dataclass(frozen=True)
class DriftOptions:
    """How to compare: cluster name, where unmanaged objects are reported, ignore rules."""

    entry: SourceLocation
    cluster: str = ""
    ignore: Sequence[IgnoreRule] = ()
    owners: Sequence[str] = ()
    default_namespace: str = "default"
    field_managers: Sequence[str] = DEFAULT_FIELD_MANAGERS  # whose applied fields count
    field_types: Mapping[KindRef, Mapping[tuple[str, ...], str]] = field(
        default_factory=dict)  # drift.fieldTypes: custom fields' types no CRD gives


@dataclass
class DriftResult:
    """Drift findings, the pairs that drifted (for the policy check) and the coverage."""

    findings: list[Finding] = field(default_factory=list)
    managed: int = 0
    in_sync: int = 0
    not_compared: int = 0
    drifted: list[tuple[Resource, dict[str, Any]]] = field(default_factory=list)
    compared: list[tuple[Resource, dict[str, Any]]] = field(default_factory=list)  # every pair
    unmanaged: list[dict[str, Any]] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        """Share of the managed objects in sync; one not compared is not in sync (1.0: none)."""
        total = self.managed + self.not_compared
        return self.in_sync / total if total else 1.0


def ident_of(obj: Mapping[str, Any]) -> Ident:
    """(group, kind, namespace, name) of a live object."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    return (group_of(str(obj.get("apiVersion", ""))), str(obj.get("kind", "")),
            str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def display_of(ident: Ident) -> str:
    """``Kind namespace/name`` of an identity."""
    _, kind, namespace, name = ident
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _show(value: Any) -> Any:
    if value is notpresent:
        return None
    if isinstance(value, (dict, list)):
        return json.loads(json.dumps(value, sort_keys=True, default=str))
    return value


def _short(value: Any) -> str:
    text = "absent" if value is None else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


def _value_at(body: Any, path: FieldPath) -> Any:
    node = body
    for part in path:
        node = node[part]
    return node


def _value_at_keyed(body: Any, path: FieldPath) -> Any:
    node, parent = body, ""
    for part in path:
        node, parent = child(node, str(part), parent), str(part)
    return node


def _copy_spec(body: dict[str, Any]) -> dict[str, Any]:
    """Defaults are filled into ``spec`` only: copy it so the inputs stay untouched."""
    spec = body.get("spec")
    if isinstance(spec, dict):
        body["spec"] = json.loads(json.dumps(spec, default=str))
    return body


def _differences(want: Any, have: Any, prefix: FieldPath = ()) -> Iterator[tuple[FieldPath, Any]]:
    """deepdiff tree levels with their path prefix, diffing the smallest differing mappings.

    Descending through mappings that differ in one nested mapping keeps each deepdiff call
    small; deepdiff still decides what changed and how.
    """
    if isinstance(want, dict) and isinstance(have, dict) and type(want) is type(have):
        differing = [k for k in want.keys() | have.keys() if want.get(k) != have.get(k)]
        if len(differing) == 1 and all(k in want and k in have for k in differing):
            key = differing[0]
            if isinstance(want[key], dict) and isinstance(have[key], dict):
                yield from _differences(want[key], have[key], (*prefix, key))
                return
    # threshold_to_diff_deeper=0: never report a mapping as one replaced value because it
    # shares few keys; each drifted key or keyed-list entry is its own finding, at its line.
    diff = DeepDiff(want, have, view="tree", threshold_to_diff_deeper=0)
    for change_type in sorted(diff):
        for level in sorted(diff[change_type], key=lambda lv: repr(lv.path())):
            yield prefix, level


class Comparer:
    """Compares one cluster's desired resources with a snapshot."""

    def __init__(self, snapshot: Snapshot, hasher: SecretHasher, options: DriftOptions) -> None:
        self.snapshot = snapshot
        self.hasher = hasher
        self.options = options
        self.values_verifiable = snapshot.key_id == hasher.key_id
        self.live: dict[Ident, dict[str, Any]] = {}
        for obj in snapshot.objects:
            self.live.setdefault(ident_of(obj), obj)
        self.unreadable = {u.ref: u.reason for u in snapshot.unreadable}
        self.owner_locations: dict[str, SourceLocation] = {}
        self.scopes = Scopes(dict(snapshot.scopes))
        self.types = FieldTypes()
        self._live_scopes: dict[KindRef, bool] | None = None

    def _resolve(self, res: Resource) -> tuple[Ident, Finding | None]:
        """The live identity of a manifest, as the API server stores it.

        A cluster-scoped kind has no namespace: one written in Git is ignored (and noted).
        A kind of unknown scope is namespaced unless the snapshot holds it without one.
        """
        ref = KindRef(res.group, res.kind)
        namespaced = self.scopes.namespaced(ref)
        cluster_scoped = (res.group, res.kind, "", res.name)
        if namespaced is None and (cluster_scoped in self.live or (not res.namespace
                                   and ref in self.snapshot.read_kinds
                                   and self._only_cluster_scoped(ref))):
            namespaced = False
        if namespaced is False:
            if not res.namespace:
                return cluster_scoped, None
            where = ("the cluster stores it without one" if self.scopes.namespaced(ref) is None
                     else f"per {self.scopes.source(ref)}")
            note = Finding(
                rule_id=RULE_NAMESPACE_IGNORED, category="drift", severity=Severity.NOTE,
                message=f"{res.kind} is cluster-scoped ({where}): namespace "
                        f"{res.namespace!r} is ignored by the API server and for matching",
                location=res.locate(("metadata", "namespace")), resource=res.display,
                field_path=("metadata", "namespace"), cluster=self.options.cluster,
                details={"namespace": res.namespace, "scope": "Cluster"},
                ref=res.ref.in_cluster(self.options.cluster))
            return cluster_scoped, note
        return (res.group, res.kind, res.namespace or self.options.default_namespace,
                res.name), None

    def _only_cluster_scoped(self, ref: KindRef) -> bool:
        if self._live_scopes is None:
            seen: dict[KindRef, set[bool]] = {}
            for group, kind, namespace, _ in self.live:
                seen.setdefault(KindRef(group, kind), set()).add(bool(namespace))
            self._live_scopes = {k: v == {False} for k, v in seen.items()}
        return self._live_scopes.get(ref, False)

    def _rules_for(self, ident: Ident) -> list[IgnoreRule]:
        return [r for r in self.options.ignore if r.selects(*ident)]

    def normalized(self, res: Resource, live: Mapping[str, Any]) -> tuple[Any, Any]:
        """Desired and live, normalized and projected onto the declared fields."""
        desired = _copy_spec(strip_server_fields(res.body))
        actual = _copy_spec(strip_server_fields(live))
        # Defaults on both sides: a live value that differs from the default Git relies on is
        # drift; a live object exported without defaults (kubectl neat) is not.
        apply_defaults(res.kind, desired)
        apply_defaults(res.kind, actual)
        if self.types:  # custom kinds' durations, quantities, int-or-string (their CRDs)
            ref = KindRef(res.group, res.kind)
            self.types.apply(ref, desired)
            self.types.apply(ref, actual)
        if aggregated(res.kind, desired, actual):  # the controller's rules, not Git's
            desired.pop("rules", None)
            actual.pop("rules", None)
        if res.kind in SECRET_KINDS:
            controller_filled(desired, actual)
            encrypted = is_encrypted(desired)
            desired.pop("sops", None)
            desired = hash_secret_values(desired, self.hasher)
            if encrypted or not self.values_verifiable:
                desired, actual = blind_values(desired), blind_values(actual)
        if res.kind in DATA_KINDS:  # every key of a Secret or ConfigMap matters
            for side in (desired, actual):
                for name in ("data", "binaryData"):
                    if isinstance(side.get(name), dict):
                        side[name] = Keyed(side[name])
        return normalize_pair(desired, actual)

    def run(self, resources: Sequence[Resource]) -> DriftResult:
        """Compare every desired resource; then find unmanaged live objects."""
        result = DriftResult()
        self.scopes = Scopes.build(resources, self.snapshot.scopes)
        self.types = FieldTypes.from_resources(resources).merged(self.options.field_types)
        desired_idents: set[Ident] = set()
        not_compared: dict[KindRef, list[Resource]] = {}
        pairs: list[Pair] = []
        for res in resources:
            ref = KindRef(res.group, res.kind)
            if ref in NOT_APPLIED:
                continue
            ident, note = self._resolve(res)
            if ident in desired_idents:
                continue
            desired_idents.add(ident)
            if note is not None:
                result.findings.append(note)
            rules = self._rules_for(ident)
            if any(r.whole_object for r in rules):
                continue
            if ref not in self.snapshot.read_kinds or ref in self.unreadable:
                not_compared.setdefault(ref, []).append(res)
                continue
            live = self.live.get(ident)
            why = not_reconciled(res.body, live)
            if why is not None:
                result.findings.append(Finding(
                    rule_id=RULE_NOT_RECONCILED, category="drift", severity=Severity.NOTE,
                    message=f"not compared: Flux does not reconcile this object ({why})",
                    location=res.location, resource=res.display, cluster=self.options.cluster,
                    details={"change": "not-reconciled", "reason": why},
                    ref=res.ref.in_cluster(self.options.cluster)))
                continue
            result.managed += 1
            if live is None:
                result.findings.append(Finding(
                    rule_id=RULE_MISSING, category="drift", severity=Severity.ERROR,
                    message="declared in Git but does not exist in the cluster",
                    location=res.location, resource=res.display, cluster=self.options.cluster,
                    details={"change": "missing"}, ref=res.ref.in_cluster(self.options.cluster)))
                continue
            if create_only(res.body, live):
                result.in_sync += 1  # ssa: IfNotPresent: Flux never updates it
                continue
            pairs.append((res, live, rules))
        for res, live, rules in pairs:
            result.compared.append((res, live))
            findings = self._modified(res, live, rules)
            findings += self._no_longer_in_git(res, live, rules, findings)
            if findings:
                result.findings.extend(findings)
                result.drifted.append((res, live))
            else:
                result.in_sync += 1
        for ref, group in sorted(not_compared.items()):
            result.not_compared += len(group)
            result.findings.append(self._not_compared(ref, group))
        result.findings.extend(self._unmanaged(resources, desired_idents, result))
        result.findings.sort(key=Finding.sort_key)
        return result

    def _not_compared(self, ref: KindRef, group: list[Resource]) -> Finding:
        reason = self.unreadable.get(ref)
        count = f"{len(group)} object{'s' if len(group) != 1 else ''}"
        if reason is not None:
            message = (f"{ref} could not be read from the cluster ({reason}); {count} in Git "
                       "not compared")
            severity = Severity.ERROR
        else:
            message = (f"{ref} is not in the snapshot, so {count} in Git could not be "
                       "checked: a kubectl export does not say which kinds it was made from "
                       "(an object deleted live looks the same as a kind never exported). "
                       "Use a snapshot written by 'gitops-checker snapshot', or declare the "
                       "exported kinds with --snapshot-kinds")
            severity = Severity.ERROR
        first = group[0]
        return Finding(rule_id=RULE_UNREADABLE, category="drift", severity=severity,
                       message=message, location=first.location, resource=str(ref),
                       cluster=self.options.cluster,
                       details={"kind": str(ref), "objects": len(group),
                                "reason": reason or "not in snapshot"})

    def _modified(self, res: Resource, live: Mapping[str, Any],
                  rules: list[IgnoreRule]) -> list[Finding]:
        want, have = self.normalized(res, live)
        if want == have:
            return []
        out = []
        secret = res.kind in SECRET_KINDS
        for prefix, level in _differences(want, have):
            norm: FieldPath = (*prefix, *level.path(output_format="list"))
            before, after = _show(level.t1), _show(level.t2)
            path, declared = desired_path(res.body, norm)
            # Show values as written (1 rather than "1"; no filled defaults) where they exist.
            if not secret and before is not None and declared:
                before = _show(_value_at(res.body, path))
            live_path, found = desired_path(live, norm)
            if not secret and after is not None and found:
                after = _show(_value_at(live, live_path))
            if secret and norm[:1] == ("data",) and len(norm) > 1:
                plain = res.body.get("stringData")
                if isinstance(plain, Mapping) and norm[1] in plain:
                    path, declared = ("stringData", norm[1]), True
                elif isinstance(plain, Mapping) and not isinstance(res.body.get("data"),
                                                                   Mapping):
                    path = ("stringData",)  # a key only the cluster has: at stringData:
            if any(r.covers([norm, path]) for r in rules):
                continue
            finding = self._field_finding(res, norm, path, declared, before, after, secret)
            if not secret and not declared and before is not None and after is not None:
                # Git does not write this field: its value in Git is the API default
                finding = replace(finding, message=(
                    f"{path_text(norm)} differs: Git does not set it (API default "
                    f"{_short(before)}), cluster {_short(after)}"),
                    details={**finding.details, "gitDefault": True})
            out.append(finding)
        return out

    def _no_longer_in_git(self, res: Resource, live: Mapping[str, Any],
                          rules: list[IgnoreRule], reported: list[Finding]) -> list[Finding]:
        """Fields a configured manager applied, Git no longer declares, and live still has."""
        evidence = applied_fields(live, self.options.field_managers)
        if not evidence:
            return []
        secret = res.kind in SECRET_KINDS
        plain = hash_secret_values(res.body, self.hasher) if secret else res.body
        owners: dict[FieldPath, list[str]] = {}
        for manager, fields in evidence:
            for norm in undeclared(fields, plain, live):
                owners.setdefault(norm, []).append(manager)
        if not owners:
            return []  # the usual case: Git declares everything that was applied
        body = _copy_spec(strip_server_fields(plain))
        apply_defaults(res.kind, body)  # a default the server fills again is no change
        owners = {norm: m for norm, m in owners.items()
                  if not declares(body, norm) and not server_kept(res.kind, norm)
                  and not (norm[:1] == ("rules",) and aggregated(res.kind, body, live))}
        have = live
        seen = {str(f.details.get("field")) for f in reported}
        out = []
        for norm, managers in sorted(owners.items(), key=lambda item: repr(item[0])):
            text = path_text(norm)
            if any(text == s or text.startswith((s + ".", s + "[")) or
                   s.startswith((text + ".", text + "[")) for s in seen):
                continue  # already reported by the comparison
            path, _ = desired_path(res.body, norm)
            if any(r.covers([norm, path]) for r in rules):
                continue
            by = ", ".join(sorted(set(managers)))
            if secret and norm[:1] == ("data",) and len(norm) > 1:
                what, value = f"Secret key {norm[1]!r}", REDACTED
                shown = "still exists in the cluster"
            else:
                value = _show(_value_at_keyed(have, norm))
                what, shown = text, f"is still set in the cluster ({_short(value)})"
            out.append(Finding(
                rule_id=RULE_MODIFIED, category="drift", severity=Severity.ERROR,
                message=f"{what} {shown}, applied by {by}, but Git no longer declares it",
                location=res.locate(path), resource=res.display, field_path=path or norm,
                cluster=self.options.cluster,
                details={"field": text, "change": "not-in-git", "before": None,
                         "after": value, "appliedBy": sorted(set(managers))},
                ref=res.ref.in_cluster(self.options.cluster)))
        return out

    def _field_finding(self, res: Resource, norm: FieldPath, path: FieldPath, declared: bool,
                       before: Any, after: Any, secret: bool) -> Finding:
        text = path_text(norm)
        if secret and norm[:1] in (("data",), ("stringData",)):
            key = norm[1] if len(norm) > 1 else None
            what = f"Secret key {key!r}" if key is not None else "Secret data"
            if before is None:
                message = f"{what} exists in the cluster but not in Git"
            elif after is None:
                message = f"{what} is in Git but missing in the cluster"
            else:
                message = f"{what} has a different value in the cluster (values not shown)"
            before = REDACTED if before is not None else None
            after = REDACTED if after is not None else None
        elif before is None:
            message = f"{text} is set in the cluster ({_short(after)}) but not in Git"
        elif after is None:
            message = f"{text} is declared in Git ({_short(before)}) but absent in the cluster"
        else:
            message = f"{text} differs: Git {_short(before)}, cluster {_short(after)}"
        change = "added" if before is None else "removed" if after is None else "changed"
        return Finding(
            rule_id=RULE_MODIFIED, category="drift", severity=Severity.ERROR,
            message=message, location=res.locate(path), resource=res.display,
            field_path=path if declared else norm, cluster=self.options.cluster,
            details={"field": text, "change": change, "before": before, "after": after},
            ref=res.ref.in_cluster(self.options.cluster),
        )

    def _owners(self, resources: Sequence[Resource]) -> tuple[set[str], set[str]]:
        flux: set[str] = set()
        argo: set[str] = set()
        for res in resources:
            if res.kind == "Kustomization" and res.group == "kustomize.toolkit.fluxcd.io":
                flux.add(f"{res.namespace}/{res.name}")
                self.owner_locations.setdefault(f"Flux Kustomization {res.namespace}/{res.name}",
                                                res.location)
            elif res.kind == "Application" and res.group == "argoproj.io":
                argo.update({res.name, f"{res.namespace}_{res.name}"})
                for app in (res.name, f"{res.namespace}_{res.name}"):
                    self.owner_locations.setdefault(f"Argo CD Application {app}", res.location)
        for owner in self.options.owners:
            (flux if "/" in owner else argo).add(owner)
            if "/" not in owner:
                flux.update(f"{r.namespace}/{owner}" for r in resources if r.name == owner)
        return flux, argo

    def owner(self, obj: Mapping[str, Any], flux: set[str], argo: set[str]) -> str | None:
        """Which GitOps controller entry owns a live object, or None."""
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        refs = meta.get("ownerReferences") or []
        if any(isinstance(r, Mapping) and r.get("controller") for r in refs):
            return None  # created by another object's controller, not applied from Git
        labels = meta.get("labels") if isinstance(meta.get("labels"), Mapping) else {}
        notes = meta.get("annotations") if isinstance(meta.get("annotations"), Mapping) else {}
        assert isinstance(labels, Mapping) and isinstance(notes, Mapping)
        name = labels.get(FLUX_NAME)
        if isinstance(name, str) and name:
            owner = f"{labels.get(FLUX_NAMESPACE, '')}/{name}"
            if not flux or owner in flux:
                return f"Flux Kustomization {owner}"
            return None
        tracking = notes.get(ARGO_TRACKING)
        if isinstance(tracking, str) and ":" in tracking:
            app, _, rest = tracking.partition(":")
            group, kind, namespace, obj_name = ident_of(obj)
            if rest == f"{group}/{kind}:{namespace}/{obj_name}" and (not argo or app in argo):
                return f"Argo CD Application {app}"
            return None
        instance = labels.get(ARGO_INSTANCE)
        if isinstance(instance, str) and instance in argo:
            return f"Argo CD Application {instance}"
        return None

    def _unmanaged(self, resources: Sequence[Resource], desired: set[Ident],
                   result: DriftResult) -> list[Finding]:
        flux, argo = self._owners(resources)
        out = []
        for ident in sorted(self.live.keys() - desired):
            obj = self.live[ident]
            owner = self.owner(obj, flux, argo)
            if owner is None or any(r.whole_object for r in self._rules_for(ident)):
                continue
            if kept_when_not_in_git(obj) is not None:
                continue  # its engine keeps it out of Git on purpose
            result.unmanaged.append(obj)
            display = display_of(ident)
            out.append(Finding(
                rule_id=RULE_UNMANAGED, category="drift", severity=Severity.ERROR,
                message=f"exists in the cluster, owned by {owner}, but is not in Git",
                location=self.owner_locations.get(owner, self.options.entry), resource=display,
                cluster=self.options.cluster, details={"change": "unmanaged", "owner": owner},
                ref=ObjectRef.of(str(obj.get("apiVersion", "")), *ident[1:],
                                 cluster=self.options.cluster)))
        return out


# pkg/controller/serviceaccount/tokens_controller.go (generateTokenIfNeeded): the token
# controller fills these keys into a Secret of this type; Git declares the Secret empty.
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"
TOKEN_SECRET_KEYS = ("token", "ca.crt", "namespace")


def controller_filled(desired: dict[str, Any], actual: dict[str, Any]) -> None:
    """Drop the keys a controller fills into a Secret (and Git leaves out) from the live side."""
    if desired.get("type") != TOKEN_SECRET_TYPE and actual.get("type") != TOKEN_SECRET_TYPE:
        return
    declared: set[str] = set()
    for name in ("data", "stringData"):
        values = desired.get(name)
        if isinstance(values, Mapping):
            declared.update(map(str, values))
    data = actual.get("data")
    if isinstance(data, Mapping):
        kept = {k: v for k, v in data.items() if k in declared or k not in TOKEN_SECRET_KEYS}
        if kept or "data" in desired:
            actual["data"] = kept
        else:
            actual.pop("data")


def compare(resources: Sequence[Resource], snapshot: Snapshot, hasher: SecretHasher,
            options: DriftOptions) -> DriftResult:
    """Compare desired resources with a snapshot (see ``Comparer``)."""
    return Comparer(snapshot, hasher, options).run(resources)
