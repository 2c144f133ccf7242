"""``matrix`` and ``merge``: a fleet's scan on a GitHub Actions matrix of shard jobs.

``matrix`` prints the jobs (``scan --shard I/N`` each), ``merge`` puts the shards' JSON
reports together into the reports of the whole fleet; the work is in :mod:`checker.fleet`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from checker.cli.common import (
    FAIL_ON,
    check_outputs,
    config_option,
    fail,
    finish,
    output_files,
    output_options,
    parse_fail_on,
    root_option,
    write_file,
)
from checker.errors import CheckerError


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@root_option()
@config_option
@click.option("--accept-base", "accept_base", metavar="REF", default="",
              help="Read the clusters as scan --accept-base REF does (the base ref's config "
                   "in a pull request); give the shards the same.")
@click.option("--max-jobs", "max_jobs", type=click.IntRange(1, 256), default=256,
              show_default=True, help="At most this many jobs; more clusters are grouped "
                                      "into this many shards.")
def matrix(paths: tuple[Path, ...], root: Path, config_file: Path | None, accept_base: str,
           max_jobs: int) -> None:
    """Print the GitHub Actions matrix of a fleet's scan as JSON, for fromJSON.

    One job per configured cluster, or --max-jobs shards when there are more: each entry of
    "include" has "shard" (give it to scan --shard) and "clusters" (its cluster names).
    """
    from checker import fleet
    from checker.options import ScanOptions
    from checker.pipeline import fleet_clusters

    try:
        options = ScanOptions(paths=paths or (Path("."),), root=root, config_file=config_file,
                              accept_base=accept_base)
        jobs = fleet.matrix(fleet_clusters(options), max_jobs)
    except CheckerError as err:
        fail(str(err))
    click.echo(json.dumps(jobs, separators=(",", ":")))


@click.command()
@click.argument("reports", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
              help="Lowest severity that makes the exit code 1 (default: the shards' --fail-on; "
                   "run shards with --fail-on never and gate here).")
@root_option("Folder the output files are written in (no symlink may lead out of it).")
@click.option("--sarif-accepted", "sarif_accepted", type=click.Path(dir_okay=False,
              path_type=Path), help="Also write accepted findings, with SARIF suppressions, "
                                    "to this separate file (never upload it with the main one).")
@output_options
def merge(reports: tuple[Path, ...], fail_on: str | None, root: Path,
          sarif_accepted: Path | None, fmt: str, **outputs: Path | None) -> None:
    """Merge the JSON reports of a fleet's shards (scan --shard I/N --json FILE) into one.

    REPORTS are the shards' JSON files, or folders searched for *.json. The result is the
    report an unsharded scan gives, in every format; the exit code follows it. A missing
    shard, a cluster in two shards or reports of different settings: exit 2.
    """
    from checker import fleet

    files = output_files(outputs)
    check_outputs(root, *files.values(), sarif_accepted)
    try:
        report = fleet.merge(fleet.read_reports(reports))
    except CheckerError as err:
        fail(str(err))
    if fail_on is not None:
        report = replace(report, fail_on=parse_fail_on(fail_on))
    if sarif_accepted is not None:
        from checker.report.sarif import render_accepted

        write_file(sarif_accepted, render_accepted(report), root)
    finish(report, fmt, files, root=root)
