"""``gitops-checker inputs``: print the render plan (:mod:`checker.inputs`)."""

from __future__ import annotations

from pathlib import Path

import click

from checker.cli.common import config_option, fail, root_option
from checker.errors import CheckerError
from checker.inputs import plan, render_json, render_text


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@root_option()
@config_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
def inputs(paths: tuple[Path, ...], root: Path, config_file: Path | None, fmt: str) -> None:
    """Print the render plan of PATHS (default: .): Kustomize roots, Flux syncs with their
    sources, Argo CD apps, Helm releases, what each produced and what was not checked.

    Exit codes: 0 the plan was printed, 2 configuration or tool error.
    """
    try:
        plans = plan(root, paths or (Path("."),), config_file)
    except CheckerError as err:
        fail(str(err))
    click.echo(render_json(plans) if fmt == "json" else render_text(plans), nl=False)
