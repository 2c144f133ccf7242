"""What may run on live data: trusted policies only, and never in a pull-request job.

A job that sees live objects (a snapshot file or the API) must not run anything the pull
request controls on them, or a policy from the pull request could copy live data (a
ConfigMap's values, an annotation) into its messages, and with them into the job summary.
The trusted policies are the built-in packs (shipped with the tool) and the repository's own
policies *as they are at a ref the workflow names* (``--policies-ref``, e.g. the default
branch): those are read from git, not from the working tree, which a pull request may have
changed. In a pull-request job (GitHub ``pull_request``/``pull_request_target``, a GitLab
merge-request pipeline, a Jenkins change request) drift refuses to run at all: its findings
show live values, and Secret comparison would confirm guessed values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from checker.errors import ConfigError, InputError
from checker.overview.git import Git

PULL_REQUEST_EVENTS = frozenset({"pull_request", "pull_request_target"})


def pull_request_job(environ: Mapping[str, str] | None = None) -> str:
    """Why the environment says this job runs for a pull or merge request (empty if not)."""
    env = os.environ if environ is None else environ
    event = env.get("GITHUB_EVENT_NAME", "")
    if event in PULL_REQUEST_EVENTS:
        return f"GITHUB_EVENT_NAME={event}"
    if env.get("CI_PIPELINE_SOURCE") == "merge_request_event":
        return "CI_PIPELINE_SOURCE=merge_request_event"
    if env.get("CHANGE_ID"):
        return "CHANGE_ID is set (a Jenkins change request)"
    return ""


def refuse_in_pull_request(environ: Mapping[str, str] | None = None) -> None:
    """ConfigError when live data would meet a pull request's content."""
    why = pull_request_job(environ)
    if why:
        raise ConfigError(
            f"drift reads live cluster data and is refused in a pull-request job ({why}): "
            "its findings show live values and a pull request could choose what is compared. "
            "Run drift on the default branch (see docs/security.md)")


def _inside(folder: Path, top: Path) -> str:
    """``folder`` relative to the repository top (as given, else with symlinks resolved)."""
    for candidate in (Path(os.path.abspath(folder)), folder.resolve()):
        try:
            return candidate.relative_to(top).as_posix()
        except ValueError:
            continue
    raise InputError(f"policies folder {folder} is outside the git repository {top}")


def export_policies(root: Path, ref: str, folders: Sequence[Path], into: Path,
                    ) -> tuple[Path, tuple[Path, ...]]:
    """The policy folders as they are at ``ref``, written below ``into``.

    Only regular files of the ref's tree are written (no symlinks, no submodules); the layout
    below ``into`` mirrors the repository, so reported paths stay repository-relative. Returns
    the root and the folders inside ``into``. InputError when ``ref`` or a folder is unknown.
    """
    if not ref or ref.startswith("-"):
        raise InputError(f"invalid --policies-ref {ref!r}")
    with Git(root) as git:
        commit = git.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}",
                         ok=(0, 1)).strip()
        if not commit:
            raise InputError(f"--policies-ref {ref}: no such commit in {git.top} (fetch it: "
                             "actions/checkout with fetch-depth: 0)")
        top = git.top.resolve()
        try:
            root_rel = root.resolve().relative_to(top)
        except ValueError:
            raise InputError(f"{root} is outside the git repository {top}") from None
        out_folders = []
        for folder in folders:
            rel = _inside(folder, top)
            listing = git.run("ls-tree", "-r", "-z", "--full-tree", commit, "--", rel)
            blobs = []
            for entry in listing.split("\0"):
                meta, _, path = entry.partition("\t")
                parts = meta.split()
                if len(parts) == 3 and parts[1] == "blob" and parts[0] in ("100644", "100755"):
                    blobs.append((parts[2], path))
            if not blobs:
                raise InputError(f"policies folder {rel} has no files at {ref} ({commit[:12]})")
            contents = git.read_many([oid for oid, _ in blobs])
            for oid, path in blobs:
                data = contents.get(oid)
                pure = PurePosixPath(path)
                if data is None or ".." in pure.parts or pure.is_absolute():
                    continue
                target = into.joinpath(*pure.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            out_folders.append(into.joinpath(*PurePosixPath(rel).parts))
    return into.joinpath(*root_rel.parts), tuple(out_folders)
