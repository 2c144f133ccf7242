"""The pipeline: config -> load -> admit -> drift -> accept -> assemble, one Report.

Each stage takes plain data and returns plain data. ``scan``, ``drift`` and the GitHub
Action's modes are configurations of ``run`` (``Stages``): every finding, drift findings
included, passes through the acceptance stage, and the assemble stage decides what limited
formats hold and the exit code (``checker.assemble``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from checker import __version__, accept, fleet
from checker.admit import stage as admit
from checker.assemble import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, assemble, exit_code
from checker.basecache import BaseCache, cache_key
from checker.config import (
    SECURITY_TOWER_DIR,
    Cluster,
    Config,
    Stage,
    load_config,
    selection_findings,
)
from checker.delta import Baseline
from checker.drift import run as drift_run
from checker.drift.ignore import parse_ignore_rules
from checker.drift.rules import DRIFT_RULES
from checker.drift.secrets import SecretHasher
from checker.drift.sources import SnapshotSource
from checker.drift.trusted import refuse_in_pull_request
from checker.errors import CheckerError, ConfigError
from checker.load import LoadResult, load_paths
from checker.load import argocd as argocd_load
from checker.load import flux as flux_load
from checker.load import helm as helm_load
from checker.load.objects import RULE_NOT_CHECKED, input_finding, relpath
from checker.load.yamlfile import run_budget
from checker.model import (
    ClusterPart,
    Coverage,
    Exemption,
    Finding,
    Impact,
    PolicyRecord,
    Report,
    Resource,
    Rule,
    Severity,
    Shard,
    SourceLocation,
)
from checker.options import DriftRunOptions, ScanOptions
from checker.parallel import Limits
from checker.podspec import TEKTON_GROUP, unchecked_workflow_fields
from checker.policy import vap
from checker.policy.evaluate import Evaluator
from checker.policy.exemptions import exemptions as policy_exemptions
from checker.policy.exemptions import policy_records
from checker.policy.model import Policy
from checker.policy.packs import load_catalog
from checker.policy.select import cluster_policies
from checker.rules import (
    RULE_NO_POLICIES,
    RULE_NOTHING_CHECKED,
    RULE_UNTRUSTED_CONFIG,
)
from checker.trust import (
    TrustedPolicies,
    export_tree,
    resolve_base,
    trusted_admission_policies,
    trusted_config,
    trusted_gatekeeper_configs,
    what_if_config,
)

__all__ = ["EXIT_ERROR", "EXIT_FINDINGS", "EXIT_OK", "SCAN", "Baseline", "ScanOptions",
           "Stages", "cluster_policies", "delta", "drift", "evaluate_base", "exit_code",
           "fleet_clusters", "load_cluster", "run", "scan"]


def load_stage(stage: Stage, root: Path, remote_hosts: tuple[str, ...] = ()) -> LoadResult:
    """The objects of one Security Tower stage: its folder, in its target namespace."""
    part = load_paths([stage.path], root, remote_hosts=remote_hosts)
    part.resources = flux_load.apply(part.resources, flux_load.FluxSync(
        path=stage.path, name=f"{stage.application}/{stage.name}",
        target_namespace=stage.namespace))
    part.coverage.append(Coverage(
        "rendered", "securitytower", f"Application {stage.application} stage {stage.name}",
        stage.source.rpartition(":")[0], stage.line, "", len(part.resources)))
    return part


def _add_stages(loaded: LoadResult, cluster: Cluster, root: Path,
                remote_hosts: tuple[str, ...] = ()) -> None:
    """Each stage's folder as the stage deploys it. Plain copies of objects in a stage folder
    (this cluster's or another's) are dropped: the stage decides where they go."""
    staged = [load_stage(s, root, remote_hosts) for s in cluster.stages]
    dirs = [p.resolve() for p in (*(s.path for s in cluster.stages), *cluster.staged_elsewhere)]

    def in_stage(r: Resource) -> bool:
        file = (root / r.location.path).resolve()
        return any(file == d or d in file.parents for d in dirs)

    rendered = [r for part in staged for r in part.resources]
    loaded.resources = argocd_load.without_duplicates(
        [r for r in loaded.resources if not in_stage(r)], rendered)
    for part in staged:
        loaded.extend(part)
    loaded.resources.sort(key=lambda r: (r.location.path, r.location.line, r.key))


def load_cluster(cluster: Cluster, root: Path, helm: helm_load.HelmSettings | None = None,
                 remote_hosts: tuple[str, ...] = ()) -> LoadResult:
    """The desired state of one cluster: its declared paths, then each followed Flux sync.

    A folder a Flux Kustomization syncs is rendered as Flux renders it (its patches, images,
    namespace, substitution...), never as a plain folder of the declared paths; variables of
    ``postBuild.substituteFrom`` come from the ConfigMaps and Secrets loaded for the cluster.
    Flux HelmReleases among the objects are then rendered (``helm`` says which remote chart
    hosts may be contacted; ``remote_hosts`` which remote Kustomize bases may be fetched).
    """
    synced = [s.path for s in cluster.syncs if not s.artifact]
    loaded = load_paths(cluster.declared_paths, root, exclude=synced, remote_hosts=remote_hosts)
    parts = list(zip(cluster.syncs,
                     flux_load.load_syncs(cluster.syncs, root, load_paths, remote_hosts),
                     strict=True))
    every = [*loaded.resources, *(r for _, part in parts for r in part.resources)]
    for sync, part in parts:
        variables = flux_load.variables(sync, every, part)
        part.resources = flux_load.apply(part.resources, sync, variables,
                                         set_namespace=not sync.needs_kustomize)
        loaded.extend(part)
    loaded.findings.extend(cluster.problems)
    loaded.coverage.extend(cluster.coverage)
    if cluster.stages or cluster.staged_elsewhere:
        _add_stages(loaded, cluster, root, remote_hosts)
    argocd_load.follow(loaded, cluster.name, cluster.argocd or argocd_load.ArgoSettings(), root,
                       helm, remote_hosts)
    loaded.resources = [r for r in loaded.resources
                        if not r.location.path.startswith(SECURITY_TOWER_DIR + "/")]
    if cluster.syncs:  # a sync of a parent folder reaches declared files again: once
        unique: dict[tuple[object, ...], Resource] = {}
        for r in loaded.resources:
            body = json.dumps(r.body, sort_keys=True, default=str)
            unique.setdefault((r.location, r.key, body), r)
        loaded.resources = list(unique.values())
    helm_load.expand_releases(loaded, root, helm)
    return loaded


def evaluation_limits(options: ScanOptions, config: Config) -> Limits:
    """The config's ``limits``, with the command line's ``--eval-*`` flags over them."""
    limits = config.limits
    if options.eval_seconds is not None:
        limits = replace(limits, seconds=options.eval_seconds)
    if options.eval_memory is not None:
        limits = replace(limits, memory_mb=options.eval_memory)
    return limits


GROUPINGS = ("cluster", "pack")


def check_group_by(value: str) -> None:
    """``cluster``, ``pack`` or the key of a standard (``bsi-app-4-4``: one group per requirement);
    anything else is ``invalid config`` naming what is known."""
    if value and value not in GROUPINGS:
        catalog = load_catalog()
        if value not in catalog.standards:
            known = ", ".join([*GROUPINGS, *sorted(catalog.standards)])
            raise ConfigError(f"invalid config: unknown grouping {value!r} (known: {known})")


@dataclass(frozen=True)
class Stages:
    """Which stages of the pipeline run; ``scan``, ``drift`` and the Action's modes are these.

    ``admit`` evaluates the desired state against the clusters' policies (``scan``);
    ``drift`` compares it with a live cluster (``drift``); the Action's ``mode: both`` is
    both. ``impact``: with a base ref, when the change alters policy inputs, the admit stage
    runs a second time under the change's own policies, to report (never to gate) which
    objects that would fail or pass. Loading, acceptance and assembly always run.
    """

    admit: bool = True
    drift: DriftRunOptions | None = None
    impact: bool = True  # with a base ref: the policy change's what-if (checker.impact)


SCAN = Stages()
# Where a run with a base ref takes its config and repository policies from (ScanOptions.settings)
SETTINGS = ("base", "head")


@dataclass
class _Run:
    """What the stages hand on: findings, the objects they are about, and the run's facts."""

    findings: list[Finding] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    files: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    rules: dict[str, Rule] = field(default_factory=dict)
    packs: dict[str, None] = field(default_factory=dict)
    coverage: dict[Coverage, None] = field(default_factory=dict)
    engines: dict[str, None] = field(default_factory=dict)  # Rego engines, in first-use order
    seen_input: set[Finding] = field(default_factory=set)
    loads: dict[tuple[object, ...], LoadResult] = field(default_factory=dict)
    checked: int = 0  # objects the admit stage evaluated
    exempt: list[Exemption] = field(default_factory=list)  # namespaces policies skipped
    records: list[PolicyRecord] = field(default_factory=list)  # what ran where, digested
    policies: dict[str, list[Policy]] = field(default_factory=dict)  # per cluster name
    parts: list[ClusterPart] = field(default_factory=list)  # what each cluster added
    selected: fleet.Selection | None = None  # --cluster/--shard: the clusters to check

    def load(self, cluster: Cluster, options: ScanOptions, config: Config) -> LoadResult:
        """The load stage for one cluster; clusters with the same inputs share one load."""
        key = (cluster.declared_paths, cluster.problems, cluster.coverage, tuple(
            (s.path, s.artifact_path, s.spec_key, s.target_namespace,
             tuple(sorted(s.substitute.items()))) for s in cluster.syncs),
            cluster.name if cluster.argocd and cluster.argocd.destinations else "",
            cluster.stages)
        if key not in self.loads:
            self.loads[key] = load_cluster(cluster, options.root, config.helm,
                                           config.remote_hosts)
        loaded = self.loads[key]
        self.files |= loaded.files
        self.coverage.update(dict.fromkeys(loaded.coverage))
        return loaded

    def input_findings(self, loaded: LoadResult, config: Config, cluster: str = "") -> None:
        """The load's own findings (unreadable files, inputs not checked), once per run."""
        for f in loaded.findings:
            if f in self.seen_input:
                continue  # input findings of paths two clusters share: once
            self.seen_input.add(f)
            if f.rule_id == RULE_NOT_CHECKED:
                f = replace(f, severity=config.not_checked)
            self.findings.append(f.in_cluster(cluster) if cluster and not f.cluster else f)


def fleet_clusters(options: ScanOptions) -> tuple[str, ...]:
    """The configured cluster names, in config order, as ``run`` reads them: with
    ``accept_base``, from the config the base ref trusts (what shards select among)."""
    config = load_config(options.root, options.config_file, options.paths)
    if options.accept_base:
        config, _ = trusted_config(config, accept.BaseApproval(options.root, options.accept_base),
                                   options.root, options.config_file, tuple(options.paths))
    return tuple(c.name for c in config.clusters if c.name)


def scan(options: ScanOptions, config: Config | None = None) -> Report:
    """Run a scan (the admit stage, no drift) and return the report; see ``run``. With
    ``options.base``, the scan of the head with its delta against the base (``delta``)."""
    if options.base:
        return delta(options, config=config)
    return run(options, SCAN, config=config)


def _inside_root(path: Path, root: Path, into: Path) -> Path:
    """``path`` of the head's checkout at the same place below ``into`` (a path outside the
    root, a workflow's file, stays as it is)."""
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        return path
    return into.joinpath(*rel.parts)


def base_settings(options: ScanOptions, today: dt.date) -> dict[str, object]:
    """What a base result depends on beyond its tree and the build (its cache key)."""
    root = options.root.resolve()

    def rel(p: Path) -> str:
        try:
            return p.resolve().relative_to(root).as_posix()
        except ValueError:  # a workflow's file outside the repository: by content
            return "outside:" + (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file()
                                 else p.as_posix())

    return {"paths": [rel(p) for p in options.paths], "packs": list(options.packs),
            "policies": [rel(p) for p in options.policies], "operation": options.operation,
            "config": rel(options.config_file) if options.config_file is not None else "",
            "group_by": options.group_by, "today": today.isoformat(),
            "eval": [options.eval_seconds, options.eval_memory]}


def evaluate_base(options: ScanOptions, ref: str | None = None,
                  cache: BaseCache | None = None) -> Baseline:
    """The base of a delta evaluated in full: ``ref`` (default ``options.base``) of the
    repository, read from git objects (``checker.trust.export_tree``, never the working tree),
    run through this same pipeline with the base's own config and policies (which are the
    trusted ones: the head run reads them from the base too), every cluster and every
    referential input. Paths, packs and flags are the head's, mapped onto the base tree.
    Acceptances count as they are at the base (it is their own four-eyes state).

    ``cache``: a result stored under the base's content digest is reused
    (``checker.basecache``); a fresh one is stored. Returns the base's commit and Report.
    """
    ref = ref or options.base
    today = options.today or dt.date.today()
    commit, tree, _ = resolve_base(options.root, ref)
    key = cache_key(tree, base_settings(options, today)) if cache is not None else ""
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return Baseline(commit, hit)
    with tempfile.TemporaryDirectory(prefix="gitops-checker-base-") as tmp:
        into = Path(tmp) / "root"
        export_tree(options.root, commit, into)
        mapped = replace(
            options, root=into, base="", accept_base="", gate="all", cache_dir=None,
            settings="base", today=today,
            paths=tuple(_inside_root(p, options.root, into) for p in options.paths),
            policies=tuple(_inside_root(p, options.root, into) for p in options.policies),
            config_file=(_inside_root(options.config_file, options.root, into)
                         if options.config_file is not None else None))
        try:
            report = run(mapped, SCAN)
        except CheckerError as err:  # a base that cannot run is never a silent pass
            raise type(err)(f"the base {ref} ({commit[:12]}) cannot be evaluated: "
                            f"{_relocated_text(str(err), into, options.root)}") from err
        report = _relocated(report, into, options.root)
    if cache is not None:
        cache.put(key, report)
    return Baseline(commit, report)


def _relocated_text(value: str, into: Path, root: Path) -> str:
    """``value`` with the temporary folder the base was read from written as the head's
    ``root`` (so a message naming a path reads the same on both sides)."""
    prefix = "" if str(root) == "." else str(root) + "/"
    for where in dict.fromkeys((str(into.resolve()), str(into))):
        value = value.replace(where + "/", prefix).replace(where, str(root))
    return value


def _relocated(report: Report, into: Path, root: Path) -> Report:
    """The base report with the temporary folder it was read from taken out of its text."""

    def text(value: str) -> str:
        return _relocated_text(value, into, root)

    return replace(report, errors=tuple(text(e) for e in report.errors),
                   findings=tuple(replace(f, message=text(f.message))
                                  for f in report.findings))


def delta(options: ScanOptions, stages: Stages = SCAN, *, config: Config | None = None,
          environ: Mapping[str, str] | None = None) -> Report:
    """The head's report with its delta against ``options.base`` (``evaluate_base``).

    Both sides run with the trusted settings: the base with its own config and policies, the
    head with the base's (``checker.trust``: ``accept_base`` defaults to the base), so the
    delta is about what the change deploys. Its config and policy changes are findings of
    the head (``input.untrusted-config``), and their effect is the ``impact`` what-if's.
    """
    cache = (BaseCache(options.cache_dir, options.root) if options.cache_dir is not None
             else None)
    today = options.today or dt.date.today()
    baseline = evaluate_base(replace(options, today=today), cache=cache)
    accept_base = options.accept_base or options.base
    if resolve_base(options.root, accept_base)[0] != baseline.commit:
        raise ConfigError(f"invalid config: --accept-base {accept_base} and --base "
                          f"{options.base} are different commits; a delta trusts its base")
    head = replace(options, accept_base=accept_base, today=today)
    return run(head, stages, config=config, environ=environ, baseline=baseline)


def drift(options: DriftRunOptions, *, source: SnapshotSource | None = None,
          hasher: SecretHasher | None = None,
          environ: Mapping[str, str] | None = None) -> Report:
    """Run drift (the drift stage, no admission) and return the report; see ``run``."""
    return run(options.scan_options(), Stages(admit=False, drift=options), source=source,
               hasher=hasher, environ=environ)


@run_budget()  # one alias-expansion budget for every file the run reads
def run(options: ScanOptions, stages: Stages = SCAN, *, config: Config | None = None,
        source: SnapshotSource | None = None, hasher: SecretHasher | None = None,
        environ: Mapping[str, str] | None = None, baseline: Baseline | None = None,
        ) -> Report:
    """The pipeline: config -> load -> admit -> drift -> accept -> assemble, one Report.

    With ``baseline`` (an evaluated base, see ``evaluate_base``) the assemble stage adds the
    delta against it; ``delta`` is the whole scan-with-a-base.

    No I/O beyond reading the inputs (and, for drift, the snapshot: ``source``, else the
    snapshot file or live cluster of ``stages.drift``). The date acceptances expire against
    is read here, once, unless ``options.today`` fixes it. Drift is refused in a pull-request
    job (``environ``, default the process environment).
    """
    if stages.drift is not None:
        refuse_in_pull_request(environ)
    config = config or load_config(options.root, options.config_file, options.paths)
    check_group_by(options.group_by or config.group_by)
    today = options.today or dt.date.today()
    state = _Run()
    approval = (accept.BaseApproval(options.root, options.accept_base)
                if options.accept_base else None)  # four eyes (see accept.apply)
    head_config = config
    changed = False  # whether the change alters what the check does (policies, config)
    if options.settings not in SETTINGS:
        raise ConfigError(f"invalid config: settings {options.settings!r} (expected one of: "
                          f"{', '.join(SETTINGS)})")
    trust = approval is not None and options.settings == "base"
    if approval is not None and trust:
        config, untrusted = trusted_config(config, approval, options.root,
                                           options.config_file, tuple(options.paths))
        state.findings += untrusted
        changed = bool(untrusted)
    configured = tuple(c.name for c in config.clusters if c.name)
    if stages.admit and (options.clusters or options.shard is not None):
        state.selected = fleet.select(configured, options.clusters, options.shard)
    if stages.admit:
        with tempfile.TemporaryDirectory(prefix="gitops-checker-base-policies-") as into:
            trusted = (TrustedPolicies(options.root, approval, Path(into))
                       if approval is not None and trust else None)
            _admit(options, config, state, trusted)
            state.findings += trusted.findings if trusted is not None else []
            changed = changed or bool(trusted is not None and trusted.findings) or any(
                f.rule_id == RULE_UNTRUSTED_CONFIG for f in state.findings)  # a Gatekeeper
            # Config among the manifests that the change edits counts too
    drifted = None
    if stages.drift is not None:
        drifted = _drift(stages.drift, options, config, state, source, hasher)
    # accept: every finding of every stage, against the objects they are about
    acceptances, problems_found = accept.load_acceptances(config.acceptances.paths, options.root)
    report = _accept_and_assemble(options, stages, config, state, drifted, today,
                                  (acceptances, problems_found), approval, baseline)
    if (approval is None or not trust or not stages.admit or not stages.impact
            or not options.what_if):
        return report
    with tempfile.TemporaryDirectory(prefix="gitops-checker-base-acceptances-") as into:
        base_acceptances = _base_acceptances(config, options.root, approval, Path(into))
        head_acceptances = accept.load_acceptances(head_config.acceptances.paths,
                                                   options.root)
        if not changed and base_acceptances[0] == head_acceptances[0]:
            return report  # the change alters no policy input: no what-if to show
        return _what_if(options, report, head_config, config, state, today, approval,
                        base_acceptances, head_acceptances)


Acceptances = tuple[list[accept.Acceptance], list[Finding]]


def _accept_and_assemble(options: ScanOptions, stages: Stages, config: Config, state: _Run,
                         drifted: drift_run.Drift | None, today: dt.date,
                         acceptances: Acceptances,
                         approval: accept.BaseApproval | None,
                         baseline: Baseline | None = None) -> Report:
    """The accept and assemble stages over what the earlier stages handed on (with
    ``baseline``: the delta against it)."""
    ran = frozenset({*(["policy"] if stages.admit else []),
                     *(["drift"] if drifted is not None else [])})
    outcome = accept.apply(state.findings, state.resources, acceptances[0], today,
                           inline=config.acceptances.inline,
                           warn_days=config.acceptances.warn_days, approved=approval,
                           base=approval.base if approval is not None else "", ran=ran)
    findings = [*outcome.findings, *acceptances[1], *outcome.problems]
    configured = tuple(c.name for c in config.clusters if c.name)
    clusters = configured if stages.admit else ()
    selected = state.selected
    group_by = (options.group_by or config.group_by
                or ("cluster" if len(clusters) > 1 else "pack")) if stages.admit else "cluster"
    shard = None
    if selected is not None:  # part of the fleet: what merge needs to add the parts up
        clusters = selected.names
        shard = Shard(clusters=configured, parts=tuple(state.parts),
                      files=tuple(sorted(state.files)),
                      used=tuple(sorted(f"{p}:{n}:{i}" for p, n, i in outcome.used)),
                      index=selected.index, count=selected.count)
    if drifted is not None:
        clusters = tuple(dict.fromkeys((*clusters, drifted.cluster)))
    return assemble(Report(
        findings=tuple(findings),
        rules=state.rules,
        resources_checked=drifted.managed if drifted is not None and not stages.admit
        else state.checked,
        files_checked=len(state.files),
        packs=tuple(state.packs),
        clusters=clusters,
        tool_version=__version__,
        errors=tuple(state.errors),
        link_base=options.link_base,
        sarif_category=options.sarif_category,
        group_by=group_by,
        fail_on=options.fail_on,
        gate=options.gate,
        drift_summary=drifted.summary if drifted is not None else {},
        coverage=tuple(sorted(state.coverage)),
        engines=tuple(state.engines),
        exemptions=tuple(sorted(set(state.exempt))),
        policy_records=tuple(sorted(set(state.records))),
        shard=shard,
    ), baseline)


def _base_acceptances(config: Config, root: Path, approval: accept.BaseApproval,
                      into: Path) -> Acceptances:
    """The acceptance files (of the trusted config's paths) as they are at the base ref."""
    from checker.drift.trusted import export_policies
    from checker.errors import InputError

    copies: list[Path] = []
    base_root: Path | None = None
    for path in config.acceptances.paths:
        try:  # each path is written into one mirror of the repository below ``into``
            base_root, (copy,) = export_policies(root, approval.commit, [path], into)
        except InputError:
            continue  # not on the base ref: the base has no acceptances there
        copies.append(copy)
    if base_root is None:
        return [], []
    return accept.load_acceptances(copies, base_root)


def _what_if(options: ScanOptions, gate: Report, head_config: Config, trusted: Config,
             state: _Run, today: dt.date, approval: accept.BaseApproval,
             base_acceptances: Acceptances, head_acceptances: Acceptances) -> Report:
    """The gate's report with the policy change's impact (``checker.impact``).

    ``before``: the change's manifests as the gate evaluated them (the base ref's policies
    and config), with the base ref's acceptance files. ``after``: the same manifests under
    the change's own config, policy folders and acceptances, in the same sandboxed engines
    and within the base ref's limits and hosts (``trust.what_if_config``). The change's
    policies only report here: the gate's findings and exit code stay the base ref's.
    """
    from checker.errors import CheckerError
    from checker.impact import build
    from checker.rules import RULE_IMPACT_NOT_EVALUATED

    before = _accept_and_assemble(options, SCAN, trusted, state, None, today,
                                  base_acceptances, None)
    after_config = what_if_config(head_config, trusted)
    after_state = _Run(loads=state.loads,  # the same manifests: the loads are shared
                       selected=state.selected)  # a shard's what-if: its clusters
    try:
        _admit(options, after_config, after_state)
    except CheckerError as err:
        problem = (f"the policy-change impact could not be evaluated: the change's config or "
                   f"policies fail ({err}); the check ran with the base ref "
                   f"{approval.base}'s")
        where = SourceLocation(head_config.source or ".")
        finding = Finding(RULE_IMPACT_NOT_EVALUATED, "input", Severity.WARNING, problem, where)
        return assemble(replace(gate, findings=(*gate.findings, finding),
                                impact=Impact(base=approval.base, problems=(problem,))))
    after = _accept_and_assemble(options, SCAN, after_config, after_state, None, today,
                                 head_acceptances, None)
    live, problems = _live_what_if(options, trusted, after_config, state, after_state,
                                   approval)
    impact = build(approval.base, before, after, live)
    kept = {c.name for c in head_config.clusters}  # a cluster the change removes is no policy
    impact = replace(impact, entries=tuple(e for e in impact.entries if e.cluster in kept),
                     changes=tuple(c for c in impact.changes if c.cluster in kept))
    if not problems:
        return replace(gate, impact=impact)
    missing = [Finding(RULE_IMPACT_NOT_EVALUATED, "input", Severity.WARNING, p, where)
               for p, where in problems]
    return assemble(replace(gate, findings=(*gate.findings, *missing), impact=replace(
        impact, problems=(*impact.problems, *(p for p, _ in problems)))))


def _live_what_if(options: ScanOptions, trusted: Config, after_config: Config, state: _Run,
                  after_state: _Run, approval: accept.BaseApproval,
                  ) -> tuple[list[tuple[str, Report, Report]], list[tuple[str, SourceLocation]]]:
    """The what-if on each cluster's live snapshot (``clusters[].snapshot``).

    The snapshot is a file of the repository, read from the base commit (never the change's
    working tree, and never a file from outside the repository: live data that is not in
    the repository must not meet the change's policies, see ``checker.drift.trusted``).
    Secret values are hashed with a key of this run only. Each live object is evaluated as
    Gatekeeper's audit sees it (no mutation, no expansion), by the base's and by the
    change's policies; it is located at its manifest when the cluster declares it, else at
    the snapshot file. What cannot be read is a problem (a finding), never an empty impact.
    """
    import secrets as token

    from checker.drift.sources import FileSource
    from checker.errors import CheckerError

    out: list[tuple[str, Report, Report]] = []
    problems: list[tuple[str, SourceLocation]] = []
    for cluster in trusted.clusters:
        if cluster.snapshot is None:
            continue
        rel = relpath(cluster.snapshot, options.root)
        where = SourceLocation(rel)
        blob = approval.blob(rel)
        if blob is None:
            problems.append((f"cluster {cluster.name}: the snapshot {rel} is not on the base "
                             f"ref {approval.base}: the impact on its live objects is not "
                             "evaluated", where))
            continue
        if cluster.name not in after_state.policies:
            continue  # the change removes the cluster: its desired-state entries say so
        with tempfile.TemporaryDirectory(prefix="gitops-checker-live-") as folder:
            copy = Path(folder) / "snapshot"
            copy.write_bytes(blob)
            try:
                snapshot = FileSource(copy, SecretHasher(token.token_bytes(32), ephemeral=True),
                                      display=rel).read()
            except CheckerError as err:
                problems.append((f"cluster {cluster.name}: the snapshot cannot be read ({err}): "
                                 "the impact on its live objects is not evaluated", where))
                continue
        desired = {r.ref: r for r in state.resources if r.cluster == cluster.name}
        live: list[Resource] = []
        for obj in snapshot.objects:
            meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            assert isinstance(meta, dict)
            made = Resource(api_version=str(obj.get("apiVersion", "")),
                            kind=str(obj.get("kind", "")),
                            namespace=str(meta.get("namespace") or ""),
                            name=str(meta.get("name") or ""), body=obj, location=where,
                            cluster=cluster.name)
            declared = desired.get(made.ref)
            live.append(made if declared is None else replace(
                made, location=declared.location, marks=declared.marks))
        sides = []
        for side, config in ((state, trusted), (after_state, after_config)):
            evaluation = Evaluator(side.policies.get(cluster.name, []),
                                   operation=options.operation,
                                   limits=evaluation_limits(options, config),
                                   prefer_cel=config.cel_templates).run(live)
            sides.append(Report(
                findings=tuple(f.in_cluster(cluster.name) for f in evaluation.findings),
                rules={}, resources_checked=len(live), files_checked=1,
                errors=tuple(evaluation.errors),
                policy_records=tuple(r for r in side.records if r.cluster == cluster.name)))
        out.append((cluster.name, sides[0], sides[1]))
    return out, problems


def _admit(options: ScanOptions, config: Config, state: _Run,
           trusted: TrustedPolicies | None = None) -> None:
    """Load each cluster and evaluate it against its policies (the admit stage); with
    ``trusted``, repository policy folders as they are at the base ref; with
    ``state.selected``, only those clusters (a shard of the fleet), recording what each
    one added."""
    catalog = load_catalog() if (options.packs or any(
        c.packs != ("none",) for c in config.clusters)) else None
    templates, problems_read = admit.load_templates(config.admission, options.root)
    state.findings += problems_read
    for cluster in config.clusters:
        if state.selected is not None and cluster.name not in state.selected.names:
            continue
        errors_before = len(state.errors)
        policies, problems, cluster_packs = cluster_policies(
            options, cluster, catalog, trusted.folder if trusted is not None else None)
        state.errors += problems
        state.findings += selection_findings(cluster, options.packs, len(policies),
                                             config.source)
        state.packs.update(dict.fromkeys(cluster_packs))
        loaded = state.load(cluster, options, config)
        tagged = [r if r.cluster == cluster.name else replace(r, cluster=cluster.name)
                  for r in loaded.resources]
        # admit: mutate -> expand -> validate (checker.admit), as the cluster's Gatekeeper;
        # acceptances read the manifests as written (a mutator cannot add an exclusion)
        admitted = admit.admit(tagged, config.admission, options.operation, templates)
        evaluator = Evaluator(policies, operation=options.operation,
                              limits=evaluation_limits(options, config),
                              prefer_cel=config.cel_templates)
        if trusted is not None:  # a Gatekeeper Config counts as it is on the base ref
            evaluator.gatekeeper_configs, untrusted = trusted_gatekeeper_configs(
                admitted.resources, trusted.approval)
            state.findings += untrusted
        evaluation = evaluator.run(admitted.resources)
        implied = admit.validate_generated(evaluator, admitted.generated, admitted.resources)
        state.findings += admitted.findings + implied.findings
        state.errors += implied.errors
        state.coverage.update(dict.fromkeys(admitted.coverage))
        judged = admitted.resources
        if trusted is not None:  # VAPs and bindings the change edits count as on the base ref
            judged, untrusted = trusted_admission_policies(admitted.resources, trusted.approval)
            state.findings += untrusted
        admission = vap.evaluate(judged, options.operation,
                                 evaluation_limits(options, config))
        state.resources += tagged
        state.checked += len(tagged)
        state.input_findings(loaded, config)
        state.findings += _never_a_pass(cluster, options.root, policies, tagged)
        state.findings += _workflow_gaps(tagged, config.not_checked) if policies else []
        state.findings += evaluation.findings + admission.findings
        state.errors += evaluation.errors + admission.errors
        state.engines.update(dict.fromkeys((*evaluation.engines, *admission.engines)))
        state.rules.update(admission.rules)
        state.rules.update({p.rule.id: p.rule for p in policies})
        state.exempt += policy_exemptions(cluster, policies, tagged)
        state.records += policy_records(cluster.name, policies)
        state.policies[cluster.name] = policies
        state.parts.append(ClusterPart(
            cluster.name, tuple(cluster_packs),
            tuple(dict.fromkeys((*evaluation.engines, *admission.engines))),
            tuple(state.errors[errors_before:]),
            tuple(dict.fromkeys((*admission.rules, *(p.rule.id for p in policies))))))


def _drift(options: DriftRunOptions, scan_options: ScanOptions, config: Config, state: _Run,
           source: SnapshotSource | None, hasher: SecretHasher | None) -> drift_run.Drift:
    """Compare the desired state of PATHS with the snapshot (the drift stage).

    The desired state is loaded as ``scan`` loads it (a scan in the same run shares the
    load), with the config's ``drift.ignore`` rules.
    """
    desired = drift_run.desired_cluster(options.paths, options.root)
    loaded = state.load(desired, scan_options, config)
    ignore = parse_ignore_rules(list(config.drift_ignore), config.source,
                                list(config.drift_ignore_lines)) if config.drift_ignore else []
    drifted = drift_run.compare_live(options, desired, loaded, ignore, source, hasher,
                                      config=config)
    state.input_findings(loaded, config, drifted.cluster)
    state.findings += drifted.findings
    state.resources += drifted.resources
    state.errors += drifted.errors
    state.coverage.update(dict.fromkeys(drifted.coverage))
    state.rules.update({**DRIFT_RULES, **state.rules})
    if not state.packs:
        state.packs.update(dict.fromkeys(drifted.packs))
    return drifted


def _workflow_gaps(resources: list[Resource], severity: Severity) -> list[Finding]:
    """Argo Workflows and Tekton fields that shape pods the policies cannot see, as
    not-checked findings."""
    out: list[Finding] = []
    for res in resources:
        for path, name in unchecked_workflow_fields(res.kind, res.group, res.body):
            message = (
                f"{res.display}: {name} at {'.'.join(map(str, path))} runs a definition that "
                "is fetched when the run starts, not from this repository: the pods it "
                "creates are not policy-checked" if res.group == TEKTON_GROUP else
                f"{res.display}: {name} changes the pods the Argo Workflows controller creates "
                "and is not policy-checked; the pod policies checked the templates without it")
            out.append(Finding(
                RULE_NOT_CHECKED, "input", severity, message,
                res.locate(path), resource=res.display, field_path=path, cluster=res.cluster,
                ref=res.ref))
    return out


def _never_a_pass(cluster: Cluster, root: Path, policies: list[Policy],
                  resources: list[Resource]) -> list[Finding]:
    """A cluster with no policy, or with no object to check, is a finding (an error), so a
    run that evaluated nothing never exits 0."""
    path, line = ".", 1
    if cluster.source:
        where, _, number = cluster.source.rpartition(":")
        path, line = (where, int(number)) if number.isdigit() else (cluster.source, 1)
    elif cluster.declared_paths:
        path = relpath(cluster.declared_paths[0], root)
    label = f"cluster {cluster.name}" if cluster.name else "this run"
    out: list[Finding] = []
    if not policies:
        out.append(replace(input_finding(
            RULE_NO_POLICIES, f"{label} has no policies (an empty policies folder, or no pack "
            "and no policies folder selected): nothing was evaluated", path, line),
            cluster=cluster.name))
    if not resources:
        out.append(replace(input_finding(
            RULE_NOTHING_CHECKED, f"{label} has no Kubernetes objects in its paths: nothing "
            "was checked", path, line), cluster=cluster.name))
    return out
