"""The drift stage: read a snapshot, compare the desired state with it, check policies live.

``checker.pipeline`` loads the desired state (``desired_cluster``) and hands it here
(``compare_live``); what comes back goes through acceptance and assembly like every other
finding. ``DriftRunOptions`` lives in ``checker.options``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from checker.config import Cluster, Config
from checker.drift.compare import DriftOptions, DriftResult, compare
from checker.drift.ignore import IgnoreRule, autoscaler_rules, load_ignore_file
from checker.drift.normalize import apply_defaults, desired_path, keyed_path, path_text
from checker.drift.rules import RULE_MODIFIED, RULE_POLICY, RULE_UNMANAGED
from checker.drift.secrets import SecretHasher
from checker.drift.sources import FileSource, KindRef, Snapshot, SnapshotSource
from checker.drift.trusted import export_policies
from checker.load.flux import follow_all
from checker.load.kustomize import kustomization_file
from checker.load.objects import RULE_NOT_CHECKED, LoadResult, input_finding, relpath
from checker.model import Coverage, Finding, ObjectRef, Resource, Severity, SourceLocation
from checker.options import DriftRunOptions, ScanOptions
from checker.policy.evaluate import Evaluator
from checker.policy.model import Policy
from checker.policy.select import cluster_policies

INTERNAL_POLICY_RULES = frozenset({"policy.evaluation-error", "policy.invalid",
                                   "policy.match-undecided", "policy.template-note",
                                   "policy.not-evaluated"})


@dataclass
class Drift:
    """What the drift stage hands on to acceptance and assembly."""

    cluster: str                                        # the live cluster's name in reports
    findings: list[Finding] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)  # the desired objects, in it
    errors: list[str] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)
    packs: tuple[str, ...] = ()
    managed: int = 0
    summary: dict[str, Any] = field(default_factory=dict)


def entry_location(paths: Sequence[Path], root: Path) -> SourceLocation:
    """Where unmanaged objects without a declared owner are reported: the cluster's entry file.

    That is the first PATH if it is a file, else its kustomization file, else the first YAML
    file below it (sorted, shallowest first); line 1.
    """
    first = paths[0] if paths else Path(".")
    if first.is_dir():
        kfile = kustomization_file(first)
        if kfile is not None:
            return SourceLocation(relpath(kfile, root), 1, 1)
        found = sorted((len(p.relative_to(first).parts), p.as_posix()) for p in first.rglob("*")
                       if p.suffix in (".yaml", ".yml") and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(first).parts))
        if found:
            return SourceLocation(relpath(Path(found[0][1]), root), 1, 1)
    return SourceLocation(relpath(first, root), 1, 1)


def desired_kinds(resources: Sequence[Resource]) -> set[KindRef]:
    """The kinds a snapshot must read completely."""
    return {KindRef(r.group, r.kind) for r in resources}


def policy_drift(policies: Sequence[Policy], desired: Sequence[Resource], result: DriftResult,
                 entry: SourceLocation, cluster: str,
                 ) -> tuple[list[Finding], list[str], list[Finding]]:
    """Violations the live objects have and their manifests do not: changed into a violation.

    Every live object is evaluated in full (also one whose declared fields are all in sync:
    a hand change to a field Git does not declare, a hostPath volume or ``runAsUser: 0``, is
    seen), against its manifest with the API defaults filled in, so a default the server
    fills can never create such a finding. Each finding points at the desired manifest's
    line of the field (its deepest declared parent for a field Git does not declare).
    When the violation is about a field that also drifted, the field's ``drift.modified``
    finding is absorbed (returned third), so one change is reported once, with its before
    and after values. A violation that names a mapping or list (a container that lacks a
    probe) is about something inside it, not about that value having been added or
    removed by hand, so it absorbs nothing. A violation of an unmanaged object is reported
    where its ``drift.unmanaged`` finding is (its owner in Git, else the entry file).
    """
    checked = result.compared or result.drifted
    if not policies or not (checked or result.unmanaged):
        return [], [], []
    pairs = {res.ref.in_cluster(cluster): (res, live) for res, live in checked}
    unmanaged_at = {f.ref: f.location for f in result.findings
                    if f.rule_id == RULE_UNMANAGED and f.ref is not None}
    before_res = [replace(res, body=defaulted(res)) for res, _ in checked]
    live_res = [Resource(api_version=str(live.get("apiVersion", res.api_version)),
                         kind=res.kind, namespace=res.namespace, name=res.name, body=live,
                         location=res.location, marks=res.marks, cluster=cluster)
                for res, live in checked]
    for obj in result.unmanaged:
        meta = obj.get("metadata") or {}
        made = Resource(api_version=str(obj["apiVersion"]), kind=str(obj["kind"]),
                        namespace=str(meta.get("namespace") or ""),
                        name=str(meta.get("name") or ""), body=obj, location=entry,
                        cluster=cluster)
        live_res.append(replace(made, location=unmanaged_at.get(made.ref, entry)))
    evaluator = Evaluator(policies)
    known = list(desired)
    before = evaluator.run(before_res, known=known)
    after = evaluator.run(live_res, known=known)

    def ref_of(f: Finding) -> ObjectRef | None:
        return f.ref.in_cluster(cluster) if f.ref is not None else None

    seen = {(f.rule_id, ref_of(f), f.message) for f in before.findings}
    modified = {(ref_of(f), f.details.get("field")): f for f in result.findings
                if f.rule_id == RULE_MODIFIED}
    out: list[Finding] = []
    absorbed: dict[int, Finding] = {}
    for f in after.findings:
        ref = ref_of(f)
        if f.rule_id in INTERNAL_POLICY_RULES or (f.rule_id, ref, f.message) in seen:
            continue
        details: dict[str, Any] = {"policy": f.rule_id, "change": "policy-violation",
                                   **dict(f.details)}
        location, field_path = f.location, f.field_path
        pair = pairs.get(ref) if ref is not None else None
        if pair is not None and f.field_path:
            res, live = pair
            # The policy names a path in the live object; its list indexes may differ from
            # the manifest's (a container inserted by hand), so go through the keys.
            norm = keyed_path(live, f.field_path)
            path, _ = desired_path(res.body, norm)
            location, field_path = res.locate(path), path
            drifted = modified.get((ref, path_text(norm)))
            if drifted is not None and not isinstance(_value_at(live, f.field_path),
                                                      (Mapping, list)):
                # several policies may object to one changed field: each carries the change
                absorbed[id(drifted)] = drifted
                details.update({k: drifted.details[k] for k in ("field", "before", "after")})
                location, field_path = drifted.location, drifted.field_path
        out.append(Finding(
            rule_id=RULE_POLICY, category="drift", severity=f.severity,
            message=f"changed by hand into a violation of {f.rule_id}: {f.message}",
            location=location, resource=f.resource, field_path=field_path,
            controls=f.controls, pack=f.pack, cluster=cluster, details=details, ref=ref))
    return (out, list(dict.fromkeys([*before.errors, *after.errors])),
            list(absorbed.values()))


def defaulted(res: Resource) -> dict[str, Any]:
    """A manifest's body with the API defaults the server fills (``normalize.apply_defaults``)."""
    import json

    body: dict[str, Any] = json.loads(json.dumps(res.body, default=str))
    apply_defaults(res.kind, body)
    return body


def _value_at(body: Any, path: Sequence[str | int]) -> Any:
    """The value at a field path of a plain object, or None where the path does not exist."""
    node = body
    for part in path:
        found = (part in node if isinstance(node, Mapping) else
                 isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
        if not found:
            return None
        node = node[part]
    return node


def desired_cluster(paths: Sequence[Path], root: Path) -> Cluster:
    """PATHS as one unnamed cluster, Flux Kustomizations among them followed.

    Loaded with ``pipeline.load_cluster``, the desired state is exactly what ``scan`` sees:
    each followed sync with its ``targetNamespace`` and ``postBuild`` substitutions applied.
    """
    declared = list(paths) or [root]
    followed = follow_all(declared, root)
    syncs = followed.syncs
    return Cluster(name="", environment="",
                   paths=tuple(dict.fromkeys([*declared, *(s.path for s in syncs
                                                           if not s.artifact)])),
                   packs=(), policies=(), syncs=tuple(syncs), problems=tuple(followed.findings),
                   coverage=tuple(followed.coverage))


def field_managers(options: DriftRunOptions, configured: tuple[str, ...] | None,
                   ) -> tuple[str, ...]:
    """The managers whose applied fields count: the options, else the trusted config's
    ``drift.fieldManagers`` (``configured``), else the defaults."""
    from checker.drift.applied import DEFAULT_FIELD_MANAGERS

    if options.field_managers is not None:
        return options.field_managers
    return DEFAULT_FIELD_MANAGERS if configured is None else configured


def compare_live(options: DriftRunOptions, desired: Cluster, loaded: LoadResult,
                 ignore: Sequence[IgnoreRule], source: SnapshotSource | None = None,
                 hasher: SecretHasher | None = None, *, config: Config | None = None) -> Drift:
    """Read the snapshot (``source``, else the file or live cluster of the options), compare
    the loaded desired state with it, and evaluate the trusted policies on what drifted.

    ``ignore`` are the repository config's ``drift.ignore`` rules; the options' rules, the
    ignore file's and the autoscaler rules are added here. ``config`` is the trusted config
    (``checker.trust``: the base ref's in a pull request), whose ``drift.fieldManagers`` and
    ``drift.fieldTypes`` apply; nothing here reads the config file again. Only trusted
    policies run on live objects: the packs, and the ``policies`` folders as they are at
    ``policies_ref``; without a ref those folders are not run, and a finding says so.
    """
    hasher = hasher or SecretHasher.from_env()
    rules = [*options.ignore, *ignore]
    if options.ignore_file is not None:
        rules += load_ignore_file(options.ignore_file)
    rules += autoscaler_rules(loaded.resources)
    if source is None:
        if options.snapshot is None:
            from checker.drift.live import LiveSource, context_name, load_configuration

            cfg = load_configuration(options.kubeconfig, options.context, options.in_cluster)
            source = LiveSource(cfg, desired_kinds(loaded.resources), hasher,
                                context=context_name(options.kubeconfig, options.context,
                                                     options.in_cluster),
                                deadline=options.live_deadline)
        else:
            source = FileSource(options.snapshot, hasher,
                                display=relpath(options.snapshot, options.root)
                                if options.snapshot.exists() else str(options.snapshot),
                                kinds=options.snapshot_kinds)
    snapshot: Snapshot = source.read()
    cluster = (options.cluster or options.context or snapshot.context
               or (options.snapshot.stem if options.snapshot is not None else "") or "cluster")
    entry = entry_location(options.paths, options.root)
    result = compare(loaded.resources, snapshot, hasher, DriftOptions(
        entry=entry, cluster=cluster, ignore=tuple(rules), owners=options.owners,
        default_namespace=options.default_namespace,
        field_managers=field_managers(options, config.drift_field_managers if config else None),
        field_types=config.drift_field_types if config is not None else {}))
    out = Drift(cluster=cluster, managed=result.managed)
    with tempfile.TemporaryDirectory(prefix="gitops-checker-policies-") as tmp:
        policies, errors, out.packs = trusted_policies(options, desired, out, Path(tmp))
        violations, eval_errors, absorbed = policy_drift(policies, loaded.resources, result,
                                                         entry, cluster)
    kept = [f for f in result.findings if not any(f is a for a in absorbed)]
    out.findings = [f.in_cluster(cluster) for f in (*out.findings, *kept, *violations)]
    out.resources = [r if r.cluster == cluster else replace(r, cluster=cluster)
                     for r in loaded.resources]
    out.errors = list(dict.fromkeys([*errors, *eval_errors]))
    out.summary = {"managed": result.managed, "inSync": result.in_sync,
                   "notCompared": result.not_compared,
                   "coverage": round(result.coverage * 100, 1),
                   "unreadable": sorted(f"{u.ref}: {u.reason}" for u in set(snapshot.unreadable)),
                   "notSearched": sorted(str(u.ref) for u in set(snapshot.not_searched)),
                   "secretValuesCompared": snapshot.key_id == hasher.key_id}
    return out


def trusted_policies(options: DriftRunOptions, desired: Cluster, out: Drift,
                     tmp: Path) -> tuple[list[Policy], list[str], tuple[str, ...]]:
    """The policies that may run on live objects: packs, and the folders at the trusted ref.

    Folders given without ``policies_ref`` come from the working tree, which a pull request
    controls: they are not run, and each is a not-checked finding (an error: the check asked
    for was not made) that names the way out.
    """
    root, folders = options.root, options.policies
    if folders and options.policies_ref:
        root, folders = export_policies(options.root, options.policies_ref, folders, tmp)
    elif folders:
        for folder in folders:
            what, rel = (f"policy folder {relpath(folder, options.root)} on live objects",
                         relpath(folder, options.root))
            reason = ("repository policies run on live objects only from a trusted ref: the "
                      "working tree may hold a pull request's policies, which could copy live "
                      "data into the report. Give --policies-ref REF (the default branch; the "
                      "Action's policies-ref input); the packs still ran")
            out.coverage.append(Coverage("not-checked", "policies", what, rel, 1, reason))
            out.findings.append(input_finding(RULE_NOT_CHECKED, f"{what} was not checked: "
                                              f"{reason}", rel, 1, severity=Severity.ERROR))
        folders = ()
    return cluster_policies(ScanOptions(paths=options.paths, root=root, packs=options.packs,
                                        policies=folders), desired, None)
