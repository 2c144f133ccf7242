"""The overview commands ``images``, ``compliance`` and ``audit``: parse flags, run, write."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from checker.cli.common import (
    check_outputs,
    config_option,
    errors_and_exit,
    fail,
    fail_on_option,
    parse_fail_on,
    parse_today,
    root_option,
    today_option,
    write_file,
    write_or_echo,
)
from checker.errors import CheckerError
from checker.overview.scope import Scope
from checker.report import RENDERERS


def parse_clusters(values: tuple[str, ...]) -> list[Scope]:
    """``NAME=PATH`` or ``NAME/ENVIRONMENT=PATH`` options, in order; a name may repeat."""
    order: dict[str, tuple[str, list[Path]]] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"expected NAME=PATH or NAME/ENVIRONMENT=PATH, got {value!r}",
                                     param_hint="--cluster")
        name, _, environment = name.partition("/")
        env, paths = order.setdefault(name, (environment or name, []))
        if environment and environment != env:
            raise click.BadParameter(f"cluster {name!r} given two environments",
                                     param_hint="--cluster")
        paths.append(Path(path))
    return [Scope(n, e, tuple(p)) for n, (e, p) in order.items()]


def _scopes(paths: tuple[Path, ...], clusters: tuple[str, ...], root: Path,
            config_file: Path | None) -> tuple[list[Scope], tuple[str, ...]]:
    """Clusters from --cluster options, else from the repository config (PATHS as default).

    Also returns the config's ``images.allowedRegistries`` (empty with --cluster).
    """
    from checker.config import load_config

    if clusters:
        if paths or config_file:
            raise click.UsageError("--cluster cannot be combined with PATHS or --config")
        return parse_clusters(clusters), ()
    config = load_config(root, config_file, paths or (Path("."),))
    scopes = [Scope(c.name, c.environment, c.paths, c) for c in config.clusters]
    return scopes, config.allowed_registries


def _parse_snapshots(values: tuple[str, ...], scopes: list[Scope]) -> dict[str, Path]:
    names = [s.name for s in scopes]
    out: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if sep and name in names:
            out[name] = Path(path)
        elif len(scopes) == 1 and not sep:
            out[names[0]] = Path(value)
        else:
            raise click.BadParameter(
                f"{value!r}: use CLUSTER=FILE naming one of: {', '.join(names) or '(none)'}"
                if len(scopes) > 1 or sep else f"{value!r}", param_hint="--snapshot")
    return out


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--cluster", "clusters", multiple=True, metavar="NAME[/ENV]=PATH",
              help="A cluster and one of its manifest paths (repeatable).")
@config_option
@root_option()
@click.option("--snapshot", "snapshots", multiple=True, metavar="[CLUSTER=]FILE",
              help="Live objects (multi-document YAML or kind: List) to show what runs.")
@click.option("--allowed-registry", "allowlist", multiple=True, metavar="HOST[/PATH]",
              help="Registry (optionally with a repository prefix or glob) images may come "
                   "from (repeatable). Without it, every registry is allowed.")
@click.option("--registry", "registries", multiple=True, metavar="HOST",
              help="Registry whose tags/list is read to find newer tags (repeatable). "
                   "Credentials: GITOPS_CHECKER_REGISTRY_TOKEN or _USERNAME/_PASSWORD.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json", "csv"]),
              default="text", show_default=True, help="Format written to standard output.")
@click.option("--sarif", "sarif_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the flags as SARIF findings to this file.")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the flags as JUnit XML to this file.")
@fail_on_option(default="never", help="Lowest flag severity that makes the exit code 1.")
def images(paths: tuple[Path, ...], clusters: tuple[str, ...], config_file: Path | None,
           root: Path, snapshots: tuple[str, ...],
           allowlist: tuple[str, ...], registries: tuple[str, ...], fmt: str,
           sarif_file: Path | None, junit_file: Path | None, fail_on: str) -> None:
    """List every container image per cluster and environment, and flag risky ones.

    Exit codes: 0 done (and nothing at or above --fail-on), 1 flags at or above --fail-on,
    2 usage or tool error (including a registry that could not be read).
    """
    from checker.overview.registry import Credentials
    from checker.overview.render_images import IMAGE_RENDERERS
    from checker.overview.run import ImageOptions, exit_code, inventory, inventory_report

    check_outputs(root, sarif_file, junit_file)

    try:
        scopes, configured = _scopes(paths, clusters, root, config_file)
        options = ImageOptions(
            scopes=tuple(scopes), root=root, snapshots=_parse_snapshots(snapshots, scopes),
            allowlist=allowlist or configured, registries=registries,
            credentials=Credentials.from_env(os.environ),
        )
        inv = inventory(options)
    except CheckerError as err:
        fail(str(err))
    report = inventory_report(inv)
    for name, path in (("sarif", sarif_file), ("junit", junit_file)):
        if path is not None:
            write_file(path, RENDERERS[name](report), root)
    click.echo(IMAGE_RENDERERS[fmt](inv), nl=False)
    errors_and_exit(inv.errors, exit_code(inv, parse_fail_on(fail_on)))


def _progress(done: int, total: int) -> None:
    """Progress of the audit on an interactive stderr, one line rewritten in place."""
    end = "\n" if done >= total else ""
    click.echo(f"\raudit: {done}/{total} commits read", err=True, nl=False)
    click.echo(end, err=True, nl=False)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=".",
              help="The git repository (default: the current directory).")
@click.option("--rev", "revision", default="HEAD", show_default=True,
              help="Revision or range whose history is read, e.g. main or v1.2..HEAD.")
@click.option("--first-parent", is_flag=True,
              help="Follow first parents only and attribute merged changes to merge commits.")
@click.option("--kind", "kinds", multiple=True, help="Keep only this kind (repeatable).")
@click.option("--namespace", "namespaces", multiple=True, help="Keep only this namespace.")
@click.option("--name", "names", multiple=True, help="Keep only names matching this glob.")
@click.option("--change", "changes", multiple=True,
              type=click.Choice(["added", "modified", "removed", "unreadable"]),
              help="Keep only this change type (repeatable).")
@click.option("--author", "authors", multiple=True,
              help="Keep only commits whose author name or e-mail contains this text.")
@click.option("--since", default="", help="Only commits after this date (git's --since).")
@click.option("--until", default="", help="Only commits before this date (git's --until).")
@click.option("--base", default="", metavar="REF",
              help="Guardrails: the last trusted commit; checks that HEAD still contains it.")
@click.option("--head", default="HEAD", show_default=True, metavar="REF",
              help="Guardrails: the commit under review.")
@click.option("--require-signed", is_flag=True,
              help="Guardrail: every commit in BASE..HEAD must carry a good signature "
                   "(default: guardrails.requireSignedCommits in .gitops-checker.yaml).")
@click.option("--require-codeowners", is_flag=True,
              help="Guardrail: every manifest file at HEAD must have a CODEOWNERS owner "
                   "(default: guardrails.requireCodeowners in .gitops-checker.yaml).")
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown",
              show_default=True, help="Format written to standard output.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
def audit(paths: tuple[Path, ...], repo: Path, revision: str, first_parent: bool,
          kinds: tuple[str, ...], namespaces: tuple[str, ...], names: tuple[str, ...],
          changes: tuple[str, ...], authors: tuple[str, ...], since: str, until: str,
          base: str, head: str, require_signed: bool, require_codeowners: bool, fmt: str,
          output: Path | None) -> None:
    """Who changed which Kubernetes object when, from the git history of PATHS.

    Exit codes: 0 done, 1 a required guardrail is violated (unsigned commits, rewritten
    history, manifests without code owner) or the history is incomplete (a shallow clone),
    2 usage or git error.
    """
    from checker.overview.audit import AuditFilter, AuditOptions
    from checker.overview.guardrails import (
        GuardrailOptions,
        audit_with_guardrails,
        exit_code,
        required_by_repository,
        violations,
    )
    from checker.overview.render_audit import AUDIT_RENDERERS

    check_outputs(repo, output)
    options = AuditOptions(
        repo=repo, paths=paths, revision=revision, first_parent=first_parent,
        filters=AuditFilter(kinds, namespaces, names, changes, authors, since, until),
    )
    try:
        guardrails = required_by_repository(repo, GuardrailOptions(
            base=base, head=head, require_signed=require_signed,
            require_codeowners=require_codeowners))
        trail = audit_with_guardrails(options, guardrails,
                                      progress=_progress if sys.stderr.isatty() else None)
    except CheckerError as err:
        fail(str(err))
    write_or_echo(AUDIT_RENDERERS[fmt](trail), output, repo)
    for failure in violations(trail):
        click.echo(f"gitops-checker: guardrail: {failure}", err=True)
    sys.exit(exit_code(trail))


@click.command()
@root_option("Repository root (where .gitops-checker.yaml is looked for).")
@config_option
@click.option("--snapshot", "snapshots", multiple=True, metavar="CLUSTER=FILE",
              help="Live Constraints of a cluster (multi-document YAML or kind: List).")
@today_option("Date risk acceptances expire against (default: today's date).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True, help="Format written to standard output.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
@click.option("--strict", is_flag=True,
              help="Exit 1 when a policy is missing, in dryrun or not live in some cluster.")
def compliance(root: Path, config_file: Path | None, snapshots: tuple[str, ...],
               today: str | None, fmt: str, output: Path | None, strict: bool) -> None:
    """Which policy is active in which cluster: packs and policies by cluster.

    Exit codes: 0 done, 1 gaps with --strict, 2 usage, configuration or tool error.
    """
    from checker.config import load_config
    from checker.options import ScanOptions
    from checker.overview.compliance import run
    from checker.overview.render_compliance import COMPLIANCE_RENDERERS

    check_outputs(root, output)

    options = ScanOptions(paths=(), root=root, config_file=config_file,
                          today=parse_today(today))
    try:
        config = load_config(root, config_file)
        scopes = [Scope(c.name, c.environment, c.paths, c) for c in config.clusters]
        files = _parse_snapshots(snapshots, scopes)
        matrix = run(root, config, files, options)
    except CheckerError as err:
        fail(str(err))
    write_or_echo(COMPLIANCE_RENDERERS[fmt](matrix), output, root)
    errors_and_exit(matrix.errors, matrix.exit_code(strict))
