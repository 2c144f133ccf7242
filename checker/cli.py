"""Command line: click parses flags into options, calls the pipeline, writes files, exits."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from checker import __version__
from checker.errors import CheckerError
from checker.model import Report, Severity
from checker.options import ScanOptions
from checker.report import RENDERERS, Rendered

F = TypeVar("F", bound=Callable[..., Any])
FAIL_ON = ["error", "warning", "note", "never"]


def fail(message: str) -> NoReturn:
    """Print a one-line error and exit 2 (usage, configuration or tool error)."""
    click.echo(f"gitops-checker: error: {message}", err=True)
    sys.exit(2)


def output_options(func: F) -> F:
    """``--format`` to stdout plus ``--sarif/--junit/--markdown/--json FILE``."""
    for name in ("json", "markdown", "junit", "sarif"):
        func = click.option(f"--{name}", f"{name}_file", type=click.Path(dir_okay=False,
                            path_type=Path), help=f"Also write {name.upper()} to this file.")(func)
    return click.option("--format", "fmt", type=click.Choice(list(RENDERERS)), default="text",
                        show_default=True, help="Format written to standard output.")(func)


def report_options(func: F) -> F:
    """``--fail-on``, ``--root``, ``--link-base``, ``--sarif-category``: shared by reports."""
    func = click.option("--sarif-category", default="",
                        help="SARIF automationDetails category.")(func)
    func = click.option("--link-base", default="", metavar="URL",
                        help="Prefix for file links in Markdown, e.g. "
                             "https://github.com/o/r/blob/SHA")(func)
    func = click.option("--root", type=click.Path(path_type=Path, file_okay=False), default=".",
                        help="Repository root that reported paths are relative to.")(func)
    return click.option("--fail-on", type=click.Choice(FAIL_ON), default="error",
                        show_default=True,
                        help="Lowest severity that makes the exit code 1.")(func)


def check_outputs(root: Path, *files: Path | None) -> None:
    """Refuse, before anything runs, an output file that a symlink would take out of ``root``.

    A committed ``report.sarif -> ~/.bashrc`` (or a symlinked folder on the way) must not
    make the CLI overwrite a file outside the repository: usage error, exit 2.
    """
    from checker.load import workspace

    for path in files:
        if path is not None:
            try:
                workspace.output_path(path, root)
            except workspace.Refused as refused:
                fail(refused.message)


def write_file(path: Path, text: str, root: Path | None = None) -> None:
    """Write one output file; inside ``root`` (default: the current folder) no symlink out."""
    from checker.load import workspace

    try:
        workspace.write_text(path, text, root if root is not None else Path("."))
    except workspace.Refused as refused:
        fail(refused.message)
    except OSError as err:
        fail(f"cannot write {path}: {err.strerror}")


def write_outputs(report: Report, fmt: str, files: dict[str, Path | None],
                  root: Path | None = None) -> None:
    """Render the report to stdout and to every requested file (each format once)."""
    rendered = Rendered(report)
    rendered.prepare([fmt, *(name for name, path in files.items() if path is not None)])
    for name, path in sorted(files.items()):
        if path is not None:
            write_file(path, rendered[name], root)
    click.echo(rendered[fmt], nl=False)


def finish(report: Report, fmt: str, files: dict[str, Path | None],
           notes: tuple[str, ...] = (), root: Path | None = None) -> NoReturn:
    """Write the outputs, print notes and errors to stderr, exit with the documented code."""
    from checker.pipeline import exit_code

    write_outputs(report, fmt, files, root)
    for note in notes:
        click.echo(f"gitops-checker: {note}", err=True)
    for problem in report.errors:
        click.echo(f"gitops-checker: error: {problem}", err=True)
    sys.exit(exit_code(report, report.fail_on))


def parse_fail_on(value: str) -> Severity | None:
    """``never`` disables the threshold."""
    return None if value == "never" else Severity.parse(value)


def parse_today(value: str | None) -> dt.date | None:
    """``--today YYYY-MM-DD``; a bad date is a usage error (exit 2)."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)",
                                 param_hint="'--today'") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gitops-checker")
def cli() -> None:
    """Policy and drift checks for Kubernetes GitOps repositories.

    Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it (or a file that
    could not be read), 2 usage, configuration or tool error.
    """


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--pack", "packs", multiple=True, metavar="NAME",
              help="Built-in policy pack (repeatable). Default: pss-baseline, best-practice; "
                   "'none' uses only --policies.")
@click.option("--policies", "policies", multiple=True, metavar="DIR",
              type=click.Path(path_type=Path, file_okay=False),
              help="Folder of the repository's own Gatekeeper ConstraintTemplates and "
                   "Constraints (repeatable).")
@report_options
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Repository config file (default: ROOT/.gitops-checker.yaml if present).")
@click.option("--today", "today", metavar="YYYY-MM-DD", default=None,
              help="Date that risk acceptances expire against (default: today's date).")
@click.option("--accept-base", "accept_base", metavar="REF", default="",
              help="Four eyes: risk acceptances (files and annotations) count only when they "
                   "are on REF as they are here; give the pull request's base. New or changed "
                   "ones are reported as pending approval and accept nothing.")
@click.option("--group-by", type=click.Choice(["cluster", "pack"]), default=None,
              help="Group reports per cluster or per pack (default: per cluster when several "
                   "clusters are configured).")
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
@output_options
def scan(paths: tuple[Path, ...], packs: tuple[str, ...], policies: tuple[Path, ...],
         fail_on: str, root: Path, link_base: str, sarif_category: str, fmt: str,
         sarif_file: Path | None, junit_file: Path | None, markdown_file: Path | None,
         json_file: Path | None, config_file: Path | None = None, today: str | None = None,
         group_by: str | None = None, sarif_accepted: Path | None = None,
         accept_base: str = "",
         eval_seconds: float | None = None, eval_memory: int | None = None) -> None:
    """Check manifests under PATHS (default: .) against Gatekeeper policies."""
    from checker.pipeline import scan as run_scan

    check_outputs(root, sarif_file, junit_file, markdown_file, json_file, sarif_accepted)
    options = ScanOptions(
        paths=paths or (Path("."),), root=root, packs=packs, policies=policies,
        fail_on=parse_fail_on(fail_on), link_base=link_base, sarif_category=sarif_category,
        config_file=config_file, today=parse_today(today), group_by=group_by or "",
        accept_base=accept_base,
        eval_seconds=eval_seconds, eval_memory=eval_memory,
    )
    try:
        report = run_scan(options)
    except CheckerError as err:
        fail(str(err))
    if sarif_accepted is not None:
        from checker.report.sarif import render_accepted

        write_file(sarif_accepted, render_accepted(report), root)
    finish(report, fmt, {"sarif": sarif_file, "junit": junit_file,
                         "markdown": markdown_file, "json": json_file}, root=root)


@cli.command()
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
    for file in files:
        result = run_suite(file)
        for line in result.lines(verbose=verbose):
            click.echo(line)
        passed += result.passed
        failed += result.failed
    click.echo(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def main() -> None:
    """Console entry point; no traceback ever reaches the user."""
    try:
        cli(standalone_mode=True)
    except CheckerError as err:
        fail(str(err))
    except Exception as err:  # a tool error must never look like "no findings"
        if "GITOPS_CHECKER_DEBUG" in __import__("os").environ:
            raise
        fail(f"internal error: {type(err).__name__}: {err}")


from checker.inventory.cli import audit, compliance, images  # noqa: E402

cli.add_command(images)
cli.add_command(compliance)
cli.add_command(audit)

from checker.drift.cli import drift, snapshot  # noqa: E402

cli.add_command(drift)
cli.add_command(snapshot)

from checker.policy.cli import policies  # noqa: E402

cli.add_command(policies)

from checker.inputs import inputs  # noqa: E402

cli.add_command(inputs)
