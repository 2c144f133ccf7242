"""JUnit XML for required status checks.

One test suite per policy pack (or per cluster when clusters are configured). Each violation at
or above the ``--fail-on`` threshold is a failing test case with message, file and line (one
below it is a skipped case, so it stays visible without failing the check); each policy that
nothing violates is one passing test case, so the file grows with findings, not with
resources x policies. Drift is reported per resource: one test case per drifted object,
listing every drifted field.
"""

from __future__ import annotations

from junit_xml import TestCase, TestSuite, to_xml_report_string

from checker.model import Finding, Report
from checker.report.common import group_of


def _case(f: Finding, group: str, report: Report) -> TestCase:
    where = f"{f.location.path}:{f.location.line}"
    name = f"{f.rule_id}: {f.resource or where}"
    case = TestCase(name=name, classname=group, file=f.location.path, line=f.location.line)
    text = f"{where}: {f.message}"
    if report.fails(f):
        case.add_failure_info(message=f.message, output=text, failure_type=f.severity.label)
    else:  # visible, but below the threshold that fails the check
        case.add_skipped_info(message=f"{f.severity.label}: {f.message}", output=text)
    return case


def _drift_case(findings: list[Finding], group: str, report: Report) -> TestCase:
    first = findings[0]
    resource = first.resource or f"{first.location.path}:{first.location.line}"
    case = TestCase(name=f"drift: {resource}", classname=group, file=first.location.path,
                    line=first.location.line)
    text = "\n".join(f"{f.location.path}:{f.location.line}: [{f.rule_id}] {f.message}"
                     for f in findings)
    failing = [f for f in findings if report.fails(f)]
    if failing:
        message = failing[0].message if len(findings) == 1 else (
            f"{len(findings)} drift findings: {failing[0].message}")
        worst = max(failing, key=lambda f: f.severity)
        case.add_failure_info(message=message, output=text, failure_type=worst.severity.label)
    else:
        case.add_skipped_info(message=f"{len(findings)} drift findings below --fail-on",
                              output=text)
    return case


def render(report: Report) -> str:
    """The JUnit XML document."""
    groups: dict[str, list[TestCase]] = {}
    violated: dict[str, set[str]] = {}
    drifted: dict[tuple[str, str], list[Finding]] = {}
    for f in report.active:
        group = group_of(f, report)
        violated.setdefault(group, set()).add(f.rule_id)
        if f.category == "drift":
            drifted.setdefault((group, f.resource or f.location.path), []).append(f)
            continue
        groups.setdefault(group, []).append(_case(f, group, report))
    for (group, _), findings in drifted.items():
        groups.setdefault(group, []).append(_drift_case(findings, group, report))
    for rule in sorted(report.rules.values(), key=lambda r: r.id):
        if not rule.pack:
            continue
        groups_for_rule = ([c for c in report.clusters] if report.group_by == "cluster"
                           and report.clusters else [rule.pack])
        for group in groups_for_rule:
            if rule.id not in violated.get(group, set()):
                groups.setdefault(group, []).append(TestCase(
                    name=f"{rule.id}: {rule.title}", classname=group))
    suites = [TestSuite(name, cases) for name, cases in sorted(groups.items())]
    if not suites:
        suites = [TestSuite("gitops-checker", [TestCase(name="no policies selected")])]
    return str(to_xml_report_string(suites, prettyprint=True, encoding="utf-8"))
