"""The Action's inputs: ``INPUT_*`` environment -> :class:`ActionInputs` -> ScanOptions.

The runner passes each ``with:`` input of a container action as an environment variable
``INPUT_<NAME>``: the input name upper-cased, spaces replaced by ``_``, hyphens *kept*
(``fail-on`` -> ``INPUT_FAIL-ON``). A shell cannot read such a name; Python can, so the
action never goes through a shell and no input is ever interpolated into code. Paths given by
the user are resolved against ``working-directory`` and must stay inside the workspace.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Mapping
from pathlib import Path

from checker.delta import GATES
from checker.errors import ConfigError
from checker.model import Severity
from checker.options import FAIL_ON, ScanOptions, parse_fail_on
from checker.report import FILE_FORMATS, FORMATS

MODES = ("scan", "drift", "both", "matrix", "merge")

# The report files: a ``<format>-file`` input per file format of the renderer registry.
FILE_INPUTS = {name: f"{name}-file" for name in FILE_FORMATS}

# Every input and its default. action.yml repeats these (a test keeps the two equal) so that
# a step using the prebuilt image (``uses: docker://...``), which gets no defaults from
# action.yml, behaves exactly like ``uses: <owner>/<repo>@<ref>``.
DEFAULTS: dict[str, str] = {
    "paths": ".",
    "packs": "",
    "policies": "",
    "config": "",
    "snapshot": "",
    "mode": "scan",
    "clusters": "",
    "shard": "",
    "shard-reports": "",
    "acceptance-base": "auto",
    "base": "auto",
    "gate": "all",
    "cache-dir": "",
    "policies-ref": "",
    "fail-on": "error",
    **{FILE_INPUTS[name]: FORMATS[name].action_file for name in FILE_FORMATS},
    "evidence": "",
    "evidence-statement": "",
    "sarif-category": "gitops-checker",
    "annotations": "true",
    "max-annotations": "50",
    "comment": "false",
    "policy-impact": "true",
    "github-token": "",  # read by checker.action.comment only, never stored or logged
    "working-directory": "",
}


TRUE, FALSE = ("true", "True", "TRUE"), ("false", "False", "FALSE")
RUNNER_UID_HINT = ("the image runs as uid 1001, the user of GitHub-hosted runners; on a runner "
                   "whose workspace belongs to another user see docs/github-action.md")


class ActionError(ConfigError):
    """An input is invalid or the runner environment is unusable (exit 2)."""



@dataclasses.dataclass(frozen=True)
class ActionInputs:
    """The action's inputs, parsed and validated but not yet resolved against the workspace."""

    paths: tuple[str, ...]
    packs: tuple[str, ...]
    policies: tuple[str, ...]
    config: str
    snapshot: str
    mode: str
    fail_on: Severity | None
    files: dict[str, str]
    sarif_category: str
    annotations: bool
    max_annotations: int
    working_directory: str
    acceptance_base: str = "auto"
    base: str = "auto"             # the delta's base: auto, none or a ref
    gate: str = "all"              # what the exit code weighs: all, or the new findings
    cache_dir: str = ""            # base results by content digest (outside the checkout)
    policies_ref: str = ""
    comment: bool = False          # the sticky pull-request comment (checker.action.comment)
    policy_impact: bool = True     # the policy change's what-if (checker.impact)
    evidence: str = ""             # evidence
    statement: str = ""            # evidence-statement
    clusters: tuple[str, ...] = ()  # clusters: only these configured clusters (mode scan)
    shard: tuple[int, int] | None = None  # shard: I/N of the configured clusters (mode scan)
    shard_reports: tuple[str, ...] = ()  # shard-reports: the JSON reports mode merge reads


def input_variable(name: str) -> str:
    """The environment variable the runner sets for input ``name`` (hyphens kept)."""
    return "INPUT_" + name.replace(" ", "_").upper()


def get_input(environ: Mapping[str, str], name: str) -> str:
    """Value of input ``name``, stripped, or its default when the runner did not set it.

    ``INPUT_FAIL_ON`` is accepted when ``INPUT_FAIL-ON`` is absent, for ``docker run -e``
    from a shell, which cannot name a variable with a hyphen.
    """
    value = environ.get(input_variable(name))
    if value is None and "-" in name:
        value = environ.get(input_variable(name.replace("-", "_")))
    return (DEFAULTS[name] if value is None else value).strip()


def split_words(text: str, name: str) -> tuple[str, ...]:
    """One or more values per line, separated by spaces; quotes keep a value with spaces."""
    words: list[str] = []
    for line in text.splitlines():
        try:
            words += shlex.split(line, comments=False, posix=True)
        except ValueError as err:
            raise ActionError(f"input {name}: cannot split {line.strip()!r}: {err}") from None
    return tuple(words)


def split_names(text: str) -> tuple[str, ...]:
    """Names separated by commas, spaces or newlines (packs)."""
    return tuple(part for part in text.replace(",", " ").split() if part)


def parse_inputs(environ: Mapping[str, str]) -> ActionInputs:
    """Read and validate every input; a bad value is an :class:`ActionError` naming it."""
    mode = get_input(environ, "mode").lower()
    if mode not in MODES:
        raise ActionError(f"input mode: {mode!r} is not one of {', '.join(MODES)}")
    fail_on_text = get_input(environ, "fail-on").lower()
    if fail_on_text not in FAIL_ON:
        raise ActionError(f"input fail-on: {fail_on_text!r} is not one of {', '.join(FAIL_ON)}")
    annotations_text = get_input(environ, "annotations")
    if annotations_text not in TRUE + FALSE:
        raise ActionError(f"input annotations: {annotations_text!r} is not true or false")
    comment_text = get_input(environ, "comment") or "false"
    if comment_text not in TRUE + FALSE:
        raise ActionError(f"input comment: {comment_text!r} is not true or false")
    impact_text = get_input(environ, "policy-impact") or "true"
    if impact_text not in TRUE + FALSE:
        raise ActionError(f"input policy-impact: {impact_text!r} is not true or false")
    max_text = get_input(environ, "max-annotations")
    if not max_text.isdigit():
        raise ActionError(f"input max-annotations: {max_text!r} is not a whole number >= 0")
    gate = get_input(environ, "gate").lower() or "all"
    if gate not in GATES:
        raise ActionError(f"input gate: {gate!r} is not one of {', '.join(GATES)}")
    paths = split_words(get_input(environ, "paths"), "paths") or (".",)
    snapshot = get_input(environ, "snapshot")
    if mode in ("drift", "both") and not snapshot:
        raise ActionError(f"input snapshot: mode {mode} needs a snapshot file")
    clusters = split_names(get_input(environ, "clusters"))
    shard_text = get_input(environ, "shard")
    shard = None
    if shard_text:
        from checker.fleet import parse_shard

        try:
            shard = parse_shard(shard_text)
        except ConfigError as err:
            raise ActionError(f"input shard: {err}") from None
    if (clusters or shard) and mode != "scan":
        raise ActionError(f"inputs clusters and shard: mode {mode} checks no part of a fleet "
                          "(they select the clusters of mode scan)")
    shard_reports = split_words(get_input(environ, "shard-reports"), "shard-reports")
    if mode == "merge" and not shard_reports:
        raise ActionError("input shard-reports: mode merge needs the shards' JSON reports "
                          "(files, or folders searched for *.json)")
    return ActionInputs(
        paths=paths,
        packs=split_names(get_input(environ, "packs")),
        policies=split_words(get_input(environ, "policies"), "policies"),
        config=get_input(environ, "config"),
        snapshot=snapshot,
        mode=mode,
        fail_on=parse_fail_on(fail_on_text),
        files={fmt: get_input(environ, name) for fmt, name in FILE_INPUTS.items()},
        sarif_category=get_input(environ, "sarif-category"),
        annotations=annotations_text in TRUE,
        max_annotations=int(max_text),
        working_directory=get_input(environ, "working-directory"),
        acceptance_base=get_input(environ, "acceptance-base") or "auto",
        base=get_input(environ, "base") or "auto",
        gate=gate,
        cache_dir=get_input(environ, "cache-dir"),
        policies_ref=get_input(environ, "policies-ref"),
        comment=comment_text in TRUE,
        policy_impact=impact_text in TRUE,
        evidence=get_input(environ, "evidence"),
        statement=get_input(environ, "evidence-statement"),
        clusters=clusters,
        shard=shard,
        shard_reports=shard_reports,
    )


@dataclasses.dataclass(frozen=True)
class Workspace:
    """``GITHUB_WORKSPACE`` and the working directory inside it (both resolved)."""

    root: Path
    workdir: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str], working_directory: str) -> Workspace:
        """Resolve the workspace (default: the current directory) and the working directory."""
        root = Path(environ.get("GITHUB_WORKSPACE") or os.getcwd()).resolve()
        if not root.is_dir():
            raise ActionError(f"GITHUB_WORKSPACE {root} is not a directory")
        space = cls(root, root)
        workdir = space.resolve(working_directory or ".", "working-directory")
        if not workdir.is_dir():
            raise ActionError(f"input working-directory: {working_directory} is not a directory "
                              "in the workspace")
        return cls(root, workdir)

    def resolve(self, given: str, name: str) -> Path:
        """``given`` relative to the working directory; it must stay inside the workspace."""
        path = (self.workdir / given).resolve()
        if path != self.root and self.root not in path.parents:
            raise ActionError(f"input {name}: {given} is outside the workspace {self.root}")
        return path

    def resolve_outside(self, given: str, name: str) -> Path:
        """``given`` (absolute, or relative to the working directory) that must be outside
        the workspace: a folder a pull request could write into must not hold trusted data."""
        path = (self.workdir / given).resolve()
        if path == self.root or self.root in path.parents:
            raise ActionError(f"input {name}: {given} is inside the workspace {self.root}; a "
                              "pull request could commit files there (use e.g. "
                              "${{ runner.temp }}/gitops-checker-cache)")
        return path

    def relative(self, path: Path) -> str:
        """Path relative to the workspace with forward slashes ('.' for the workspace)."""
        return Path(os.path.relpath(path, self.root)).as_posix()

    def repository(self) -> Path:
        """The root of the repository the working directory is in.

        The top of its git work tree when that is inside the workspace (``actions/checkout``
        with ``path: repo`` makes ``repo/`` one; a working directory below it is a folder of
        the repository), else the working directory itself, as the input documents.
        """
        from checker.changes import repository_top

        top = repository_top(self.workdir)
        if top is not None and (top == self.root or self.root in top.parents) and (
                top == self.workdir or top in self.workdir.parents):
            return top
        return self.workdir

    def repository_prefix(self) -> str:
        """Where the working directory is in the repository ("" at its root)."""
        sub = Path(os.path.relpath(self.workdir, self.repository())).as_posix()
        return "" if sub == "." else sub

    def link_base(self, environ: Mapping[str, str]) -> str:
        """``<server>/<owner>/<repo>/blob/<sha>`` for Markdown links to repository paths.

        The commit is the pull request's head (``pull_request.head.sha`` of the event) in a
        pull-request run, where ``GITHUB_SHA`` is a merge commit GitHub may not keep; else
        ``GITHUB_SHA``. Paths are appended relative to the repository root.
        """
        server = environ.get("GITHUB_SERVER_URL", "").rstrip("/")
        repository = environ.get("GITHUB_REPOSITORY", "")
        sha = pull_request_sha(environ, "head") or environ.get("GITHUB_SHA", "")
        if not (server and repository and sha):
            return ""
        return f"{server}/{repository}/blob/{sha}"


def pull_request_sha(environ: Mapping[str, str], side: str) -> str:
    """``pull_request.<side>.sha`` of the run's event file ("" when there is none).

    Only a full hexadecimal commit id is taken: the value becomes part of URLs and git
    arguments.
    """
    from checker.drift.trusted import PULL_REQUEST_EVENTS

    path = environ.get("GITHUB_EVENT_PATH", "")
    if environ.get("GITHUB_EVENT_NAME", "") not in PULL_REQUEST_EVENTS or not path:
        return ""
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            event = json.load(handle)
        sha = str(((event.get("pull_request") or {}).get(side) or {}).get("sha") or "")
    except (OSError, ValueError, AttributeError):
        return ""
    return sha.lower() if len(sha) in (40, 64) and all(
        c in "0123456789abcdefABCDEF" for c in sha) else ""


def acceptance_base(value: str, environ: Mapping[str, str], workdir: Path,
                    name: str = "acceptance-base") -> str:
    """The ref acceptances must already be on (four eyes), from the ``acceptance-base`` input
    (``name``: the ``base`` input of the delta reads the same way).

    ``none``: every acceptance counts. ``auto`` (the default): in a pull-request run the
    commit the pull request is merged into (the first parent of the checked-out merge commit,
    else the event's ``pull_request.base.sha``), elsewhere none. Anything else is a ref.
    """
    if value == "none":
        return ""
    if value != "auto":
        if value.startswith("-"):
            raise ActionError(f"input {name}: {value!r} is not a ref")
        return value
    from checker.drift.trusted import PULL_REQUEST_EVENTS

    if environ.get("GITHUB_EVENT_NAME", "") not in PULL_REQUEST_EVENTS:
        return ""
    import subprocess

    base = pull_request_sha(environ, "base")
    parents = subprocess.run(["git", "-C", str(workdir), "rev-list", "--parents", "-n", "1",
                              "HEAD"], capture_output=True, text=True, timeout=60,
                             check=False).stdout.split()
    if len(parents) == 3:  # the merge commit GitHub checks out: its first parent is the base
        return parents[1]
    if base:
        return base
    raise ActionError(f"input {name}: auto cannot tell this pull request's base (no "
                      "merge commit and no pull_request.base.sha); check out the merge commit "
                      "with fetch-depth: 2, or give the base ref")


def build_options(inputs: ActionInputs, space: Workspace, link_base: str,
                  environ: Mapping[str, str] | None = None) -> ScanOptions:
    """The same ScanOptions the CLI builds, from the action's inputs."""
    config: Path | None = None  # the CLI's --config; empty: the pipeline finds the default file
    if inputs.config:
        config = space.resolve(inputs.config, "config")
        if not config.is_file():
            raise ActionError(f"input config: {inputs.config} is not a file in the workspace")
    accept = acceptance_base(inputs.acceptance_base, environ or {}, space.workdir)
    # auto: the pull request's base, unless four eyes are switched off (acceptance-base none:
    # the delta trusts its base, so it would switch them on again)
    auto = inputs.base == "auto"
    base = ("" if auto and (inputs.mode != "scan" or inputs.acceptance_base == "none") else
            acceptance_base(inputs.base, environ or {}, space.workdir, "base"))
    if base and inputs.mode != "scan":
        raise ActionError(f"input base: the delta is of scans; mode {inputs.mode} compares "
                          "live objects and has no base (set base: none)")
    if base and inputs.acceptance_base in ("auto", "none"):
        accept = base  # a delta trusts its base: config, policies and acceptances from it
    return ScanOptions(
        paths=tuple(space.resolve(p, "paths") for p in inputs.paths),
        root=space.workdir,
        packs=inputs.packs,
        policies=tuple(space.resolve(p, "policies") for p in inputs.policies),
        fail_on=inputs.fail_on,
        link_base=link_base,
        sarif_category=inputs.sarif_category,
        accept_base=accept,
        base=base,
        gate=inputs.gate,
        cache_dir=(space.resolve_outside(inputs.cache_dir, "cache-dir") if inputs.cache_dir
                   else None),
        config_file=config,
        what_if=inputs.policy_impact,
        clusters=inputs.clusters,
        shard=inputs.shard,
    )
