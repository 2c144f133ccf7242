"""What every command shares: error exit, output flags, report flags, writing, exit codes.

The exit-code rules are defined here once (and in ``checker.pipeline.exit_code`` for a
``Report``): 0 nothing at or above the threshold, 1 findings at or above it, 2 usage,
configuration or tool error.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from checker.errors import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from checker.model import Report
from checker.options import FAIL_ON, parse_fail_on
from checker.report import FILE_FORMATS, FORMATS, RENDERERS

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> NoReturn:
    """Print a one-line error and exit 2 (usage, configuration or tool error)."""
    click.echo(f"gitops-checker: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def output_options(func: F) -> F:
    """``--format`` to stdout plus ``--<format> FILE`` for every file format of the registry
    (``checker.report.FORMATS``); the command gets them as ``<format>_file`` arguments."""
    for name in reversed(FILE_FORMATS):
        func = click.option(f"--{name}", f"{name}_file", type=click.Path(dir_okay=False,
                            path_type=Path), help=f"Also write {name.upper()} to this file.")(func)
    return click.option("--format", "fmt", type=click.Choice(list(RENDERERS)), default="text",
                        show_default=True, help="Format written to standard output.")(func)


def output_files(arguments: dict[str, Any]) -> dict[str, Path | None]:
    """Format -> file of the ``--<format> FILE`` flags among a command's ``arguments``."""
    return {name: arguments[f"{name}_file"] for name in FILE_FORMATS}


def fail_on_option(default: str = "error", help: str = "Lowest severity that makes the exit "
                   "code 1.") -> Callable[[F], F]:
    """``--fail-on error|warning|note|never``."""
    return click.option("--fail-on", type=click.Choice(FAIL_ON), default=default,
                        show_default=True, help=help)


def root_option(help: str = "Repository root that reported paths are relative to."
                ) -> Callable[[F], F]:
    """``--root DIR`` (default: the current folder)."""
    return click.option("--root", type=click.Path(path_type=Path, file_okay=False),
                        default=".", help=help)


def config_option(func: F) -> F:
    """``--config FILE``."""
    return click.option("--config", "config_file",
                        type=click.Path(dir_okay=False, path_type=Path),
                        help="Repository config file (default: ROOT/.gitops-checker.yaml if "
                             "present).")(func)


def today_option(help: str) -> Callable[[F], F]:
    """``--today YYYY-MM-DD``, parsed with :func:`parse_today` by the command."""
    return click.option("--today", "today", metavar="YYYY-MM-DD", default=None, help=help)


def report_options(func: F) -> F:
    """``--fail-on``, ``--root``, ``--link-base``, ``--sarif-category``: shared by reports."""
    func = click.option("--sarif-category", default="",
                        help="SARIF automationDetails category.")(func)
    func = click.option("--link-base", default="", metavar="URL",
                        help="Prefix for file links in Markdown, e.g. "
                             "https://github.com/o/r/blob/SHA")(func)
    func = root_option()(func)
    return fail_on_option()(func)


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


def write_or_echo(text: str, output: Path | None, root: Path) -> None:
    """``text`` to ``output`` when given (inside ``root``), else to standard output."""
    if output is not None:
        write_file(output, text, root)
    else:
        click.echo(text, nl=False)


def write_outputs(report: Report, fmt: str, files: dict[str, Path | None],
                  root: Path | None = None) -> None:
    """Render the report to stdout and to every requested file (each format once)."""
    from checker.parallel import render_all

    rendered = render_all(report, [fmt, *(name for name, path in files.items() if path)],
                          FORMATS)
    for name, path in sorted(files.items()):
        if path is not None:
            write_file(path, rendered[name], root)
    click.echo(rendered[fmt], nl=False)


def errors_and_exit(errors: tuple[str, ...] | list[str], code: int) -> NoReturn:
    """Print each tool error to stderr; exit 2 if there was one, else ``code``."""
    for problem in errors:
        click.echo(f"gitops-checker: error: {problem}", err=True)
    sys.exit(EXIT_ERROR if errors else code)


def finish(report: Report, fmt: str, files: dict[str, Path | None],
           notes: tuple[str, ...] = (), root: Path | None = None) -> NoReturn:
    """Write the outputs, print notes and errors to stderr, exit with the documented code."""
    from checker.pipeline import exit_code

    write_outputs(report, fmt, files, root)
    for note in notes:
        click.echo(f"gitops-checker: {note}", err=True)
    errors_and_exit(report.errors, exit_code(report, report.fail_on))


def parse_today(value: str | None) -> dt.date | None:
    """``--today YYYY-MM-DD``; a bad date is a usage error (exit 2)."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)",
                                 param_hint="'--today'") from None


__all__ = ["EXIT_ERROR", "EXIT_FINDINGS", "EXIT_OK", "FAIL_ON", "check_outputs", "config_option",
           "errors_and_exit", "fail", "fail_on_option", "finish", "output_files", "output_options",
           "parse_fail_on", "parse_today", "report_options", "root_option", "today_option",
           "write_file", "write_or_echo", "write_outputs"]
