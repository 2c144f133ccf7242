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
import importlib
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

from checker.action.inputs import (
    ActionError,
    ActionInputs,
    Workspace,
    build_options,
    input_variable,
    parse_inputs,
)
from checker.action.outputs import (
    annotation_commands,
    append,
    command,
    guarded,
    output_lines,
    outputs_for,
    report_files,
    write_reports,
)
from checker.errors import EXIT_ERROR, CheckerError
from checker.model import Finding, Report
from checker.options import ScanOptions
from checker.report import Rendered

DriftRunner = Callable[..., Report]


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
        if inputs.comment:
            from checker.action.comment import post

            token = (environ.get(input_variable("github-token"))
                     or environ.get(input_variable("github_token")) or "")
            post(report, environ, token.strip(), inputs.sarif_category, stdout,
                 space.link_base(environ))
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
