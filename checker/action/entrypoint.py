"""GitHub Action entrypoint: ``INPUT_*`` environment -> ScanOptions; files, outputs, summary.

The runner passes each ``with:`` input of a container action as an environment variable
``INPUT_<NAME>``: the input name upper-cased, spaces replaced by ``_``, hyphens *kept*
(``fail-on`` -> ``INPUT_FAIL-ON``). A shell cannot read such a name; Python can, so the
action never goes through a shell and no input is ever interpolated into code.

Contract with the runner (see docs/github-action.md):

- paths given by the user are resolved against ``working-directory`` (itself relative to
  ``GITHUB_WORKSPACE``) and must stay inside the workspace;
- reported file paths (annotations, summary links, SARIF, every report) are relative to the
  repository root: the top of the git work tree ``working-directory`` is in (else
  ``working-directory`` itself); the ``*-file`` outputs are relative to ``GITHUB_WORKSPACE``,
  where later steps of the job run; links go to the pull request's head commit;
- outputs go to ``GITHUB_OUTPUT``, the Markdown report is appended to
  ``GITHUB_STEP_SUMMARY``, the top findings become ``::error``/``::warning``/``::notice``
  workflow commands;
- the exit code is the CLI's: 0 pass, 1 findings at or above ``fail-on``, 2 usage,
  configuration or tool error.

The modes are configurations of the one pipeline (``checker.pipeline.run``): ``scan`` runs
the admit stage, ``drift`` the drift stage against the ``snapshot`` file, ``both`` the two in
one run, so every finding, drift included, goes through acceptance once and one Report comes
back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from checker import pipeline
from checker.action.inputs import (
    ActionError,
    ActionInputs,
    Workspace,
    acceptance_base,
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
from checker.assemble import annotation_selection, exit_code, relocate
from checker.changes import Changes
from checker.errors import EXIT_ERROR, EXIT_OK, CheckerError
from checker.model import Report
from checker.options import DriftRunOptions, ScanOptions
from checker.parallel import render_all
from checker.pipeline import SCAN, Stages
from checker.report import FORMATS


def stages(inputs: ActionInputs, options: ScanOptions, space: Workspace) -> Stages:
    """The pipeline stages of ``mode``; the snapshot is checked before anything runs."""
    if inputs.mode in ("scan", "merge"):
        return SCAN
    snapshot = space.resolve(inputs.snapshot, "snapshot")
    if not snapshot.is_file():
        raise ActionError(f"input snapshot: {inputs.snapshot} is not a file in the workspace")
    drift = DriftRunOptions(paths=options.paths, root=options.root, snapshot=snapshot,
                            packs=options.packs, policies=options.policies,
                            policies_ref=inputs.policies_ref, fail_on=options.fail_on,
                            link_base=options.link_base, sarif_category=options.sarif_category)
    return Stages(admit=inputs.mode == "both", drift=drift)


def run_checks(inputs: ActionInputs, options: ScanOptions, space: Workspace) -> Report:
    """Scan, drift, or both, as ``mode`` says: one pipeline run, one Report (a scan with a
    base: its delta against it, ``pipeline.delta``); ``merge``: the report of the fleet from
    its shards' JSON reports (``fail-on`` applies to it)."""
    if inputs.mode == "merge":
        from checker import fleet

        shards = fleet.read_reports([space.resolve(p, "shard-reports")
                                     for p in inputs.shard_reports])
        return dataclasses.replace(fleet.merge(shards), fail_on=inputs.fail_on)
    if options.base:
        return pipeline.delta(options, stages(inputs, options, space))
    return pipeline.run(options, stages(inputs, options, space))


def write_evidence(report: Report, options: ScanOptions, code: int, files: Mapping[str, Path],
                   space: Workspace, environ: Mapping[str, str]) -> dict[str, str]:
    """Write the evidence record and/or statement; return kind -> path in the workspace."""
    from checker.config import load_config
    from checker.overview import evidence

    config = load_config(options.root, options.config_file, options.paths)
    texts = evidence.write_all(report, options.root, config, code, options.today,
                               options.accept_base, files.get("evidence"),
                               files.get("statement"), environ)
    written: dict[str, str] = {}
    for kind, path in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(texts[kind], encoding="utf-8")
        except OSError as err:
            raise ActionError(f"cannot write {space.relative(path)}: {err.strerror}") from None
        written[kind] = space.relative(path)
    return written


def pull_request_changes(report: Report, space: Workspace, environ: Mapping[str, str],
                         ) -> tuple[Changes | None, str]:
    """The lines the pull request changed, or None and why not ("" outside a pull request).

    Against the base the delta evaluated (``Report.base``), else the first parent of the
    merge commit GitHub checks out, else the event's ``pull_request.base.sha``; the head is
    the checked-out commit.
    """
    from checker.changes import ChangesError, changed_lines
    from checker.drift.trusted import PULL_REQUEST_EVENTS

    if environ.get("GITHUB_EVENT_NAME", "") not in PULL_REQUEST_EVENTS:
        return None, ""
    repo = space.repository()
    base = report.base
    if not base:
        try:
            base = acceptance_base("auto", environ, repo)
        except ActionError:
            base = ""
    if not base:
        return None, ("no base commit: the event names no pull_request.base.sha and HEAD is "
                      "not a merge commit")
    try:
        return changed_lines(repo, base), ""
    except ChangesError as err:
        return None, str(err)


def choose_annotations(report: Report, inputs: ActionInputs, space: Workspace,
                       environ: Mapping[str, str]) -> Report:
    """The report with the annotated findings chosen: the pull request's changes first."""
    changes, why = pull_request_changes(report, space, environ)
    reserved = {"error": len(report.errors)}
    if inputs.comment:  # the comment writes one warning or notice line after the annotations
        reserved.update(warning=1, notice=1)
    note = (f"the changed lines could not be read ({why}): annotations are ordered by "
            "newness and severity only") if why else ""
    return annotation_selection(report, changes, limit=inputs.max_annotations,
                                reserved=reserved, note=note)


def run(environ: Mapping[str, str], stdout: TextIO) -> int:
    """Run the action in ``environ``; print commands and the log to ``stdout``; return the code."""
    report: Report | None = None
    written: dict[str, str] = {}
    try:
        inputs = parse_inputs(environ)
        space = Workspace.from_env(environ, inputs.working_directory)
        if inputs.mode in ("drift", "both"):
            from checker.drift.trusted import pull_request_job

            why = pull_request_job(environ)
            if why:
                raise ActionError(f"mode {inputs.mode}: drift compares live cluster data and "
                                  f"is refused in a pull-request run ({why}); run it on the "
                                  "default branch (see docs/security.md)")
        options = build_options(inputs, space, space.link_base(environ), environ)
        if inputs.mode == "matrix":  # the jobs of a fleet's matrix, nothing checked
            return _matrix(options, environ, stdout)
        files = report_files(inputs, space)
        evidence_files = {kind: space.resolve(given, name) for kind, given, name in (
            ("evidence", inputs.evidence, "evidence"),
            ("statement", inputs.statement, "evidence-statement")) if given}
        if evidence_files and options.today is None:
            import datetime as dt

            # read once: the scan and the evidence record state the same date
            options = dataclasses.replace(options, today=dt.date.today())
        # every path relative to the repository root: annotations, links and code scanning
        # resolve them against the repository, wherever the working directory is in it
        report = relocate(run_checks(inputs, options, space), space.repository_prefix())
        if inputs.annotations:
            report = choose_annotations(report, inputs, space, environ)
        rendered = render_all(report, [
            *files, "text", *(["markdown"] if environ.get("GITHUB_STEP_SUMMARY") else [])],
            FORMATS)
        written = write_reports(rendered, files, space)
        code = exit_code(report, inputs.fail_on)
        if evidence_files:
            written.update(write_evidence(report, options, code, evidence_files, space,
                                          environ))
        for problem in report.errors:  # first: GitHub keeps the first 10 errors of a step
            stdout.write(command("error", problem, title="gitops-checker") + "\n")
        if inputs.annotations:
            for line in annotation_commands(report):
                stdout.write(line + "\n")
        stdout.write(guarded(rendered["text"]))
        summary = environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            append(summary, rendered["markdown"] + "\n", "GITHUB_STEP_SUMMARY")
        if inputs.comment:
            from checker.action.comment import post

            token = (environ.get(input_variable("github-token"))
                     or environ.get(input_variable("github_token")) or "")
            post(report, environ, token.strip(), inputs.sarif_category, stdout)
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


def _matrix(options: ScanOptions, environ: Mapping[str, str], stdout: TextIO) -> int:
    """Mode ``matrix``: the ``matrix`` output (JSON for ``fromJSON``), and the log line."""
    import json

    from checker import fleet

    jobs = fleet.matrix(pipeline.fleet_clusters(options))
    text = json.dumps(jobs, separators=(",", ":"))
    stdout.write(f"gitops-checker: a matrix of {len(jobs['include'])} jobs\n")
    stdout.write(guarded(text))
    target = environ.get("GITHUB_OUTPUT")
    if target:
        append(target, output_lines({**outputs_for(None, EXIT_OK, {}), "matrix": text}),
               "GITHUB_OUTPUT")
    stdout.flush()
    return EXIT_OK


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
