"""The delta against a base: which findings a change introduces, keeps and fixes.

Pure data in, data out. The base and the head are each evaluated in full by the same
pipeline (every cluster, every referential input: a NetworkPolicy in another folder still
counts); this module only pairs their findings by ``Finding.identity`` (rule, cluster,
object, field path, message without positions; never a line number), so a finding that
merely moved is ``unchanged``.

One identity may occur several times on one side (the same object reached twice): the
pairing counts, so two head findings against one base finding give one ``unchanged`` and
one ``new``. The earliest findings in report order are paired first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from checker.model import ABSENT, NEW, UNCHANGED, Finding, Report

__all__ = ["GATES", "Baseline", "classify", "gated", "mark", "newness_rank", "with_baseline"]

# What --gate counts toward the exit code: every active finding, or the new ones only.
GATES = ("all", "new")


@dataclass(frozen=True)
class Baseline:
    """The evaluated base of a delta: its commit and its full Report."""

    commit: str
    report: Report


def with_baseline(finding: Finding, state: str) -> Finding:
    """``replace(finding, baseline=state)`` without running the constructor again: a delta
    marks every finding of both sides (tens of thousands), and the copy is all it needs."""
    new = object.__new__(Finding)
    new.__dict__.update(finding.__dict__)
    new.__dict__["baseline"] = state
    return new


def newness_rank(finding: Finding) -> int:
    """0 for a new finding (or any finding when no base ran), 1 for an unchanged one: the
    first key of the report order, so every format leads with what the change brings."""
    return 1 if finding.baseline == UNCHANGED else 0


def gated(report: Report, gate: str) -> tuple[Finding, ...]:
    """The active findings the exit code weighs under ``gate`` (``new``: without a base
    every finding is new)."""
    return report.new if gate == "new" else report.active


def mark(head: Iterable[Finding], base: Iterable[Finding],
         ) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    """(head findings each marked ``new`` or ``unchanged``, base findings the head lacks
    marked ``absent``), both in their given order."""
    head_items, base_items = list(head), list(base)
    head_keys = [f.identity for f in head_items]
    base_keys = [f.identity for f in base_items]
    in_base, in_head = Counter(base_keys), Counter(head_keys)
    marked, fixed = [], []
    paired: Counter[tuple[str, ...]] = Counter()
    for f, key in zip(head_items, head_keys, strict=True):
        paired[key] += 1
        marked.append(with_baseline(f, UNCHANGED if paired[key] <= in_base[key] else NEW))
    paired.clear()
    for f, key in zip(base_items, base_keys, strict=True):
        paired[key] += 1
        if paired[key] > in_head[key]:
            fixed.append(with_baseline(f, ABSENT))
    return tuple(marked), tuple(fixed)


def classify(head: Report, base: Report, base_name: str) -> Report:
    """The head's report with the delta against ``base`` (``base_name``: its commit).

    Findings accepted on one side and not the other still pair: newness is about the
    finding, acceptance about whether it counts. The base's tool errors become the head's
    (prefixed ``base <commit>:``): a base that could not be evaluated in full could make a
    finding look unchanged or fixed, so the run ends with exit code 2, never a pass.
    """
    if not base_name:
        raise ValueError("a delta needs the name of its base")
    findings, fixed = mark(head.findings, base.findings)
    errors = (*head.errors, *(f"base {base_name[:12]}: {e}" for e in base.errors))
    return replace(head, findings=findings, fixed=fixed, base=base_name, errors=errors)
