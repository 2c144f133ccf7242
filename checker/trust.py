"""The trusted settings of a pull-request run: what the check does comes from the base ref.

The config file is part of the pull request. Left to it, a change could switch its own check
off: select no pack, lower a policy's severity, point a cluster's policy folder at an empty
one, make every evaluation time out, turn "not checked" into a note, allow inline acceptances
or add network hosts. With a base ref (``--accept-base``, the Action's default on pull
requests) those settings are taken from the config **at the base ref**; every setting the
change alters is a finding (``input.untrusted-config``, ``input.untrusted-host`` for hosts)
that names the key, and the change takes effect once it is merged. What the change may decide
is *what is deployed*: the clusters' paths and the manifests in them (a change of a cluster's
paths is a finding too, so reviewers see it). A cluster the change removes from the config is
still checked with the base ref's settings on those of its paths that still exist.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from checker.accept import BaseApproval
from checker.config import CONFIG_NAMES, SECURITY_TOWER_DIR, Cluster, Config, load_config
from checker.errors import ConfigError
from checker.load import workspace
from checker.load.yamlfile import MAX_FILE_BYTES, run_budget
from checker.model import Finding, Resource, Severity, SourceLocation
from checker.rules import RULE_UNTRUSTED_CONFIG, RULE_UNTRUSTED_HOST


def _config_path(head: Config, root: Path, config_file: Path | None) -> tuple[bool, str | None]:
    """Whether the config is the repository's, and its path relative to ``root`` (None: the
    change has none; look for one at the base ref).

    A ``--config`` file outside the repository comes from the workflow, which is trusted.
    """
    if config_file is not None:
        try:
            return True, config_file.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return False, None
    return True, head.source or None


def _base_bytes(approval: BaseApproval, path: str | None) -> tuple[str, bytes | None]:
    if path is not None:
        return path, approval.blob(path)
    for name in CONFIG_NAMES:  # the change may have deleted (or renamed) the config
        blob = approval.blob(name)
        if blob is not None:
            return name, blob
    return CONFIG_NAMES[0], None


def _head_tower(root: Path) -> dict[str, bytes]:
    folder = root / SECURITY_TOWER_DIR
    if not folder.is_dir():
        return {}
    out = {}
    for file in [*folder.glob("*.yaml"), *folder.glob("*.yml")]:
        data = _head_bytes(root, f"{SECURITY_TOWER_DIR}/{file.name}")
        if data is not None:
            out[file.name] = data
    return out


def _head_bytes(root: Path, path: str) -> bytes | None:
    try:
        return workspace.read_bytes(root / path, root, MAX_FILE_BYTES)
    except (workspace.Refused, OSError):
        return None


def _at(head: Config, path: str) -> SourceLocation:
    where, _, number = path.rpartition(":")
    if number.isdigit() and where:
        return SourceLocation(where, int(number))
    return SourceLocation(head.source or path)


def _finding(message: str, where: SourceLocation, severity: Severity = Severity.WARNING,
             ) -> Finding:
    return Finding(RULE_UNTRUSTED_CONFIG, "input", severity, message, where)


def _show(value: Any, key: str = "") -> str:
    if key == "packs" and not value:
        return "(the default packs)"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, Severity):
        return value.label
    return repr(value) if isinstance(value, str) else str(value)


def _rel(paths: tuple[Path, ...], root: Path) -> tuple[str, ...]:
    out = []
    for p in paths:
        try:
            out.append(p.resolve().relative_to(root.resolve()).as_posix())
        except ValueError:
            out.append(p.as_posix())
    return tuple(out)


def _cluster(head: Cluster, base: Cluster, root: Path, ref: str, config: Config,
             ) -> tuple[Cluster, list[Finding]]:
    """``head`` with the policy selection of ``base``; a finding per setting that differs."""
    label = f"cluster {head.name}" if head.name else "the default cluster"
    where = _at(config, head.source) if head.source else SourceLocation(config.source or ".")
    findings: list[Finding] = []
    pairs: list[tuple[str, Any, Any]] = [
        ("packs", head.packs, base.packs),
        ("policies", _rel(head.policies, root), _rel(base.policies, root)),
        ("overrides", dict(head.overrides), dict(base.overrides)),
        ("snapshot", _rel((head.snapshot,), root) if head.snapshot else (),
         _rel((base.snapshot,), root) if base.snapshot else ()),
    ]
    for key, new, old in pairs:
        if new != old:
            findings.append(_finding(
                f"{label}: the change sets {key} to {_show(new, key)}; this run uses the base "
                f"ref {ref}'s value {_show(old, key)} until the change is merged", where))
    if _rel(head.declared_paths, root) != _rel(base.declared_paths, root):
        findings.append(_finding(
            f"{label}: the change moves its paths from {_show(_rel(base.declared_paths, root))} "
            f"to {_show(_rel(head.declared_paths, root))}; the new paths are checked: review "
            "that nothing the cluster deploys was left out", where, Severity.NOTE))
    kept = replace(head, packs=base.packs, policies=base.policies, overrides=base.overrides,
                   override_sources=base.override_sources, snapshot=base.snapshot)
    return kept, findings


def _removed(base: Cluster, config: Config) -> tuple[Cluster | None, Finding]:
    """A cluster the change deleted from the config: still checked where its paths exist."""
    paths = tuple(p for p in base.paths if p.exists())
    where = SourceLocation(config.source or CONFIG_NAMES[0])
    if not paths:
        return None, _finding(
            f"cluster {base.name} is removed from the config by the change, and none of its "
            "paths exist any more: it is not checked", where)
    return replace(base, paths=paths, syncs=tuple(s for s in base.syncs if s.path in paths)), \
        _finding(f"cluster {base.name} is removed from the config by the change; until it is "
                 "merged the cluster is checked with the base ref's settings", where)


_GLOBAL = ("acceptances", "drift_ignore", "drift_field_managers", "drift_field_types", "limits",
           "not_checked", "allowed_registries", "require_signed", "require_codeowners",
           "admission")
_KEYS = {"acceptances": "acceptances", "drift_ignore": "drift.ignore",
         "drift_field_managers": "drift.fieldManagers", "drift_field_types": "drift.fieldTypes",
         "limits": "limits",
         "not_checked": "coverage.notChecked", "allowed_registries": "images.allowedRegistries",
         "require_signed": "guardrails.requireSignedCommits",
         "require_codeowners": "guardrails.requireCodeowners", "admission": "admission"}


def _describe(name: str, value: Any, root: Path) -> str:
    if name == "acceptances":
        return (f"paths {_show(_rel(value.paths, root))}, inline {value.inline}, "
                f"warnDays {value.warn_days}")
    if name == "admission":
        return (f"mutation {value.mutation}, expansion {value.expansion}, expansionTemplates "
                f"{_show(_rel(value.templates, root))}")
    if name == "limits":
        return f"evaluationSeconds {value.seconds:g}, memoryMiB {value.memory_mb}"
    if name == "drift_field_managers" and value is None:
        return "(the default managers)"
    if name == "drift_field_types":
        return _show(sorted(f"{kind.group}/{kind.kind} /{'/'.join(pattern)}: {typ}"
                            for kind, fields in value.items()
                            for pattern, typ in fields.items()))
    return _show(value)


def _hosts(head: Config, base: Config, ref: str) -> tuple[Config, list[Finding]]:
    """Only hosts the base ref's config already allows are contacted."""
    base_helm = {h.lower() for h in base.helm.allowed_hosts}
    base_remote = {h.lower() for h in base.remote_hosts}
    helm_hosts = tuple(h for h in head.helm.allowed_hosts if h.lower() in base_helm)
    remote = tuple(h for h in head.remote_hosts if h.lower() in base_remote)
    where = SourceLocation(head.source or CONFIG_NAMES[0])
    findings = [
        Finding(RULE_UNTRUSTED_HOST, "input", Severity.WARNING,
                f"{key} entry {host!r} is not in the config on the base ref "
                f"{ref}; it is not contacted until the change is merged", where)
        for key, hosts, kept in (("helm.allowedHosts", head.helm.allowed_hosts, helm_hosts),
                                 ("kustomize.remoteHosts", head.remote_hosts, remote))
        for host in hosts if host not in kept]
    return replace(head, helm=replace(head.helm, allowed_hosts=helm_hosts),
                   remote_hosts=remote), findings


def merge(head: Config, base: Config, root: Path, ref: str) -> tuple[Config, list[Finding]]:
    """``head``'s clusters and paths with every other setting of ``base`` (see the module)."""
    config, findings = _hosts(head, base, ref)
    where = SourceLocation(head.source or CONFIG_NAMES[0])
    changes: dict[str, Any] = {}
    for name in _GLOBAL:
        new, old = getattr(head, name), getattr(base, name)
        if new != old:
            findings.append(_finding(
                f"{_KEYS[name]}: the change sets {_describe(name, new, root)}; this run uses "
                f"the base ref {ref}'s {_describe(name, old, root)} until the change is merged",
                where))
            changes[name] = old
    by_name = {c.name: c for c in base.clusters}
    clusters: list[Cluster] = []
    for cluster in head.clusters:
        old_cluster = by_name.get(cluster.name)
        if old_cluster is None and not cluster.name and base.named and not head.named:
            continue  # the change deleted the config: its clusters are the base ref's
        if old_cluster is None:
            if cluster.name and base.named:
                findings.append(_finding(
                    f"cluster {cluster.name} is new in this change: its policy selection is "
                    "the change's own", _at(head, cluster.source) if cluster.source else where,
                    Severity.NOTE))
            clusters.append(cluster)
            continue
        kept, found = _cluster(cluster, old_cluster, root, ref, head)
        clusters.append(kept)
        findings += found
    names = {c.name for c in head.clusters}
    for gone in base.clusters:
        if gone.name and gone.name not in names:
            still, finding = _removed(gone, head)
            findings.append(finding)
            if still is not None:
                clusters.append(still)
    return replace(config, clusters=tuple(clusters), **changes), findings


@run_budget()  # one alias-expansion budget for every file this reads
def trusted_config(head: Config, approval: BaseApproval, root: Path,
                   config_file: Path | None = None, default_paths: tuple[Path, ...] = (),
                   ) -> tuple[Config, list[Finding]]:
    """The config a pull-request run uses: ``head`` with the base ref's settings.

    The base config is read from git at ``approval``'s commit and resolved against this
    checkout (so Flux and Security Tower inputs are the change's, as they are deployed). A
    base config that cannot be read is an error finding, and the change's own settings are
    used, so the run cannot pass.
    """
    ours, path = _config_path(head, root, config_file)
    if not ours:  # a --config file outside the repository: the workflow's, trusted
        return head, []
    name, blob = _base_bytes(approval, path)
    tower = {n: b for n, b in approval.folder(SECURITY_TOWER_DIR).items()
             if n.endswith((".yaml", ".yml"))}
    if tower == _head_tower(root):
        if blob is None and path is None:  # no config on either side: the defaults
            return head, []
        if blob is not None and path is not None and _head_bytes(root, path) == blob:
            return head, []  # the change leaves the config as it is
    try:
        base = load_config(root, root / name, default_paths, content=blob or b"",
                           security_tower=tower)
    except (ConfigError, yaml.YAMLError) as err:
        return head, [_finding(
            f"the config on the base ref {approval.base} cannot be read ({err}); this run uses "
            "the change's own settings", SourceLocation(head.source or name), Severity.ERROR)]
    return merge(head, base, root, approval.base)


def what_if_config(head: Config, trusted: Config) -> Config:
    """The config the policy-change what-if evaluates: the change's own (policy selection,
    overrides, acceptances, admission...), with the bounds of ``trusted`` (the base ref's,
    as ``trusted_config`` returns it): its evaluation limits and only the hosts it allows.

    The what-if only reports; it never decides the check. The change's settings still must
    not reach the network or outlast the limits the base ref sets (``checker.impact``).
    """
    return replace(head, limits=trusted.limits, helm=trusted.helm,
                   remote_hosts=trusted.remote_hosts)


class TrustedPolicies:
    """Repository policy folders as they are at the base ref (see the module).

    The Rego in a policies folder is part of the pull request too: left to it, a change could
    make its own check green by editing ``violation`` away. With a base ref each folder is
    read from git at the base commit (``checker.drift.trusted.export_policies``, which writes
    regular files only, below ``into``, mirroring the repository so reported paths stay
    repository-relative); a folder the change edits is an ``input.untrusted-config`` warning
    naming the files, and a folder that is not at the base ref is the change's own (a note).
    """

    def __init__(self, root: Path, approval: BaseApproval, into: Path) -> None:
        self.root, self.approval, self.into = root, approval, into
        self.findings: list[Finding] = []
        self._done: dict[Path, tuple[Path, Path]] = {}

    def folder(self, folder: Path) -> tuple[Path, Path]:
        """(root, folder) to load ``folder``'s policies from."""
        from checker.drift.trusted import export_policies
        from checker.errors import InputError

        key = folder.resolve()
        if key in self._done:
            return self._done[key]
        rel = _rel((folder,), self.root)[0]
        where = SourceLocation(rel)
        target = self.into / str(len(self._done))
        try:
            base_root, (base_folder,) = export_policies(self.root, self.approval.commit,
                                                        [folder], target)
        except InputError:
            self.findings.append(_finding(
                f"policies folder {rel} is not on the base ref {self.approval.base}: its "
                "policies are the change's own", where, Severity.NOTE))
            self._done[key] = (self.root, folder)
            return self._done[key]
        changed = sorted(_files(folder).items() ^ _files(base_folder).items())
        names = sorted({name for name, _data in changed})
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5
                                            else "")
            self.findings.append(_finding(
                f"policies folder {rel}: the change edits {shown}; this run evaluates the "
                f"base ref {self.approval.base}'s version until the change is merged", where))
        self._done[key] = (base_root, base_folder)
        return self._done[key]


def _base_object(approval: BaseApproval, res: Resource) -> Resource | None:
    """``res`` as its file holds it at the base ref (same group, kind, namespace and name), or
    None when that file or object is not there or cannot be read."""
    from checker.load.objects import make_resource
    from checker.load.yamlfile import Document, YamlProblem, decode, parse_documents

    blob = approval.blob(res.location.path)
    if blob is None or len(blob) > MAX_FILE_BYTES:
        return None
    try:
        docs = [d for d in parse_documents(decode(blob)) if isinstance(d, Document)]
    except YamlProblem:
        return None
    for doc in docs:
        if not isinstance(doc.data, dict):
            continue
        old = make_resource(doc.data, SourceLocation(res.location.path, doc.line), {})
        if (old.group, old.kind, old.namespace, old.name) == (res.group, res.kind,
                                                              res.namespace, res.name):
            return old
    return None


def trusted_gatekeeper_configs(resources: list[Resource], approval: BaseApproval,
                               ) -> tuple[list[Resource], list[Finding]]:
    """The Gatekeeper ``Config`` objects among a change's manifests, as the base ref has them.

    A Config's ``spec.match`` excludes namespaces from Gatekeeper's webhook and audit, and the
    check follows it (``Evaluator._exclude``): left to the change, one added Config with
    ``excludedNamespaces: [apps]`` would leave every object in ``apps`` unevaluated, a
    privileged Pod included. So with a base ref a Config is used only as it is at the base ref
    (same file, same object): one the change edits is replaced by the base's version, one it
    adds is not used; each is an ``input.untrusted-config`` warning, and the exclusions take
    effect once the change is merged.
    """
    from checker.policy.gatekeeper import is_config

    kept: list[Resource] = []
    findings: list[Finding] = []
    for res in resources:
        if not is_config(res):
            continue
        old = _base_object(approval, res)
        if old is not None and old.body == res.body:
            kept.append(res)
            continue
        what = f"Gatekeeper Config {res.namespace}/{res.name}"
        if old is None:
            message = (f"{what} is new in this change (not in {res.location.path} on the base "
                       f"ref {approval.base}): its namespace exclusions are not applied until "
                       "the change is merged")
        else:
            kept.append(old)
            message = (f"{what}: the change edits it; this run applies the base ref "
                       f"{approval.base}'s namespace exclusions until the change is merged")
        findings.append(_finding(message, res.location))
    return kept, findings


def trusted_admission_policies(resources: list[Resource], approval: BaseApproval,
                               ) -> tuple[list[Resource], list[Finding]]:
    """``resources`` with each ValidatingAdmissionPolicy and binding the change edits put back
    as the base ref has it (same file, same object), for the VAP evaluation.

    A VAP among the manifests judges the objects as the API server will (``checker.policy.vap``),
    so left to the change, a policy whose expression it rewrites to ``true``, or a binding it
    turns from ``Deny`` to ``Audit``, would pass its own check. Edited ones are evaluated as on
    the base ref, each with an ``input.untrusted-config`` warning; ones the change adds are
    evaluated as written (they can only add findings).
    """
    from checker.policy.vap import is_binding, is_policy

    out: list[Resource] = []
    findings: list[Finding] = []
    for res in resources:
        if not (is_policy(res) or is_binding(res)):
            out.append(res)
            continue
        old = _base_object(approval, res)
        if old is None or old.body == res.body:
            out.append(res)
            continue
        out.append(replace(old, cluster=res.cluster))
        findings.append(_finding(
            f"{res.kind} {res.name}: the change edits it; this run evaluates the base ref "
            f"{approval.base}'s version until the change is merged", res.location))
    return out, findings


def _files(folder: Path) -> dict[str, bytes]:
    """The regular files below ``folder`` by relative path, read through the workspace
    boundary (no symlink out, the size limit); one that is refused counts as changed."""
    out: dict[str, bytes] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            try:
                data = workspace.read_bytes(path, folder, MAX_FILE_BYTES)
            except (workspace.Refused, OSError):
                data = b"\0unreadable"
            out[path.relative_to(folder).as_posix()] = data
    return out


# The tree git records per entry: a regular file, an executable, a symlink, a submodule.
_FILE_MODES = ("100644", "100755")
_SYMLINK_MODE = "120000"
_GITLINK_MODE = "160000"
CHECKOUT_HINT = ("actions/checkout with fetch-depth: 0 (a shallow checkout has only the "
                 "head), or `git fetch origin <base>` before the run")


@dataclass(frozen=True)
class BaseTree:
    """The repository root at a base commit, written from git objects (see ``export_tree``)."""

    ref: str     # as given (a branch, a SHA)
    commit: str  # the commit it names
    tree: str    # the git tree id of the root folder at that commit: a digest of its content
    root: Path   # where the root's files were written


def resolve_base(root: Path, ref: str) -> tuple[str, str, str]:
    """(commit, tree id of ``root`` at it, ``root``'s path in the repository) of ``ref``.

    InputError when git does not have the commit here, naming the checkout depth to use.
    """
    from checker.errors import InputError
    from checker.overview.git import Git

    if not ref or ref.startswith("-"):
        raise InputError(f"invalid base {ref!r}")
    with Git(root) as git:
        commit = git.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}",
                         ok=(0, 1)).strip()
        if not commit:
            shallow = " (this clone is shallow)" if git.shallow_commits() else ""
            raise InputError(f"base {ref}: no such commit in {git.top}{shallow}; the delta "
                             f"needs the base commit: {CHECKOUT_HINT}")
        top = git.top.resolve()
        try:
            rel = root.resolve().relative_to(top).as_posix()
        except ValueError:
            raise InputError(f"{root} is outside the git repository {top}") from None
        prefix = "" if rel == "." else rel
        tree = git.run("rev-parse", "--verify", "--quiet", f"{commit}:{prefix}",
                       ok=(0, 1)).strip()
        if not tree:
            raise InputError(f"base {ref} ({commit[:12]}) has no folder {prefix}")
    return commit, tree, prefix


def export_tree(root: Path, ref: str, into: Path) -> BaseTree:
    """``root`` as it is at ``ref``, written below ``into`` from git objects.

    This is how the base side of a delta is read: never from the working tree, which the pull
    request wrote. The objects are read raw (``ls-tree`` and ``cat-file --batch``): no
    checkout, so no filter, smudge, textconv, hook or attribute of the repository runs, and
    no git config of the pull request's tree applies (a commit cannot carry ``.git/config``).
    Regular files are written with their bytes; a symlink is recreated with its target text
    exactly as a checkout would, so the loader's own boundary (``checker.load.workspace``:
    nothing outside the root is read) judges it as it judges the head's; a submodule is an
    empty folder, as in a checkout without submodules. A path with ``..``, an absolute path
    or a ``.git`` part is never written.
    """
    from checker.overview.git import Git

    commit, tree, _prefix = resolve_base(root, ref)
    into.mkdir(parents=True, exist_ok=True)
    top = into.resolve()
    with Git(root) as git:
        listing = git.call("ls-tree", "-r", "-z", "--full-tree", tree)
        if listing.returncode != 0:
            from checker.errors import InputError

            raise InputError(f"base {ref}: git ls-tree failed: "
                             f"{listing.stderr.decode('utf-8', 'replace').strip()}")
        files: list[tuple[str, str, PurePosixPath]] = []
        for entry in listing.stdout.split(b"\0"):
            meta, _, raw = entry.partition(b"\t")
            parts = meta.decode("ascii", "replace").split()
            path = PurePosixPath(raw.decode("utf-8", "surrogateescape"))
            if (len(parts) != 3 or not raw or path.is_absolute() or ".." in path.parts
                    or any(p.lower() == ".git" for p in path.parts)):
                continue
            files.append((parts[0], parts[2], path))
        contents = git.read_many([oid for mode, oid, _ in files if mode != _GITLINK_MODE])
    for mode, oid, path in files:
        target = into.joinpath(*path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(top):
            continue  # a folder on the way is a symlink out: never write through it
        if mode == _GITLINK_MODE:
            target.mkdir(exist_ok=True)
            continue
        data = contents.get(oid)
        if data is None:
            continue
        if mode == _SYMLINK_MODE:
            os.symlink(os.fsdecode(data), target)
        elif mode in _FILE_MODES:
            with open(target, "wb") as handle:  # a new name in a folder we created
                handle.write(data)
            if mode == "100755":
                target.chmod(0o755)
    return BaseTree(ref=ref, commit=commit, tree=tree, root=into)
