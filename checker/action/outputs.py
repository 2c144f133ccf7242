"""What the Action leaves behind: workflow commands (annotations), ``GITHUB_OUTPUT``,
``GITHUB_STEP_SUMMARY`` and the report files.

Annotation paths are relative to the repository root (the report's paths, see
``checker.assemble.relocate``), which is how GitHub places them on a file; the ``*-file``
outputs are relative to ``GITHUB_WORKSPACE``, where later steps of the job run. Every string
that reaches a workflow command is escaped for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from checker.action.inputs import FILE_INPUTS, RUNNER_UID_HINT, ActionError, ActionInputs, Workspace
from checker.errors import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from checker.model import Finding, Report, Severity

RESULTS = {EXIT_OK: "pass", EXIT_FINDINGS: "fail", EXIT_ERROR: "error"}

OUTPUTS = (
    "result", "exit-code", *FILE_INPUTS.values(),  # the path of each report file written
    "error-count", "warning-count", "note-count", "total-count", "drift-count",
    "accepted-count", "evidence", "evidence-statement", "matrix",
)
COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


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
    """Whether the finding is about a Secret (of any API group: when in doubt, redact)."""
    from checker.drift.secrets import SECRET_KINDS

    return finding.ref is not None and finding.ref.kind in SECRET_KINDS


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
    # numbers first and last: the runner trims the spaces around the properties, so a path
    # or title with leading or trailing spaces must sit between them to arrive whole
    return command(
        COMMAND[finding.severity], message or finding.rule_id,
        line=max(loc.line, 1), file=f"{prefix}{loc.path}", title=title, endLine=end_line,
        endColumn=end_column, col=max(loc.column, 1),
    )


def annotation_commands(report: Report) -> list[str]:
    """The chosen findings (``Report.annotations``) as workflow commands, then a notice of
    what did not fit.

    A report without a choice gets the default one: no changed lines, at most 50.
    """
    from checker.assemble import ANNOTATIONS_PER_JOB, annotation_selection

    chosen = report.annotations
    if chosen is None:
        chosen = annotation_selection(report, None, limit=ANNOTATIONS_PER_JOB).annotations
        assert chosen is not None
    lines = [annotation(f, report, "") for f in chosen.kept]
    if chosen.left_out:
        new = sum(1 for f in chosen.left_out if f.baseline == "new")
        lines.append(command(
            "notice", f"{len(chosen.left_out)} more findings are not annotated"
            + (f" ({new} of them new)" if new else "")
            + f": GitHub shows {chosen.per_kind} annotations of each kind per step"
            + f" and this step writes at most {chosen.limit} (max-annotations);"
            + " the job summary lists them", title="gitops-checker"))
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
    for name in OUTPUTS[len(out):-3]:
        out[name] = str(counts[name]) if name in counts else ""
    out["evidence"] = written.get("evidence", "")
    out["evidence-statement"] = written.get("statement", "")
    out["matrix"] = ""  # mode matrix only
    return out


def report_files(inputs: ActionInputs, space: Workspace) -> dict[str, Path]:
    """Format -> file to write, resolved and checked before anything runs."""
    return {fmt: space.resolve(given, FILE_INPUTS[fmt])
            for fmt, given in sorted(inputs.files.items()) if given}


def write_reports(rendered: Mapping[str, str], files: Mapping[str, Path],
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
