"""Drift: compare the desired state in Git with a live cluster snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from checker.model import Report, Severity


def run_drift(paths: Sequence[Path], snapshot: Path, root: Path, *,
              packs: Sequence[str] = (), policies: Sequence[Path] = (),
              fail_on: Severity | None = Severity.ERROR, link_base: str = "",
              sarif_category: str = "", policies_ref: str = "") -> Report:
    """Drift of ``paths`` against a snapshot file (the entry point the GitHub Action calls).

    ``policies`` run on the live objects only as they are at ``policies_ref`` (see
    ``checker.drift.trusted``).
    """
    from checker.drift.run import DriftRunOptions
    from checker.drift.run import run_drift as run

    return run(DriftRunOptions(paths=tuple(paths), root=root, snapshot=snapshot,
                               packs=tuple(packs), policies=tuple(policies), fail_on=fail_on,
                               link_base=link_base, sarif_category=sarif_category,
                               policies_ref=policies_ref))
