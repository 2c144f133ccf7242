"""Frozen options for a run, built from the command line (or the GitHub Action inputs).

``ScanOptions`` says what to load and check and how to report it; ``DriftRunOptions`` what to
compare the desired state with. Which stages run is ``checker.pipeline.Stages``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from checker.drift.ignore import IgnoreRule
from checker.drift.sources import KindRef
from checker.model import Severity

# The thresholds of --fail-on (and the Action's fail-on input); "never" disables it.
FAIL_ON = ("error", "warning", "note", "never")


def parse_fail_on(value: str) -> Severity | None:
    """A ``FAIL_ON`` word as a threshold; ``never`` is None (no severity fails)."""
    return None if value == "never" else Severity.parse(value)


@dataclass(frozen=True)
class ScanOptions:
    """Everything ``scan`` needs; the CLI only parses flags into this."""

    paths: tuple[Path, ...]
    root: Path
    packs: tuple[str, ...] = ()
    policies: tuple[Path, ...] = ()
    fail_on: Severity | None = Severity.ERROR
    link_base: str = ""
    sarif_category: str = ""
    operation: str = "CREATE"
    config_file: Path | None = None  # default: <root>/.gitops-checker.yaml if it exists
    today: dt.date | None = None     # the date acceptances expire against (default: today)
    group_by: str = ""               # "cluster", "pack" or "" (from the config / the clusters)
    accept_base: str = ""            # four eyes: acceptances count only as they are at this ref
    eval_seconds: float | None = None  # --eval-seconds (default: the config's limits)
    eval_memory: int | None = None     # --eval-memory MiB (default: the config's limits)
    what_if: bool = True  # with accept_base: the policy change's impact (checker.impact)
    base: str = ""                   # --base: the delta against this ref (checker.pipeline.delta)
    gate: str = "all"                # --gate: the exit code weighs "all" findings or the "new"
    cache_dir: Path | None = None    # --cache-dir: base results by content digest
    # with accept_base: config and repository policies as they are at it ("base", trusted),
    # or the change's own ("head": the what-if of a policy change; acceptances keep four eyes)
    settings: str = "base"
    clusters: tuple[str, ...] = ()   # --cluster NAME: check only these configured clusters
    shard: tuple[int, int] | None = None  # --shard I/N: the I-th of N shards of the clusters


@dataclass(frozen=True)
class DriftRunOptions:
    """Everything the drift stage needs; the CLI only parses flags into this."""

    paths: tuple[Path, ...]
    root: Path
    snapshot: Path | None = None
    snapshot_kinds: tuple[KindRef, ...] = ()  # kinds a kubectl export was made from
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    policies_ref: str = ""  # the trusted ref whose --policies folders run on live objects
    live_deadline: float = 600.0  # seconds for the whole live read
    cluster: str = ""
    ignore_file: Path | None = None
    ignore: tuple[IgnoreRule, ...] = ()
    owners: tuple[str, ...] = ()
    packs: tuple[str, ...] = ()
    policies: tuple[Path, ...] = ()
    fail_on: Severity | None = Severity.ERROR
    link_base: str = ""
    sarif_category: str = ""
    default_namespace: str = "default"
    field_managers: tuple[str, ...] | None = None  # None: drift.fieldManagers, else defaults

    def scan_options(self) -> ScanOptions:
        """The ScanOptions of a drift-only run: the same paths, root and report settings."""
        return ScanOptions(paths=self.paths, root=self.root, packs=self.packs,
                           policies=self.policies, fail_on=self.fail_on,
                           link_base=self.link_base, sarif_category=self.sarif_category)
