"""Frozen options for a run, built from the command line (or the GitHub Action inputs)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

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
    outputs: dict[str, Path] = field(default_factory=dict)
    config_file: Path | None = None  # default: <root>/.gitops-checker.yaml if it exists
    today: dt.date | None = None     # the date acceptances expire against (default: today)
    group_by: str = ""               # "cluster", "pack" or "" (from the config / the clusters)
    accept_base: str = ""            # four eyes: acceptances count only as they are at this ref
    eval_seconds: float | None = None  # --eval-seconds (default: the config's limits)
    eval_memory: int | None = None     # --eval-memory MiB (default: the config's limits)
