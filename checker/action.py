"""GitHub Action entrypoint: ``INPUT_*`` environment -> ScanOptions; files, outputs, summary.

The runner passes each ``with:`` input of a container action as an environment variable
``INPUT_<NAME>``: the input name upper-cased, spaces replaced by ``_``, hyphens *kept*
(``fail-on`` -> ``INPUT_FAIL-ON``). A shell cannot read such a name; Python can, so the
action never goes through a shell and no input is ever interpolated into code.

Contract with the runner (see docs/github-action.md):

- paths given by the user are resolved against ``working-directory`` (itself relative to
  ``GITHUB_WORKSPACE``) and must stay inside the workspace;
- reported file paths are relative to ``working-directory`` (the repository root for
  SARIF); annotations and the ``*-file`` outputs are relative to ``GITHUB_WORKSPACE``,
  where later steps of the job run;
- outputs go to ``GITHUB_OUTPUT``, the Markdown report is appended to
  ``GITHUB_STEP_SUMMARY``, the top findings become ``::error``/``::warning``/``::notice``
  workflow commands;
- the exit code is the CLI's: 0 pass, 1 findings at or above ``fail-on``, 2 usage,
  configuration or tool error.

Drift (``mode: drift`` or ``both``) calls ``checker.drift.run_drift(paths, snapshot, root,
packs=..., policies=...)``, which must return a :class:`~checker.model.Report` of drift
findings (category ``drift``).
When that module is not installed the action exits 2 with "drift support is not installed".
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from checker.errors import CheckerError, ConfigError
from checker.model import Finding, Report, Severity
from checker.options import ScanOptions
from checker.report import Rendered
from checker.report.common import by_severity

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
RESULTS = {EXIT_OK: "pass", EXIT_FINDINGS: "fail", EXIT_ERROR: "error"}
MODES = ("scan", "drift", "both")
FAIL_ON = ("error", "warning", "note", "never")

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
    "acceptance-base": "auto",
    "policies-ref": "",
    "fail-on": "error",
    "sarif-file": "gitops-checker-results/results.sarif",
    "junit-file": "gitops-checker-results/junit.xml",
    "markdown-file": "gitops-checker-results/summary.md",
    "json-file": "",
    "sarif-category": "gitops-checker",
    "annotations": "true",
    "max-annotations": "50",
    "working-directory": "",
}

# Output names; action.yml documents each (a test keeps the two equal).
OUTPUTS = (
    "result", "exit-code", "sarif-file", "junit-file", "markdown-file", "json-file",
    "error-count", "warning-count", "note-count", "total-count", "drift-count",
    "accepted-count",
)

# The ScanOptions field the config input fills (the CLI's --config); without it the input is
# refused rather than ignored. With the input empty, the pipeline finds the default file.
CONFIG_OPTION = "config_file"
FILE_INPUTS = {"sarif": "sarif-file", "junit": "junit-file", "markdown": "markdown-file",
               "json": "json-file"}
COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}
TRUE, FALSE = ("true", "True", "TRUE"), ("false", "False", "FALSE")
RUNNER_UID_HINT = ("the image runs as uid 1001, the user of GitHub-hosted runners; on a runner "
                   "whose workspace belongs to another user see docs/github-action.md")

DriftRunner = Callable[..., Report]


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
    policies_ref: str = ""


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
    max_text = get_input(environ, "max-annotations")
    if not max_text.isdigit():
        raise ActionError(f"input max-annotations: {max_text!r} is not a whole number >= 0")
    paths = split_words(get_input(environ, "paths"), "paths") or (".",)
    snapshot = get_input(environ, "snapshot")
    if mode != "scan" and not snapshot:
        raise ActionError(f"input snapshot: mode {mode} needs a snapshot file")
    return ActionInputs(
        paths=paths,
        packs=split_names(get_input(environ, "packs")),
        policies=split_words(get_input(environ, "policies"), "policies"),
        config=get_input(environ, "config"),
        snapshot=snapshot,
        mode=mode,
        fail_on=None if fail_on_text == "never" else Severity.parse(fail_on_text),
        files={fmt: get_input(environ, name) for fmt, name in FILE_INPUTS.items()},
        sarif_category=get_input(environ, "sarif-category"),
        annotations=annotations_text in TRUE,
        max_annotations=int(max_text),
        working_directory=get_input(environ, "working-directory"),
        acceptance_base=get_input(environ, "acceptance-base") or "auto",
        policies_ref=get_input(environ, "policies-ref"),
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

    def relative(self, path: Path) -> str:
        """Path relative to the workspace with forward slashes ('.' for the workspace)."""
        return Path(os.path.relpath(path, self.root)).as_posix()

    def link_base(self, environ: Mapping[str, str]) -> str:
        """``<server>/<owner>/<repo>/blob/<sha>[/<working dir>]`` for Markdown links."""
        server = environ.get("GITHUB_SERVER_URL", "").rstrip("/")
        repository, sha = environ.get("GITHUB_REPOSITORY", ""), environ.get("GITHUB_SHA", "")
        if not (server and repository and sha):
            return ""
        sub = self.relative(self.workdir)
        return f"{server}/{repository}/blob/{sha}" + ("" if sub == "." else f"/{sub}")


def acceptance_base(value: str, environ: Mapping[str, str], workdir: Path) -> str:
    """The ref acceptances must already be on (four eyes), from the ``acceptance-base`` input.

    ``none``: every acceptance counts. ``auto`` (the default): in a pull-request run the
    commit the pull request is merged into (the first parent of the checked-out merge commit,
    else the event's ``pull_request.base.sha``), elsewhere none. Anything else is a ref.
    """
    if value == "none":
        return ""
    if value != "auto":
        if value.startswith("-"):
            raise ActionError(f"input acceptance-base: {value!r} is not a ref")
        return value
    from checker.drift.trusted import PULL_REQUEST_EVENTS

    if environ.get("GITHUB_EVENT_NAME", "") not in PULL_REQUEST_EVENTS:
        return ""
    import json
    import subprocess

    base = ""
    event_path = environ.get("GITHUB_EVENT_PATH", "")
    if event_path:
        try:
            with open(event_path, encoding="utf-8") as handle:
                event = json.load(handle)
            base = str(((event.get("pull_request") or {}).get("base") or {}).get("sha") or "")
        except (OSError, ValueError, AttributeError):
            base = ""
    parents = subprocess.run(["git", "-C", str(workdir), "rev-list", "--parents", "-n", "1",
                              "HEAD"], capture_output=True, text=True, timeout=60,
                             check=False).stdout.split()
    if len(parents) == 3:  # the merge commit GitHub checks out: its first parent is the base
        return parents[1]
    if base:
        return base
    raise ActionError("input acceptance-base: auto cannot tell this pull request's base (no "
                      "merge commit and no pull_request.base.sha); check out the merge commit "
                      "with fetch-depth: 2, or give the base ref")


def build_options(inputs: ActionInputs, space: Workspace, link_base: str,
                  environ: Mapping[str, str] | None = None) -> ScanOptions:
    """The same ScanOptions the CLI builds, from the action's inputs."""
    extra: dict[str, Any] = {}
    if inputs.config:
        if CONFIG_OPTION not in {f.name for f in dataclasses.fields(ScanOptions)}:
            raise ActionError("input config: repository config files are not supported by this "
                              "version of gitops-checker")
        config = space.resolve(inputs.config, "config")
        if not config.is_file():
            raise ActionError(f"input config: {inputs.config} is not a file in the workspace")
        extra[CONFIG_OPTION] = config
    return ScanOptions(
        paths=tuple(space.resolve(p, "paths") for p in inputs.paths),
        root=space.workdir,
        packs=inputs.packs,
        policies=tuple(space.resolve(p, "policies") for p in inputs.policies),
        fail_on=inputs.fail_on,
        link_base=link_base,
        sarif_category=inputs.sarif_category,
        accept_base=acceptance_base(inputs.acceptance_base, environ or {}, space.workdir),
        **extra,
    )


def drift_runner() -> DriftRunner:
    """``checker.drift.run_drift``, or an ActionError when drift support is not installed."""
    try:
        module = importlib.import_module("checker.drift")
    except ModuleNotFoundError as err:
        if err.name != "checker.drift":
            raise  # a broken drift module is a tool error, not "not installed"
        raise ActionError("drift support is not installed (mode drift/both needs "
                          "checker.drift.run_drift)") from None
    runner = getattr(module, "run_drift", None)
    if not callable(runner):
        raise ActionError("drift support is not installed (checker.drift has no run_drift)")
    return runner  # type: ignore[no-any-return]


def _identity(finding: Finding) -> tuple[object, ...]:
    """What makes two findings the same problem, whichever run (and cluster) reported it."""
    return (finding.rule_id, finding.location, finding.resource, finding.message)


def merge(first: Report, second: Report) -> Report:
    """One report from a scan and a drift run: findings, rules and errors together.

    Both runs load the same manifests, so a file that cannot be loaded is reported by each;
    a finding of the drift run that is not drift and that the scan already has is kept once.
    The drift run's summary (coverage, for the Markdown drift section) is kept.
    """
    seen = {_identity(f) for f in first.findings}
    extra = [f for f in second.findings if f.category == "drift" or _identity(f) not in seen]
    merged = dataclasses.replace(
        first,
        findings=tuple(sorted((*first.findings, *extra), key=Finding.sort_key)),
        rules=dict(sorted({**second.rules, **first.rules}.items())),
        clusters=tuple(dict.fromkeys((*first.clusters, *second.clusters))),
        errors=tuple(dict.fromkeys((*first.errors, *second.errors))),
        drift_summary=second.drift_summary or first.drift_summary,
    )
    return merged


def run_checks(inputs: ActionInputs, options: ScanOptions, space: Workspace) -> Report:
    """Scan, drift, or both, as ``mode`` says; drift's inputs are checked before the scan."""
    from checker.pipeline import scan

    drift: DriftRunner | None = None
    snapshot = Path()
    if inputs.mode in ("drift", "both"):
        snapshot = space.resolve(inputs.snapshot, "snapshot")
        if not snapshot.is_file():
            raise ActionError(f"input snapshot: {inputs.snapshot} is not a file in the workspace")
        drift = drift_runner()
    report: Report | None = scan(options) if inputs.mode in ("scan", "both") else None
    if drift is not None:
        drifted = drift(options.paths, snapshot, options.root, packs=options.packs,
                        policies=options.policies, fail_on=options.fail_on,
                        link_base=options.link_base, sarif_category=options.sarif_category,
                        **({"policies_ref": inputs.policies_ref} if inputs.policies_ref else {}))
        report = drifted if report is None else merge(report, drifted)
    assert report is not None
    return report


# -- workflow commands -------------------------------------------------------------------


def escape_data(text: str) -> str:
    """Escape a workflow command's message: ``%``, CR and LF."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command property value: also ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str | int | None) -> str:
    """``::name key=value,...::message`` with GitHub's escaping."""
    props = ",".join(f"{key}={escape_property(str(value))}"
                     for key, value in properties.items() if value is not None and value != "")
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def _is_secret(finding: Finding) -> bool:
    return finding.resource.split(" ", 1)[0] == "Secret"


def annotation(finding: Finding, report: Report, prefix: str) -> str:
    """One workflow command for a finding, its file relative to the workspace.

    A finding on a Secret is annotated with the rule title only: a policy message may quote
    the object's data, and annotations are visible to everyone who can read the run.
    """
    rule = report.rules.get(finding.rule_id)
    title = f"{rule.title} ({finding.rule_id})" if rule and rule.title else finding.rule_id
    if _is_secret(finding):
        message = f"{rule.title if rule and rule.title else finding.rule_id} ({finding.resource})"
    else:
        message = finding.message + (f" ({finding.resource})" if finding.resource else "")
    if finding.cluster:
        message += f" [cluster {finding.cluster}]"
    loc = finding.location
    end_line = loc.end_line if loc.end_line is not None and loc.end_line >= loc.line else None
    end_column = loc.end_column if end_line == loc.line else None
    return command(
        COMMAND[finding.severity], message or finding.rule_id,
        file=f"{prefix}{loc.path}", line=max(loc.line, 1), col=max(loc.column, 1),
        endLine=end_line, endColumn=end_column, title=title,
    )


def annotation_commands(report: Report, limit: int, prefix: str = "") -> list[str]:
    """The ``limit`` most severe active findings as workflow commands, then a notice of the rest.

    ``prefix`` turns a path relative to the scan root into one relative to the workspace.
    """
    active = by_severity(report.active)
    lines = [annotation(f, report, prefix) for f in active[:limit]]
    if len(active) > limit:
        lines.append(command("notice", f"{len(active) - limit} more findings are not annotated "
                             f"(max-annotations is {limit}); see the job summary",
                             title="gitops-checker"))
    return lines


def guarded(text: str) -> str:
    """``text`` with workflow-command processing stopped, so manifest content cannot inject.

    The resume token is a hash of the text itself: a line of the text can never equal it,
    and the log stays byte-for-byte reproducible.
    """
    token = "gitops-checker-" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"::stop-commands::{token}\n{body}::{token}::\n"


def output_lines(outputs: Mapping[str, str]) -> str:
    """``GITHUB_OUTPUT`` content: ``name=value``, or ``name<<DELIM`` for multi-line values."""
    out = []
    for name, value in outputs.items():
        if "\n" in value or "\r" in value:
            delimiter = "EOF_" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:20]
            out.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
        else:
            out.append(f"{name}={value}\n")
    return "".join(out)


def append(path: str, text: str, what: str) -> None:
    """Append to a runner file command (``GITHUB_OUTPUT``, ``GITHUB_STEP_SUMMARY``)."""
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as err:
        raise ActionError(
            f"cannot write {what} {path}: {err.strerror} ({RUNNER_UID_HINT})") from None


def outputs_for(report: Report | None, code: int, written: Mapping[str, str]) -> dict[str, str]:
    """Every output of the action; counts are empty when no report was produced."""
    out = {"result": RESULTS[code], "exit-code": str(code)}
    for fmt, name in FILE_INPUTS.items():
        out[name] = written.get(fmt, "")
    counts: dict[str, int] = {}
    if report is not None:
        active = report.active
        counts = {f"{label}-count": n for label, n in report.counts().items()}
        counts["total-count"] = len(active)
        counts["drift-count"] = sum(1 for f in active if f.category == "drift")
        counts["accepted-count"] = len(report.suppressed)
    for name in OUTPUTS[len(out):]:
        out[name] = str(counts[name]) if name in counts else ""
    return out


def report_files(inputs: ActionInputs, space: Workspace) -> dict[str, Path]:
    """Format -> file to write, resolved and checked before anything runs."""
    return {fmt: space.resolve(given, FILE_INPUTS[fmt])
            for fmt, given in sorted(inputs.files.items()) if given}


def write_reports(rendered: Rendered, files: Mapping[str, Path],
                  space: Workspace) -> dict[str, str]:
    """Write every requested format; return format -> path relative to the workspace."""
    written: dict[str, str] = {}
    for fmt, path in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rendered[fmt], encoding="utf-8")
        except OSError as err:
            raise ActionError(f"cannot write {space.relative(path)}: {err.strerror} "
                              f"({RUNNER_UID_HINT})") from None
        written[fmt] = space.relative(path)
    return written


def run(environ: Mapping[str, str], stdout: TextIO) -> int:
    """Run the action in ``environ``; print commands and the log to ``stdout``; return the code."""
    report: Report | None = None
    written: dict[str, str] = {}
    try:
        inputs = parse_inputs(environ)
        space = Workspace.from_env(environ, inputs.working_directory)
        if inputs.mode != "scan":
            from checker.drift.trusted import pull_request_job

            why = pull_request_job(environ)
            if why:
                raise ActionError(f"mode {inputs.mode}: drift compares live cluster data and "
                                  f"is refused in a pull-request run ({why}); run it on the "
                                  "default branch (see docs/security.md)")
        options = build_options(inputs, space, space.link_base(environ), environ)
        files = report_files(inputs, space)
        report = run_checks(inputs, options, space)
        rendered = Rendered(report)
        rendered.prepare([*files, "text",
                          *(["markdown"] if environ.get("GITHUB_STEP_SUMMARY") else [])])
        written = write_reports(rendered, files, space)
        from checker.pipeline import exit_code
        code = exit_code(report, inputs.fail_on)
        prefix = space.relative(space.workdir)
        prefix = "" if prefix == "." else prefix + "/"
        if inputs.annotations:
            for line in annotation_commands(report, inputs.max_annotations, prefix):
                stdout.write(line + "\n")
        for problem in report.errors:
            stdout.write(command("error", problem, title="gitops-checker") + "\n")
        stdout.write(guarded(rendered["text"]))
        summary = environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            append(summary, rendered["markdown"] + "\n", "GITHUB_STEP_SUMMARY")
    except CheckerError as err:
        stdout.write(command("error", str(err), title="gitops-checker") + "\n")
        code = EXIT_ERROR
    target = environ.get("GITHUB_OUTPUT")
    if target:
        try:
            append(target, output_lines(outputs_for(report, code, written)), "GITHUB_OUTPUT")
        except ActionError as err:
            stdout.write(command("error", str(err), title="gitops-checker") + "\n")
            code = EXIT_ERROR
    stdout.flush()
    return code


def main() -> None:
    """Console entry point ``gitops-checker-action``; no traceback reaches the log."""
    try:
        code = run(os.environ, sys.stdout)
    except Exception as err:  # a tool error must never look like "no findings"
        if "GITOPS_CHECKER_DEBUG" in os.environ:
            raise
        sys.stdout.write(command("error", f"internal error: {type(err).__name__}: {err}",
                                 title="gitops-checker") + "\n")
        code = EXIT_ERROR
        target = os.environ.get("GITHUB_OUTPUT")
        if target:
            with contextlib.suppress(ActionError):  # already failing with the internal error
                append(target, output_lines(outputs_for(None, code, {})), "GITHUB_OUTPUT")
    sys.exit(code)


if __name__ == "__main__":
    main()
