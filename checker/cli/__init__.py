"""Command line: one module per command group; click parses flags, calls a library, exits.

``scan``/``verify`` (:mod:`checker.cli.scan`), ``drift``/``snapshot``
(:mod:`checker.cli.drift`), the overview commands ``images``/``compliance``/``audit``
(:mod:`checker.cli.overview`), ``policies`` (:mod:`checker.cli.policies`) and ``inputs``
(:mod:`checker.cli.inputs`), a fleet's ``matrix``/``merge`` (:mod:`checker.cli.fleet`).
Shared options and the exit codes are in :mod:`checker.cli.common`.
"""

from __future__ import annotations

import os

import click

from checker import __version__
from checker.cli.common import fail
from checker.cli.drift import drift, snapshot
from checker.cli.fleet import matrix, merge
from checker.cli.inputs import inputs
from checker.cli.overview import audit, compliance, images
from checker.cli.policies import policies
from checker.cli.scan import scan, verify
from checker.errors import CheckerError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gitops-checker")
def cli() -> None:
    """Policy and drift checks for Kubernetes GitOps repositories.

    Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it (or a file that
    could not be read), 2 usage, configuration or tool error.
    """


for _command in (scan, verify, merge, matrix, images, compliance, audit, drift, snapshot,
                 policies, inputs):
    cli.add_command(_command)


def main() -> None:
    """Console entry point; no traceback ever reaches the user."""
    try:
        cli(standalone_mode=True)
    except CheckerError as err:
        fail(str(err))
    except Exception as err:  # a tool error must never look like "no findings"
        if "GITOPS_CHECKER_DEBUG" in os.environ:
            raise
        fail(f"internal error: {type(err).__name__}: {err}")


__all__ = ["cli", "main"]
