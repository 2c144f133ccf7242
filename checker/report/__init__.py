"""Renderers: one module per format, each a pure ``render(report) -> str``.

``FORMATS`` is the one registry of output formats. Everything format-shaped is derived from
it: the CLI's ``--format`` choices and ``--<format> FILE`` flags (``checker.cli.common``), the
GitHub Action's ``<format>-file`` inputs and outputs (``checker.action``, and ``action.yml``,
which a test keeps equal to it), the golden files' suffixes (tests/report/test_reports.py) and the
format table in docs/output-formats.md (a test keeps it equal too). Adding a format is one
module here and one entry below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from checker.model import Report
from checker.report import json_format, junit, markdown, sarif, text

Renderer = Callable[[Report], str]


@dataclass(frozen=True)
class Format:
    """One output format and everything that is shaped by it."""

    name: str
    render: Renderer
    suffix: str         # file name suffix (golden files, the Action's default file)
    summary: str        # one line for the docs table and the CLI's help
    file_flag: bool     # the CLI has --<name> FILE and the Action a <name>-file input
    action_file: str    # the Action's default file ("" writes none unless asked)
    cost: int           # relative time per finding (measured on 60,000), to share out renders


_FORMATS = (
    Format("text", text.render, "txt", "One line per finding and a summary, for terminals "
           "and logs.", file_flag=False, action_file="", cost=3),
    Format("sarif", sarif.render, "sarif", "SARIF 2.1.0 for GitHub code scanning (accepted "
           "risks left out).", file_flag=True,
           action_file="gitops-checker-results/results.sarif", cost=4),
    Format("junit", junit.render, "xml", "JUnit XML for required status checks: a failing "
           "case per finding at or above --fail-on.", file_flag=True,
           action_file="gitops-checker-results/junit.xml", cost=7),
    Format("markdown", markdown.render, "md", "Markdown for the job summary and pull "
           "requests.", file_flag=True, action_file="gitops-checker-results/summary.md",
           cost=3),
    Format("json", json_format.render, "json", "The whole report as data, for scripts and "
           "dashboards.", file_flag=True, action_file="", cost=8),
)

FORMATS: dict[str, Format] = {f.name: f for f in _FORMATS}
RENDERERS: dict[str, Renderer] = {f.name: f.render for f in _FORMATS}
FILE_FORMATS: tuple[str, ...] = tuple(f.name for f in _FORMATS if f.file_flag)


def docs_table() -> str:
    """The Markdown table of formats in docs/output-formats.md."""
    lines = ["| Format | `--format` / file flag | Action input | Golden suffix | What it is |",
             "|---|---|---|---|---|"]
    for f in _FORMATS:
        flag = f"`--format {f.name}`" + (f", `--{f.name} FILE`" if f.file_flag else "")
        default = f"`{f.action_file}`" if f.action_file else "none"
        action = f"`{f.name}-file` (default {default})" if f.file_flag else "-"
        lines.append(f"| {f.name} | {flag} | {action} | `.{f.suffix}` | {f.summary} |")
    return "\n".join(lines) + "\n"


__all__ = ["FILE_FORMATS", "FORMATS", "RENDERERS", "Format", "Renderer", "docs_table"]
