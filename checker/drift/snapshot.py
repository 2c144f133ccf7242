"""``snapshot``: read a live cluster, read-only, for the kinds the manifests in Git declare.

Only list requests (and discovery) are made, and only outside a pull-request job. Secret
values are replaced by keyed hashes (``checker.drift.secrets``) before anything leaves the
reader, so the snapshot written from the result holds no Secret value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from checker.drift.live import LiveSource, context_name, load_configuration
from checker.drift.run import desired_kinds
from checker.drift.secrets import SecretHasher
from checker.drift.sources import KindRef, Snapshot
from checker.drift.trusted import refuse_in_pull_request
from checker.load import load_paths


@dataclass(frozen=True)
class SnapshotOptions:
    """Everything ``snapshot`` needs; the command only parses flags into this."""

    paths: tuple[Path, ...]
    root: Path
    kinds: tuple[KindRef, ...] = ()     # read too, whether or not Git has them
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    page_size: int = 500
    sweep: bool = True                  # look for GitOps-owned objects of kinds absent from Git
    deadline: float = 600.0             # seconds for the whole read


@dataclass(frozen=True)
class SnapshotResult:
    """What was read, and whether Secrets were hashed with a one-time key (not comparable)."""

    snapshot: Snapshot
    ephemeral_key: bool


def take_snapshot(options: SnapshotOptions) -> SnapshotResult:
    """Read the live cluster for the kinds of the manifests in ``options.paths`` (raises a
    CheckerError when refused or when the cluster cannot be reached)."""
    refuse_in_pull_request()
    loaded = load_paths(options.paths or (Path("."),), options.root)
    wanted = desired_kinds(loaded.resources) | set(options.kinds)
    hasher = SecretHasher.from_env()
    cfg = load_configuration(options.kubeconfig, options.context, options.in_cluster)
    name = context_name(options.kubeconfig, options.context, options.in_cluster)
    source = LiveSource(cfg, wanted, hasher, context=name, page_size=options.page_size,
                        sweep=options.sweep, deadline=options.deadline)
    return SnapshotResult(source.read(), hasher.ephemeral)
