"""The scan pipeline: load -> evaluate -> report. Plain data in, plain data out."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from checker import __version__, accept
from checker.admit import stage as admit
from checker.config import (
    SECURITY_TOWER_DIR,
    Cluster,
    Config,
    Stage,
    load_config,
    selection_findings,
)
from checker.errors import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, ConfigError
from checker.load import LoadResult, load_paths
from checker.load import argocd as argocd_load
from checker.load import flux as flux_load
from checker.load import helm as helm_load
from checker.load.objects import RULE_NOT_CHECKED, input_finding, relpath
from checker.model import (
    Coverage,
    Finding,
    Report,
    Resource,
    Rule,
    Severity,
)
from checker.options import ScanOptions
from checker.parallel import Limits
from checker.policy import vap
from checker.policy.evaluate import Evaluator
from checker.policy.model import Policy
from checker.policy.packs import (
    DEFAULT_PACKS,
    Catalog,
    default_overrides,
    load_catalog,
    load_repository_policies,
    pack_policies,
)
from checker.rules import (
    BUILTIN_RULES,
    RULE_NO_POLICIES,
    RULE_NOTHING_CHECKED,
)
from checker.trust import trusted_config


def cluster_policies(options: ScanOptions, cluster: Cluster, catalog: Catalog | None,
                     ) -> tuple[list[Policy], list[str], tuple[str, ...]]:
    """Policies of one cluster: its packs and overrides, its policy folders, plus the flags.

    ``--pack`` replaces the cluster's packs; ``--policies`` adds to its folders.
    """
    packs = options.packs or cluster.packs or DEFAULT_PACKS
    packs = tuple(p for p in packs if p != "none")
    overrides: Mapping[str, Mapping[str, Any]] = cluster.overrides
    if not (options.packs or cluster.packs):
        catalog = catalog or load_catalog()
        overrides = default_overrides(catalog, cluster.overrides)
    if cluster.overrides:
        catalog = catalog or load_catalog()
        for pid in sorted(cluster.overrides):
            if pid not in catalog.policies:
                where = cluster.override_sources.get(pid) or cluster.source
                raise ConfigError(f"{where}: invalid config: unknown policy id {pid!r} in "
                                  f"overrides (known: {', '.join(sorted(catalog.policies))})")
    policies: list[Policy] = []
    errors: list[str] = []
    if packs:
        try:
            policies += pack_policies(catalog or load_catalog(), packs, overrides)
        except ConfigError as err:
            where = f"{cluster.source}: " if cluster.source else ""
            raise ConfigError(f"{where}{err}") from err
    for folder in dict.fromkeys([*cluster.policies, *options.policies]):
        found, problems = load_repository_policies(folder, options.root)
        policies += found
        errors += problems
    return policies, errors, packs


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


def scan(options: ScanOptions, config: Config | None = None) -> Report:
    """Run a scan and return the report (no I/O beyond reading the inputs).

    config -> load -> evaluate (per cluster) -> accept -> Report. The date acceptances expire
    against is read here, once, unless ``options.today`` fixes it.
    """
    config = config or load_config(options.root, options.config_file, options.paths)
    check_group_by(options.group_by or config.group_by)
    today = options.today or dt.date.today()
    catalog = load_catalog() if (options.packs or any(
        c.packs != ("none",) for c in config.clusters)) else None
    findings: list[Finding] = []
    resources: list[Resource] = []
    files: set[str] = set()
    errors: list[str] = []
    rules: dict[str, Rule] = {}
    packs: dict[str, None] = {}
    loads: dict[tuple[object, ...], LoadResult] = {}
    coverage: dict[Coverage, None] = {}
    engines: dict[str, None] = {}  # Rego engines that evaluated, in first-use order
    seen_input: set[Finding] = set()
    approval = (accept.BaseApproval(options.root, options.accept_base)
                if options.accept_base else None)  # four eyes (see accept.apply)
    if approval is not None:
        config, untrusted = trusted_config(config, approval, options.root,
                                           options.config_file, tuple(options.paths))
        findings += untrusted
    templates, problems_read = admit.load_templates(config.admission, options.root)
    findings += problems_read
    for cluster in config.clusters:
        policies, problems, cluster_packs = cluster_policies(options, cluster, catalog)
        errors += problems
        findings += selection_findings(cluster, options.packs, len(policies), config.source)
        packs.update(dict.fromkeys(cluster_packs))
        cache_key = (cluster.declared_paths, cluster.problems, cluster.coverage, tuple(
            (s.path, s.artifact_path, s.spec_key, s.target_namespace,
             tuple(sorted(s.substitute.items()))) for s in cluster.syncs),
            cluster.name if cluster.argocd and cluster.argocd.destinations else "",
            cluster.stages)
        if cache_key not in loads:
            loads[cache_key] = load_cluster(cluster, options.root, config.helm,
                                            config.remote_hosts)
        loaded = loads[cache_key]
        files |= loaded.files
        coverage.update(dict.fromkeys(loaded.coverage))
        tagged = [r if r.cluster == cluster.name else replace(r, cluster=cluster.name)
                  for r in loaded.resources]
        # admit: mutate -> expand -> validate (checker.admit), as the cluster's Gatekeeper;
        # acceptances read the manifests as written (a mutator cannot add an exclusion)
        admitted = admit.admit(tagged, config.admission, options.operation, templates)
        evaluator = Evaluator(policies, operation=options.operation,
                              limits=evaluation_limits(options, config),
                              prefer_cel=config.cel_templates)
        evaluation = evaluator.run(admitted.resources)
        implied = admit.validate_generated(evaluator, admitted.generated, admitted.resources)
        findings += admitted.findings + implied.findings
        errors += implied.errors
        coverage.update(dict.fromkeys(admitted.coverage))
        admission = vap.evaluate(admitted.resources, options.operation,
                                 evaluation_limits(options, config))
        resources += tagged
        findings += [f if f.rule_id != RULE_NOT_CHECKED else replace(f, severity=config.not_checked)
                     for f in loaded.findings if f not in seen_input]
        seen_input.update(loaded.findings)  # input findings of shared paths, once
        findings += _never_a_pass(cluster, options.root, policies, tagged)
        findings += evaluation.findings + admission.findings
        errors += evaluation.errors + admission.errors
        engines.update(dict.fromkeys((*evaluation.engines, *admission.engines)))
        rules.update(admission.rules)
        rules.update({p.rule.id: p.rule for p in policies})
    acceptances, problems_found = accept.load_acceptances(config.acceptances.paths, options.root)
    outcome = accept.apply(findings, resources, acceptances, today,
                           inline=config.acceptances.inline,
                           warn_days=config.acceptances.warn_days, approved=approval,
                           base=options.accept_base)
    findings = [*outcome.findings, *problems_found, *outcome.problems]
    for f in findings:
        if f.rule_id not in rules and f.rule_id in BUILTIN_RULES:
            rules[f.rule_id] = BUILTIN_RULES[f.rule_id]
    clusters = tuple(c.name for c in config.clusters if c.name)
    group_by = options.group_by or config.group_by or ("cluster" if len(clusters) > 1
                                                       else "pack")
    return Report(
        findings=tuple(sorted(findings, key=Finding.sort_key)),
        rules=dict(sorted(rules.items())),
        resources_checked=len(resources),
        files_checked=len(files),
        packs=tuple(packs),
        clusters=clusters,
        tool_version=__version__,
        errors=tuple(dict.fromkeys(errors)),
        link_base=options.link_base,
        sarif_category=options.sarif_category,
        group_by=group_by,
        fail_on=options.fail_on,
        coverage=tuple(sorted(coverage)),
        engines=tuple(engines),
    )


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


def exit_code(report: Report, fail_on: Severity | None) -> int:
    """0: nothing at or above the threshold; 1: findings; 2: configuration or tool errors.

    A file that could not be read is never a pass, whatever the threshold.
    """
    if report.errors:
        return EXIT_ERROR
    for f in report.active:
        if f.category == "input" and f.severity is Severity.ERROR:
            return EXIT_FINDINGS
        if fail_on is not None and f.severity >= fail_on:
            return EXIT_FINDINGS
    return EXIT_OK
