"""``scan`` and ``verify``: check manifests against policies; run policy test suites."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click

from checker.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    check_outputs,
    config_option,
    fail,
    finish,
    output_files,
    output_options,
    parse_fail_on,
    parse_today,
    report_options,
    today_option,
    write_file,
)
from checker.delta import GATES
from checker.errors import CheckerError
from checker.options import ScanOptions


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--pack", "packs", multiple=True, metavar="NAME",
              help="Built-in policy pack (repeatable). Default: pss-restricted (what it adds to "
                   "pss-baseline at warning) and best-practice; 'none' uses only --policies.")
@click.option("--policies", "policies", multiple=True, metavar="DIR",
              type=click.Path(path_type=Path, file_okay=False),
              help="Folder of the repository's own Gatekeeper ConstraintTemplates and "
                   "Constraints (repeatable).")
@report_options
@config_option
@today_option("Date that risk acceptances expire against (default: today's date).")
@click.option("--accept-base", "accept_base", metavar="REF", default="",
              help="Four eyes: risk acceptances (files and annotations) count only when they "
                   "are on REF as they are here; give the pull request's base. New or changed "
                   "ones are reported as pending approval and accept nothing.")
@click.option("--what-if/--no-what-if", "what_if", default=True,
              help="With --accept-base, when the change alters policies, packs, overrides, "
                   "acceptances or cluster config: also evaluate the manifests under the "
                   "change's own policies and report which objects would newly fail or pass "
                   "(it never changes the exit code). Default: on.")
@click.option("--base", "base", metavar="REF", default="",
              help="Delta against REF (the pull request's base): evaluate REF's tree from git "
                   "objects in full, as the head, and mark each finding new or unchanged; "
                   "reports lead with new ones and list what the change fixes. Implies "
                   "--accept-base REF.")
@click.option("--gate", type=click.Choice(GATES), default="all", show_default=True,
              help="What the exit code weighs against --fail-on: every finding, or only "
                   "the new ones (without --base every finding is new). A file that could "
                   "not be read always fails.")
@click.option("--cache-dir", "cache_dir", type=click.Path(path_type=Path, file_okay=False),
              default=None, metavar="DIR",
              help="Keep and reuse the base's results here, by its content digest (outside "
                   "the repository; see docs/performance.md).")
@click.option("--group-by", default=None, metavar="cluster|pack|STANDARD",
              help="Group reports per cluster, per pack, or per requirement of a standard "
                   "(bsi-sys-1-6, bsi-app-4-4, nist-800-190, bsi-c5, cis-kubernetes, ...; see "
                   "'policies list --standard'). Default: per cluster when several clusters "
                   "are configured.")
@click.option("--eval-seconds", "eval_seconds", type=click.FloatRange(min=0, min_open=True,
              max=300), default=None, metavar="SECONDS",
              help="Time one evaluation step may take (default: limits.evaluationSeconds in "
                   "the config, else 5).")
@click.option("--eval-memory", "eval_memory", type=click.IntRange(64, 65536), default=None,
              metavar="MIB", help="Memory an evaluation worker may add (default: "
                                  "limits.memoryMiB in the config, else 2048).")
@click.option("--sarif-accepted", "sarif_accepted", type=click.Path(dir_okay=False,
              path_type=Path), help="Also write accepted findings, with SARIF suppressions, "
                                    "to this separate file (never upload it with the main one).")
@click.option("--evidence", "evidence_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the evidence record of this run (JSON, schema "
                   "checker/schemas/evidence.schema.json) to this file.")
@click.option("--evidence-statement", "statement_file",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Write the evidence record as an in-toto Statement v1 (subject: the "
                   "scanned commit) to this file, for a workflow to sign.")
@click.option("--cluster", "clusters", multiple=True, metavar="NAME",
              help="Check only this configured cluster (repeatable); an unknown name is a "
                   "usage error that lists the known ones.")
@click.option("--shard", default=None, metavar="I/N",
              help="Check the I-th of N shards of the configured clusters (sorted names dealt "
                   "round-robin; see 'gitops-checker matrix'); the JSON report then carries "
                   "what 'gitops-checker merge' needs.")
@output_options
def scan(paths: tuple[Path, ...], packs: tuple[str, ...], policies: tuple[Path, ...],
         fail_on: str, root: Path, link_base: str, sarif_category: str, fmt: str,
         config_file: Path | None, today: str | None, group_by: str | None,
         sarif_accepted: Path | None, accept_base: str, eval_seconds: float | None,
         eval_memory: int | None, what_if: bool = True, base: str = "", gate: str = "all",
         cache_dir: Path | None = None, evidence_file: Path | None = None,
         statement_file: Path | None = None, clusters: tuple[str, ...] = (),
         shard: str | None = None, **outputs: Path | None) -> None:
    """Check manifests under PATHS (default: .) against Gatekeeper policies."""
    from checker.fleet import parse_shard
    from checker.pipeline import scan as run_scan

    files = output_files(outputs)
    check_outputs(root, *files.values(), sarif_accepted, evidence_file, statement_file)
    day = parse_today(today)
    evidence = evidence_file is not None or statement_file is not None
    if evidence and day is None:
        import datetime as dt

        day = dt.date.today()  # read once: the scan and the record state the same date
    options = ScanOptions(
        paths=paths or (Path("."),), root=root, packs=packs, policies=policies,
        fail_on=parse_fail_on(fail_on), link_base=link_base, sarif_category=sarif_category,
        config_file=config_file, today=day, group_by=group_by or "",
        accept_base=accept_base or base, base=base, gate=gate, cache_dir=cache_dir,
        eval_seconds=eval_seconds, eval_memory=eval_memory, what_if=what_if,
        clusters=clusters, shard=None,
    )
    try:
        if shard is not None:
            options = replace(options, shard=parse_shard(shard))
        if evidence:
            from checker.config import load_config
            from checker.overview import evidence as evidence_record
            from checker.pipeline import exit_code

            config = load_config(options.root, options.config_file, options.paths)
            report = run_scan(options, config)
            texts = evidence_record.write_all(
                report, root, config, exit_code(report, report.fail_on), day,
                options.accept_base,
                evidence_file, statement_file)
        else:
            report = run_scan(options)
    except CheckerError as err:
        fail(str(err))
    if evidence_file is not None:
        write_file(evidence_file, texts["evidence"], root)
    if statement_file is not None:
        write_file(statement_file, texts["statement"], root)
    if sarif_accepted is not None:
        from checker.report.sarif import render_accepted

        write_file(sarif_accepted, render_accepted(report), root)
    finish(report, fmt, files, root=root)


@click.command()
@click.argument("suites", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-v", "--verbose", is_flag=True, help="Print every case, not only failures.")
def verify(suites: tuple[Path, ...], verbose: bool) -> None:
    """Run gator-format test suites (kind: Suite) with gator's verdicts.

    SUITES are suite files or folders searched for them. Exit 1 when a case fails.
    """
    from checker.policy.suites import find_suites, run_suite

    try:
        files = find_suites(suites)
    except CheckerError as err:
        fail(str(err))
    passed = failed = 0
    engines: dict[str, None] = {}
    for file in files:
        result = run_suite(file)
        for line in result.lines(verbose=verbose):
            click.echo(line)
        passed += result.passed
        failed += result.failed
        engines.update(result.engines)
    if engines:  # which engine gave the verdicts, as every report says
        click.echo("engine: " + "; ".join(engines))
    click.echo(f"{passed} passed, {failed} failed")
    sys.exit(EXIT_FINDINGS if failed else EXIT_OK)
