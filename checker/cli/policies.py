"""``gitops-checker policies``: list, show, export and document the built-in policy packs.

The commands parse flags and call :mod:`checker.policy.docs` (list, show, docs pages) and
:mod:`checker.policy.export` (Gatekeeper export); they only read the catalog and write files.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from checker.cli.common import EXIT_FINDINGS, EXIT_OK, fail, parse_today, root_option, today_option
from checker.errors import CheckerError
from checker.model import Severity
from checker.policy.docs import (
    DOCS_DIR,
    out_of_date,
    policy_info,
    render_docs,
    render_list,
    render_list_json,
    render_show,
    write_pages,
)
from checker.policy.export import export_with_acceptances, write_export
from checker.policy.gatekeeper import ACTIONS
from checker.policy.packs import Catalog, load_catalog


def _catalog() -> Catalog:
    try:
        return load_catalog()
    except CheckerError as err:
        fail(str(err))


@click.group("policies")
def policies() -> None:
    """Built-in policy packs: list, show, export to Gatekeeper, generate docs."""


@policies.command("list")
@click.option("--pack", "packs", multiple=True, metavar="NAME", help="Only this pack (repeatable).")
@click.option("--standard", default="", metavar="STD",
              help="Only policies mapped to this standard: pss-baseline, pss-restricted, "
                   "cis-kubernetes, nsa-cisa-hardening, best-practice, bsi-sys-1-6, "
                   "bsi-app-4-4, nist-800-190, bsi-c5 (policy-packs/standards/).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def list_cmd(packs: tuple[str, ...], standard: str, fmt: str) -> None:
    """List packs, their policies, severities and controls."""
    catalog = _catalog()
    unknown = [p for p in packs if p not in catalog.packs]
    if unknown:
        fail(f"unknown pack {unknown[0]!r} (known: {', '.join(sorted(catalog.packs))})")
    if standard:
        try:
            catalog.standard(standard)
        except CheckerError as err:
            fail(str(err))
    text = (render_list_json(catalog, packs, standard) if fmt == "json"
            else render_list(catalog, packs, standard))
    click.echo(text, nl=False)


@policies.command("show")
@click.argument("policy_id")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def show_cmd(policy_id: str, fmt: str) -> None:
    """Everything about one policy: metadata, controls, parameters, files."""
    catalog = _catalog()
    if policy_id not in catalog.policies:
        fail(f"unknown policy {policy_id!r} (see 'gitops-checker policies list')")
    info = policy_info(catalog, policy_id)
    click.echo(json.dumps(info, indent=2, sort_keys=True) + "\n" if fmt == "json"
               else render_show(info), nl=False)


@policies.command("export")
@click.option("--pack", "packs", multiple=True, required=True, metavar="NAME",
              help="Pack to export (repeatable).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Folder to write (e.g. the folder Flux syncs to the cluster).")
@click.option("--enforcement", type=click.Choice(sorted(ACTIONS)), default=None,
              help="enforcementAction of every constraint (default: as in the pack, deny).")
@click.option("--include-disabled", is_flag=True,
              help="Also export policies that are off by default.")
@click.option("--acceptances", "acceptance_paths", multiple=True, metavar="PATH",
              type=click.Path(path_type=Path),
              help="Risk acceptance files or folders to carry into the constraints as "
                   "exclusions (repeatable).")
@click.option("--cluster", default="", help="Cluster the export is for (acceptances scoped to "
                                            "other clusters are left out).")
@today_option("Acceptances expired by this date are not exported (default: today).")
@root_option("Repository root that acceptance paths are reported relative to.")
def export_cmd(packs: tuple[str, ...], out: Path, enforcement: str | None,
               include_disabled: bool, acceptance_paths: tuple[Path, ...], cluster: str,
               today: str | None, root: Path) -> None:
    """Write ConstraintTemplates and Constraints for Gatekeeper.

    OUT/templates/ holds self-contained ConstraintTemplates, OUT/constraints/ the Constraints,
    OUT/sync/ a Gatekeeper SyncSet when a policy reads other objects. Apply templates before
    constraints (with Flux: two Kustomizations, the second with dependsOn the first).

    With --acceptances, accepted risks that Gatekeeper can express (whole namespaces, one label)
    become excludedNamespaces / labelSelector entries, so the cluster agrees with CI; the others
    are listed on stderr and the constraint keeps enforcing them.
    """
    from checker import accept

    catalog = _catalog()
    day = parse_today(today) or dt.date.today()
    found: tuple[accept.Acceptance, ...] | None = None
    if acceptance_paths:
        loaded, problems = accept.load_acceptances(acceptance_paths, root)
        bad = [p for p in problems if p.severity is Severity.ERROR]
        if bad:
            fail(f"{bad[0].location}: {bad[0].message}")
        found = tuple(loaded)
    try:
        export = export_with_acceptances(catalog, packs, enforcement, include_disabled,
                                         found, cluster, day)
        written = write_export(export.files, out, root)
    except CheckerError as err:
        fail(str(err))
    except OSError as err:
        fail(f"cannot write {out}: {err}")
    click.echo(f"wrote {len(written)} files to {out}")
    for acc, reason, rule_id in export.inexpressible:
        click.echo(f"gitops-checker: note: {acc.location}: acceptance {acc.id!r} of {rule_id} "
                   f"is not exported: {reason}; the constraint keeps enforcing it", err=True)


@policies.command("docs")
@click.option("--out", "out", type=click.Path(path_type=Path, file_okay=False),
              default=DOCS_DIR, show_default=True, help="Folder for the generated pages.")
@click.option("--check", is_flag=True,
              help="Do not write; exit 1 if the pages in --out are not up to date.")
def docs_cmd(out: Path, check: bool) -> None:
    """Generate docs/policies/ (one page per policy and an index) from the pack metadata."""
    pages = render_docs(_catalog())
    if check:
        stale, extra = out_of_date(pages, out)
        for name in stale:
            click.echo(f"out of date: {out / name}")
        for name in extra:
            click.echo(f"not generated (remove it): {out / name}")
        sys.exit(EXIT_FINDINGS if stale or extra else EXIT_OK)
    try:
        write_pages(pages, out)
    except CheckerError as err:
        fail(str(err))
    except OSError as err:
        fail(f"cannot write {out}: {err}")
    click.echo(f"wrote {len(pages)} pages to {out}")
