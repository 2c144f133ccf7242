"""Which policies a cluster runs: its packs and overrides, its policy folders, the flags."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from checker.config import Cluster
from checker.errors import ConfigError
from checker.options import ScanOptions
from checker.policy.model import Policy
from checker.policy.packs import (
    DEFAULT_PACKS,
    Catalog,
    default_overrides,
    load_catalog,
    load_repository_policies,
    pack_policies,
)


def cluster_policies(options: ScanOptions, cluster: Cluster, catalog: Catalog | None,
                     trusted: Callable[[Path], tuple[Path, Path]] | None = None,
                     ) -> tuple[list[Policy], list[str], tuple[str, ...]]:
    """Policies of one cluster: its packs and overrides, its policy folders, plus the flags.

    ``--pack`` replaces the cluster's packs; ``--policies`` adds to its folders. ``trusted``
    gives the (root, folder) a folder's policies are read from (the base ref's copy, see
    ``checker.trust.TrustedPolicies``); without it they are read from the working tree.
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
            policies += pack_policies(catalog or load_catalog(), packs, overrides,
                                      cluster.excluded_namespaces)
        except ConfigError as err:
            where = f"{cluster.source}: " if cluster.source else ""
            raise ConfigError(f"{where}{err}") from err
    for folder in dict.fromkeys([*cluster.policies, *options.policies]):
        root, source = trusted(folder) if trusted is not None else (options.root, folder)
        found, problems = load_repository_policies(source, root)
        policies += found
        errors += problems
    return policies, errors, packs
