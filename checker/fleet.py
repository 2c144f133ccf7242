"""A fleet on a matrix of jobs: select clusters, shard them, print the matrix, merge shards.

``scan --cluster NAME`` (repeatable) and ``scan --shard I/N`` check part of the configured
clusters; their JSON reports carry a ``shard`` section (:class:`checker.model.Shard`) with what
an unsharded run would have added up across clusters. :func:`merge` puts the shards' reports
together into the report an unsharded scan gives, byte for byte in every format, and the
assemble stage then makes the selections of the limited formats once, over the whole fleet.

Shards: the configured cluster names, sorted (code point order), are dealt round-robin:
the ``k``-th name (0-based) goes to shard ``k % N + 1``. The assignment depends only on the
set of names, never on the order of the config file or on the machine, and shards differ in
size by at most one cluster. :func:`matrix` prints one job per cluster, or, past
``max_jobs`` (GitHub runs at most 256 jobs of a matrix), ``max_jobs`` shards.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from checker.accept.model import RULE_STALE
from checker.assemble import assemble
from checker.errors import CheckerError, ConfigError
from checker.model import Finding, Impact, Report, Rule, Shard

MAX_JOBS = 256  # GitHub Actions: a matrix generates at most 256 jobs per workflow run
_SHARD = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")

__all__ = ["MAX_JOBS", "MergeError", "Selection", "assign", "matrix", "merge", "parse_shard",
           "read_reports", "select"]


class MergeError(CheckerError):
    """Shard reports that do not make up one fleet: says which file and why."""


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N`` (1 <= I <= N) as ``(I, N)``; anything else is a ``ConfigError`` (exit 2)."""
    found = _SHARD.match(text.strip())
    if found is None or not 1 <= int(found[1]) <= int(found[2]):
        raise ConfigError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. 2/8")
    return int(found[1]), int(found[2])


def assign(names: Iterable[str], count: int) -> list[tuple[str, ...]]:
    """The clusters of each of ``count`` shards: sorted names dealt round-robin."""
    ordered = sorted(set(names))
    return [tuple(ordered[i::count]) for i in range(count)]


@dataclass(frozen=True)
class Selection:
    """The clusters a scan checks (``names``, in config order) and which shard it is."""

    names: tuple[str, ...]
    index: int = 0
    count: int = 0


def select(configured: Sequence[str], wanted: Sequence[str] = (),
           shard: tuple[int, int] | None = None) -> Selection:
    """The configured clusters named by ``--cluster`` and in shard ``I/N`` (both: the ones
    in both), in the config's order.

    An unknown name, a shard past the number of clusters or a configuration without named
    clusters is a ``ConfigError`` naming what is known: a typo never checks nothing.
    """
    known = [name for name in configured if name]
    if not known:
        raise ConfigError("--cluster and --shard select among the clusters of the repository "
                          "config (clusters: in .gitops-checker.yaml, or Security Tower "
                          "cluster files); none is configured")
    listing = ", ".join(known)
    unknown = [name for name in dict.fromkeys(wanted) if name not in known]
    if unknown:
        raise ConfigError(f"--cluster: unknown cluster{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(map(repr, unknown))} (known: {listing})")
    chosen = set(wanted) if wanted else set(known)
    index = count = 0
    if shard is not None:
        index, count = shard
        if count > len(known):
            raise ConfigError(f"--shard {index}/{count}: there are {len(known)} clusters "
                              f"({listing}), so at most {len(known)} shards")
        chosen &= set(assign(known, count)[index - 1])
    names = tuple(name for name in known if name in chosen)
    if not names:
        raise ConfigError(f"--shard {index}/{count} holds none of the clusters named by "
                          f"--cluster (shard {index}/{count}: "
                          f"{', '.join(assign(known, count)[index - 1])})")
    return Selection(names, index, count)


def matrix(configured: Sequence[str], max_jobs: int = MAX_JOBS) -> dict[str, Any]:
    """A GitHub Actions matrix (``strategy.matrix: ${{ fromJSON(...) }}``): one job per
    cluster, or ``max_jobs`` shards when there are more clusters.

    Each entry of ``include`` has ``shard`` (``I/N``, for ``scan --shard``) and ``clusters``
    (its cluster names, space-separated, for the job's name). No named cluster: one job,
    ``shard`` empty (a plain scan).
    """
    if not 1 <= max_jobs <= MAX_JOBS:
        raise ConfigError(f"--max-jobs {max_jobs}: GitHub runs 1 to {MAX_JOBS} jobs of a matrix")
    known = [name for name in configured if name]
    if not known:
        return {"include": [{"shard": "", "clusters": ""}]}
    count = min(len(known), max_jobs)
    return {"include": [{"shard": f"{i}/{count}", "clusters": " ".join(part)}
                        for i, part in enumerate(assign(known, count), start=1)]}


def merge(reports: Sequence[tuple[str, Report]]) -> Report:
    """One report of the fleet from the reports of its shards (``(file name, report)``).

    Every shard must come from the same configuration and settings, and together they must
    check every configured cluster exactly once: a missing shard (an artifact that was not
    uploaded) or one given twice is a ``MergeError``, never a partial pass. Findings of a
    shard's clusters come from that shard; findings of the run (input, acceptance and
    configuration findings, cluster ``""``) are the same in every shard that saw their file
    and are kept once, except that an acceptance one shard reports unused (stale) is not
    stale when another shard used it. The rest is added up in config order, as an unsharded
    run does, and the assemble stage makes the selections once. One report of no shard (the
    matrix of a repository without named clusters is one plain scan) is the fleet's report.
    """
    if not reports:
        raise MergeError("no shard reports to merge")
    if len(reports) == 1 and reports[0][1].shard is None:
        return assemble(reports[0][1])  # a repository without named clusters: one job
    shards: list[tuple[str, Report, Shard]] = []
    for name, report in reports:
        if report.shard is None:
            raise MergeError(f"{name}: not the report of a shard (scan --shard I/N or "
                             "--cluster NAME writes one)")
        shards.append((name, report, report.shard))
    for name, _, shard in shards:
        if not shard.parts:
            raise MergeError(f"{name}: a shard report that checked no cluster (a scan never "
                             "writes one)")
    first_name, first, first_shard = shards[0]
    settings = ("tool_version", "link_base", "sarif_category", "group_by", "fail_on", "base",
                "gate")
    for name, report, shard in shards[1:]:
        if shard.clusters != first_shard.clusters:
            raise MergeError(f"{name}: its configuration has the clusters "
                             f"{', '.join(shard.clusters)}; {first_name}'s has "
                             f"{', '.join(first_shard.clusters)}")
        for setting in settings:
            if getattr(report, setting) != getattr(first, setting):
                raise MergeError(f"{name}: {setting} {getattr(report, setting)!r} differs from "
                                 f"{first_name}'s {getattr(first, setting)!r}")
    owner: dict[str, tuple[str, Report]] = {}
    for name, report, shard in shards:
        for cluster in shard.selected:
            if cluster in owner:
                raise MergeError(f"cluster {cluster} is in {owner[cluster][0]} and in {name}: "
                                 "give each shard's report once")
            owner[cluster] = (name, report)
    missing = [c for c in first_shard.clusters if c not in owner]
    if missing:
        raise MergeError(f"no shard report checked the cluster{'s' if len(missing) > 1 else ''}"
                         f" {', '.join(missing)}: a shard's report is missing")
    order = list(first_shard.clusters)
    shards.sort(key=lambda s: min(order.index(c) for c in s[2].selected))
    parts = {p.name: p for _, _, shard in shards for p in shard.parts}
    used = {key for _, _, shard in shards for key in shard.used}
    findings = _combine([(shard, report.findings) for _, report, shard in shards], used)
    fixed = _combine([(shard, report.fixed) for _, report, shard in shards], used)
    rules: dict[str, Rule] = {}
    for cluster in order:  # the last cluster that defines a rule gives its metadata
        for rule_id in parts[cluster].rules:
            rules[rule_id] = owner[cluster][1].rules[rule_id]
    files = {path for _, _, shard in shards for path in shard.files}
    merged = replace(
        first,
        findings=tuple(findings), fixed=tuple(fixed), rules=rules,
        resources_checked=sum(r.resources_checked for _, r, _ in shards),
        files_checked=len(files),
        packs=tuple(dict.fromkeys(p for c in order for p in parts[c].packs)),
        clusters=tuple(order),
        errors=tuple(e for c in order for e in parts[c].errors),
        coverage=tuple(sorted({c for _, r, _ in shards for c in r.coverage})),
        engines=tuple(dict.fromkeys(e for c in order for e in parts[c].engines)),
        exemptions=tuple(sorted({e for _, r, _ in shards for e in r.exemptions})),
        policy_records=tuple(sorted({p for _, r, _ in shards for p in r.policy_records})),
        drift_summary={}, selections={}, shard=None, impact=_impact(shards))
    return assemble(merged)


def _impact(shards: Sequence[tuple[str, Report, Shard]]) -> Impact | None:
    """The shards' policy-change impacts as one: each shard's are its clusters', put in the
    order ``checker.impact.build`` gives them."""
    from checker.impact import _order

    impacts = [(name, r.impact) for name, r, _ in shards if r.impact is not None]
    if not impacts:
        return None
    if len(impacts) != len(shards) or len({i.base for _, i in impacts}) > 1:
        raise MergeError("the shard reports disagree on the policy-change impact (one has "
                         "none, or another base): run every shard with the same base ref")
    changes = [c for _, i in impacts for c in i.changes]
    return Impact(
        base=impacts[0][1].base,
        changes=tuple(sorted(changes, key=lambda c: (c.cluster, c.policy))),
        entries=tuple(sorted((e for _, i in impacts for e in i.entries), key=_order)),
        live=tuple(sorted({c for _, i in impacts for c in i.live})),
        problems=tuple(dict.fromkeys(p for _, i in impacts for p in i.problems)))


def _combine(parts: Sequence[tuple[Shard, Sequence[Finding]]], used: set[str]) -> list[Finding]:
    """Findings of each shard's clusters from that shard, then those of the run (cluster
    ``""`` or a cluster the shard did not check) as often as the shard with most of them has
    each (a file two shards read gives its finding in both: once), less the staleness of an
    acceptance some shard used."""
    out: list[Finding] = []
    run_level: Counter[Finding] = Counter()
    run_order: dict[Finding, None] = {}
    for shard, items in parts:
        mine = set(shard.selected)
        here: Counter[Finding] = Counter()
        for f in items:
            if f.cluster in mine:
                out.append(f)
            else:
                here[f] += 1
                run_order.setdefault(f, None)
        for f, n in here.items():
            run_level[f] = max(run_level[f], n)
    for f in run_order:
        if f.rule_id == RULE_STALE and _acceptance_key(f) in used:
            continue  # unused in one shard, used in another: not stale in the fleet
        out += [f] * run_level[f]
    return out


def read_reports(paths: Iterable[Path]) -> list[tuple[str, Report]]:
    """The shard reports in ``paths``: JSON files, or folders searched for ``*.json`` (one
    folder per downloaded artifact). Unreadable or foreign files are a ``MergeError``.

    A symbolic link among them is refused, never followed: the folder sits in a checkout of
    the pull request, which could commit a link to a file outside it whose text an error
    message would then show.
    """
    from checker.report import json_format

    found: list[Path] = []
    given = list(paths)
    for path in given:
        if path.is_symlink():
            raise MergeError(f"{path} is a symbolic link: shard reports are read only as "
                             "regular files")
        if not path.is_dir():
            found.append(path)
            continue
        for folder, dirs, files in os.walk(path, followlinks=False):
            here = Path(folder)
            for name in sorted([*dirs, *files]):
                if (here / name).is_symlink():
                    raise MergeError(f"{here / name} is a symbolic link: shard reports are "
                                     "read only as regular files")
            dirs.sort()
            found += [here / name for name in sorted(files) if name.endswith(".json")]
    if not found:
        raise MergeError(f"no JSON reports in {', '.join(map(str, given))}")
    out = []
    for path in dict.fromkeys(found):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise MergeError(f"cannot read {path}: {err}") from None
        try:
            out.append((str(path), json_format.load(text, str(path))))
        except json_format.LoadError as err:
            raise MergeError(str(err)) from None
    return out


def _acceptance_key(f: Finding) -> str:
    """``path:line:id`` of the acceptance a finding about an acceptance names."""
    return f"{f.location.path}:{f.location.line}:{f.details.get('acceptance', '')}"
