"""``snapshot`` and ``drift``: read a live cluster; compare Git with a snapshot or live read."""

from __future__ import annotations

from pathlib import Path

import click

from checker.cli.common import (
    check_outputs,
    fail,
    finish,
    output_files,
    output_options,
    parse_fail_on,
    report_options,
    root_option,
)
from checker.drift.sources import KindRef
from checker.errors import CheckerError


def _kind_ref(text: str) -> KindRef:
    kind, _, group = text.partition(".")
    if not kind:
        raise click.BadParameter(f"expected Kind or Kind.group, got {text!r}")
    return KindRef(group, kind)


@click.command("snapshot")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Snapshot file to write (JSON, readable as YAML).")
@click.option("--kubeconfig", default=None, metavar="FILE",
              help="Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")
@click.option("--context", default=None, help="Kubeconfig context to read.")
@click.option("--in-cluster", is_flag=True, help="Use the pod's service account.")
@click.option("--kind", "kinds", multiple=True, metavar="KIND[.GROUP]",
              help="Also read every object of this kind (repeatable).")
@click.option("--no-sweep", is_flag=True,
              help="Do not look for GitOps-owned objects of kinds absent from Git.")
@click.option("--deadline", "deadline", default=600.0, show_default=True,
              type=click.FloatRange(min=1.0), metavar="SECONDS",
              help="Overall time for reading the live cluster; kinds not read by then are "
                   "unreadable findings.")
@click.option("--page-size", default=500, show_default=True, type=click.IntRange(1, 5000),
              help="Objects per list request.")
@root_option()
def snapshot(paths: tuple[Path, ...], out: Path, kubeconfig: str | None, context: str | None,
             in_cluster: bool, kinds: tuple[str, ...], no_sweep: bool, deadline: float,
             page_size: int, root: Path) -> None:
    """Write a read-only snapshot of a live cluster for the kinds of the manifests in PATHS.

    Only list requests (and discovery) are made. Secret values are replaced by keyed hashes
    (key from GITOPS_CHECKER_SECRET_KEY) before anything is written. Refused in a
    pull-request job.
    """
    from checker.drift.snapshot import SnapshotOptions, take_snapshot
    from checker.drift.sources import write_snapshot

    if in_cluster and (kubeconfig or context):
        fail("--in-cluster cannot be combined with --kubeconfig or --context")
    check_outputs(root, out)  # a committed symlink cannot take the snapshot out of the root
    try:
        extra = tuple(_kind_ref(k) for k in kinds)
    except click.BadParameter as err:
        fail(err.format_message())
    options = SnapshotOptions(
        paths=paths, root=root, kinds=extra, kubeconfig=kubeconfig, context=context,
        in_cluster=in_cluster, page_size=page_size, sweep=not no_sweep, deadline=deadline)
    try:
        taken = take_snapshot(options)
        write_snapshot(taken.snapshot, out)
    except CheckerError as err:
        fail(str(err))
    result = taken.snapshot
    click.echo(f"gitops-checker: wrote {len(result.objects)} objects of "
               f"{len(result.read_kinds)} kinds to {out}", err=True)
    if taken.ephemeral_key:
        click.echo("gitops-checker: note: GITOPS_CHECKER_SECRET_KEY is not set; Secret values "
                   "were hashed with a one-time key and cannot be compared with Git", err=True)
    for item in sorted(set(result.unreadable)):
        click.echo(f"gitops-checker: warning: could not read {item.ref}: {item.reason}",
                   err=True)
    if result.not_searched:
        names = ", ".join(str(u.ref) for u in sorted(set(result.not_searched)))
        click.echo(f"gitops-checker: note: {len(set(result.not_searched))} other kinds could "
                   f"not be searched for unmanaged objects: {names}", err=True)


@click.command("drift")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--snapshot", "snapshot_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Snapshot file: from 'gitops-checker snapshot', 'kubectl get -o yaml', or "
                   "multi-document YAML.")
@click.option("--snapshot-kinds", "snapshot_kinds", default="", metavar="KIND[.GROUP],...",
              help="Kinds a kubectl export was made from (comma-separated, e.g. "
                   "'Deployment.apps,Service'): their absent objects are missing. Without it "
                   "only kinds that occur in the file are compared.")
@click.option("--kubeconfig", default=None, metavar="FILE", help="Read live with this kubeconfig.")
@click.option("--context", default=None, help="Read live from this kubeconfig context.")
@click.option("--in-cluster", is_flag=True, help="Read live with the pod's service account.")
@click.option("--deadline", "deadline", default=600.0, show_default=True,
              type=click.FloatRange(min=1.0), metavar="SECONDS",
              help="Overall time for reading the live cluster; kinds not read by then are "
                   "unreadable findings.")
@click.option("--cluster", default="", help="Cluster name in reports (default: the context).")
@click.option("--ignore-file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML file of drift ignore rules (see docs/drift.md).")
@click.option("--field-manager", "managers", multiple=True, metavar="NAME[:OPERATION]",
              help="Field manager whose applied fields count when Git no longer declares "
                   "them (repeatable; replaces drift.fieldManagers and the defaults; 'none' "
                   "turns it off).")
@click.option("--owner", "owners", multiple=True, metavar="NAME",
              help="GitOps owner of this cluster: Flux Kustomization NAMESPACE/NAME or Argo CD "
                   "Application NAME (repeatable). Default: those declared in PATHS, else any.")
@click.option("--pack", "packs", multiple=True, metavar="NAME",
              help="Policy pack for the live policy check (repeatable; 'none' disables).")
@click.option("--policies", "policies", multiple=True, metavar="DIR",
              type=click.Path(path_type=Path, file_okay=False),
              help="Folder of the repository's own Gatekeeper policies (repeatable); run on "
                   "live objects only as they are at --policies-ref.")
@click.option("--policies-ref", default="", metavar="REF",
              help="Trusted git ref (the default branch) whose --policies folders run on live "
                   "objects; without it they are not run (a finding says so).")
@report_options
@click.option("--default-namespace", default="default", show_default=True,
              help="Namespace of namespaced manifests that name none.")
@output_options
def drift(paths: tuple[Path, ...], snapshot_file: Path | None, snapshot_kinds: str,
          kubeconfig: str | None,
          context: str | None, in_cluster: bool, deadline: float, cluster: str,
          ignore_file: Path | None, managers: tuple[str, ...],
          owners: tuple[str, ...], packs: tuple[str, ...], policies: tuple[Path, ...],
          policies_ref: str, fail_on: str, default_namespace: str, root: Path, link_base: str,
          sarif_category: str, fmt: str, **outputs: Path | None) -> None:
    """Compare the desired state in PATHS (default: .) with a live cluster snapshot.

    Exit 1 when drift is found (at or above --fail-on), 2 on usage, configuration or cluster
    access errors.
    """
    from checker.drift.sources import parse_kind
    from checker.options import DriftRunOptions
    from checker.pipeline import drift as run_drift

    files = output_files(outputs)
    check_outputs(root, *files.values())
    live = bool(kubeconfig or context or in_cluster)
    if snapshot_file is not None and live:
        fail("--snapshot cannot be combined with --kubeconfig, --context or --in-cluster")
    if snapshot_file is None and not live:
        fail("give --snapshot FILE, or --kubeconfig/--context/--in-cluster to read live")
    try:
        exported = tuple(parse_kind(k) for k in snapshot_kinds.split(",") if k.strip())
    except CheckerError as err:
        fail(f"--snapshot-kinds: {err}")
    from checker.drift.applied import parse_managers

    try:
        chosen = (None if not managers else () if managers == ("none",)
                  else parse_managers(list(managers), "--field-manager"))
    except CheckerError as err:
        fail(str(err))
    options = DriftRunOptions(
        field_managers=chosen,
        paths=paths or (Path("."),), root=root, snapshot=snapshot_file,
        snapshot_kinds=exported, kubeconfig=kubeconfig,
        context=context, in_cluster=in_cluster, live_deadline=deadline, cluster=cluster,
        ignore_file=ignore_file,
        owners=owners, packs=packs, policies=policies, policies_ref=policies_ref,
        fail_on=parse_fail_on(fail_on),
        link_base=link_base, sarif_category=sarif_category,
        default_namespace=default_namespace,
    )
    try:
        report = run_drift(options)
    except CheckerError as err:
        fail(str(err))
    summary = report.drift_summary
    finish(report, fmt, files,
           (f"drift: {summary['inSync']} of {summary['managed'] + summary['notCompared']} "
            f"managed objects in sync ({summary['coverage']}%)"
            + (f"; {summary['notCompared']} not checked" if summary['notCompared'] else ""),),
           root=root)
