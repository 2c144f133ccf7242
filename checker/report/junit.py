"""JUnit XML for required status checks.

One test suite per policy pack (or per cluster when clusters are configured). Each violation at
or above the ``--fail-on`` threshold is a failing test case with message, file and line (one
below it is a skipped case, so it stays visible without failing the check); each policy that
nothing violates is one passing test case, so the file grows with findings, not with
resources x policies.
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


def render(report: Report) -> str:
    """The JUnit XML document."""
    groups: dict[str, list[TestCase]] = {}
    violated: dict[str, set[str]] = {}
    for f in report.active:
        group = group_of(f, report)
        groups.setdefault(group, []).append(_case(f, group, report))
        violated.setdefault(group, set()).add(f.rule_id)
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
