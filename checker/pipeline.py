"""The scan pipeline: load -> evaluate -> report. Plain data in, plain data out."""

from __future__ import annotations

from checker import __version__
from checker.load import load_paths
from checker.model import Finding, Report, Rule, Severity
from checker.options import ScanOptions
from checker.policy.evaluate import Evaluator
from checker.policy.model import Policy
from checker.policy.packs import (
    DEFAULT_PACKS,
    load_catalog,
    load_repository_policies,
    pack_policies,
)
from checker.rules import BUILTIN_RULES

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def select_policies(options: ScanOptions) -> tuple[list[Policy], list[str], tuple[str, ...]]:
    """Built-in pack policies plus repository policies; policy errors are collected."""
    packs = options.packs or DEFAULT_PACKS
    if "none" in packs:
        packs = tuple(p for p in packs if p != "none")
    policies: list[Policy] = []
    errors: list[str] = []
    if packs:
        policies += pack_policies(load_catalog(), packs)
    for folder in options.policies:
        found, problems = load_repository_policies(folder, options.root)
        policies += found
        errors += problems
    return policies, errors, tuple(packs)


def scan(options: ScanOptions) -> Report:
    """Run a scan and return the report (no I/O beyond reading the inputs)."""
    policies, errors, packs = select_policies(options)
    loaded = load_paths(options.paths, options.root)
    evaluation = Evaluator(policies, operation=options.operation).run(loaded.resources)
    findings = [*loaded.findings, *evaluation.findings]
    rules: dict[str, Rule] = {p.rule.id: p.rule for p in policies}
    for f in findings:
        if f.rule_id not in rules and f.rule_id in BUILTIN_RULES:
            rules[f.rule_id] = BUILTIN_RULES[f.rule_id]
    return Report(
        findings=tuple(sorted(findings, key=Finding.sort_key)),
        rules=dict(sorted(rules.items())),
        resources_checked=len(loaded.resources),
        files_checked=len(loaded.files),
        packs=packs,
        tool_version=__version__,
        errors=tuple(dict.fromkeys([*errors, *evaluation.errors])),
        link_base=options.link_base,
        sarif_category=options.sarif_category,
        fail_on=options.fail_on,
    )


def exit_code(report: Report, fail_on: Severity | None) -> int:
    """0: nothing at or above the threshold; 1: findings; 2: configuration or tool errors.

    A file that could not be read is never a pass, whatever the threshold.
    """
    if report.errors:
        return EXIT_ERROR
    for f in report.active:
        if f.category == "input" and f.severity is Severity.ERROR:
            return EXIT_FINDINGS
        if fail_on is not None and f.severity >= fail_on:
            return EXIT_FINDINGS
    return EXIT_OK
