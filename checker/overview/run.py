"""Run the image inventory: load each cluster's manifests, read snapshots, ask registries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from checker import __version__, securitytower
from checker.config import stage_order
from checker.errors import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from checker.load import load_paths
from checker.model import Finding, Report, Resource, Rule, Severity
from checker.overview.images import (
    SEVERITY,
    ImageUse,
    Inventory,
    LiveIndex,
    analyse,
    collect,
    findings,
    live_image,
    read_snapshot,
)
from checker.overview.registry import (
    Credentials,
    RegistryClient,
    RegistryError,
    registry_host,
)
from checker.overview.scope import Scope
from checker.rules import BUILTIN_RULES


@dataclass(frozen=True)
class ImageOptions:
    """Everything ``images`` needs; the CLI only parses flags into this."""

    scopes: tuple[Scope, ...]
    root: Path
    snapshots: Mapping[str, Path] = field(default_factory=dict)
    allowlist: tuple[str, ...] = ()
    registries: tuple[str, ...] = ()
    credentials: Credentials = field(default_factory=Credentials)


def inventory(options: ImageOptions, client: RegistryClient | None = None) -> Inventory:
    """Build the inventory of every scope; problems are collected, never raised."""
    uses: list[ImageUse] = []
    input_findings: list[Finding] = []
    trusted: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {}
    errors: list[str] = []
    for scope in options.scopes:
        if scope.cluster is not None:
            from checker.pipeline import load_cluster

            loaded = load_cluster(scope.cluster, options.root)
        else:
            loaded = load_paths(scope.paths, options.root)
        input_findings += [replace(f, cluster=scope.name) for f in loaded.findings]
        for res in loaded.resources:  # Security Tower namespace image allowlists
            if res.kind == "Namespace" and res.group == "":
                listed = securitytower.namespace_allowlist(res.body)
                if listed is not None:
                    trusted[(scope.name, res.name)] = listed
        found = [use for env, group in _by_stage(loaded.resources, scope, options.root)
                 for use in collect(group, scope.name, env)]
        snapshot = options.snapshots.get(scope.name)
        if snapshot is not None:
            if not snapshot.is_file():
                errors.append(f"snapshot file does not exist: {snapshot}")
                live: list[Resource] = []
            else:
                live, problems = read_snapshot(snapshot, options.root)
                input_findings += [replace(f, cluster=scope.name) for f in problems]
            index = LiveIndex(live)
            found = [replace(u, live=live_image(u, index)) for u in found]
        uses += found
    tags: dict[str, tuple[str, ...]] = {}
    wanted = {registry_host(r): r for r in options.registries}
    if wanted:
        client = client or RegistryClient(options.credentials)
        for name in sorted({u.image.name for u in uses if u.image.registry in wanted}):
            registry, _, repository = name.partition("/")
            try:
                tags[name] = tuple(client.tags(wanted[registry], repository))
            except RegistryError as err:
                errors.append(str(err))
    promotion = stage_order([s.cluster for s in options.scopes if s.cluster is not None])
    staged = sorted(promotion, key=lambda name: (len(promotion[name]), name))
    environments = tuple(dict.fromkeys([
        *(s.environment for s in options.scopes
          if s.cluster is None or not s.cluster.stages or s.environment),
        *staged]))
    return analyse(
        uses, environments=environments, clusters=tuple(s.name for s in options.scopes),
        allowlist=options.allowlist, registry_tags=tags, input_findings=input_findings,
        errors=errors, snapshot=bool(options.snapshots), promotion=promotion,
        namespace_allowlists=trusted,
    )


def _by_stage(resources: list[Resource], scope: Scope,
              root: Path) -> list[tuple[str, list[Resource]]]:
    """A cluster's objects by environment: Security Tower stages are environments of their
    own (the stage's name); everything else is the scope's environment."""
    cluster = scope.cluster
    if cluster is None or not cluster.stages:
        return [(scope.environment, resources)]
    from checker.pipeline import load_stage

    stage_of: dict[tuple[str, object], str] = {}
    for stage in cluster.stages:
        for res in load_stage(stage, root).resources:
            stage_of.setdefault((res.key, res.location), stage.name)
    groups: dict[str, list[Resource]] = {}
    for res in resources:
        env = stage_of.get((res.key, res.location), scope.environment)
        groups.setdefault(env, []).append(res)
    return list(groups.items())


def inventory_report(inv: Inventory, files_checked: int = 0) -> Report:
    """The inventory's flags as a findings Report, for the SARIF and JUnit renderers."""
    found = findings(inv)
    rules: dict[str, Rule] = {}
    for f in found:
        if f.rule_id in BUILTIN_RULES:
            rules[f.rule_id] = BUILTIN_RULES[f.rule_id]
        elif f.rule_id in SEVERITY:  # pragma: no cover - every image rule is registered
            rules[f.rule_id] = Rule(f.rule_id, f.rule_id, SEVERITY[f.rule_id])
    return Report(
        findings=tuple(found), rules=dict(sorted(rules.items())),
        resources_checked=len({(u.cluster, u.kind, u.namespace, u.name) for u in inv.uses}),
        files_checked=files_checked or len({u.location.path for u in inv.uses}),
        clusters=tuple(c for c in inv.clusters if c), tool_version=__version__,
        errors=inv.errors,
    )


def exit_code(inv: Inventory, fail_on: Severity | None) -> int:
    """2 on a tool error (a registry or snapshot that could not be read); 1 when a manifest
    could not be read or an image is flagged at or above ``fail_on``; else 0."""
    if inv.errors:
        return EXIT_ERROR
    if any(f.category == "input" and f.severity is Severity.ERROR for f in inv.input_findings):
        return EXIT_FINDINGS
    if fail_on is not None and any(f.severity >= fail_on for f in findings(inv)):
        return EXIT_FINDINGS
    return EXIT_OK
