"""JUnit XML for required status checks.

One test suite per policy pack (or per cluster when clusters are configured). Each violation at
or above the ``--fail-on`` threshold is a failing test case with message, file and line (one
below it is a skipped case, so it stays visible without failing the check); each policy that
nothing violates is one passing test case, so the file grows with findings, not with
resources x policies. Drift is reported per resource: one test case per drifted object,
listing every drifted field. With a base (the delta), cases are named ``new: ...`` or
``unchanged: ...`` (new ones first), each finding the change fixes is a passing ``fixed: ...``
case, and under ``--gate new`` an unchanged finding is skipped, not failed.

Drift and passing cases are junit-xml's ``TestCase``; every case is written here in the layout
of junit-xml's pretty printer (tab-indented, text inline), directly: that printer goes through
``xml.dom.minidom`` and takes seconds for tens of thousands of cases (a test compares the two).
Line breaks and tabs in attribute values are kept as ``&#10;``/``&#9;`` rather than written raw
(which a reader turns into spaces).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from junit_xml import TestCase, TestSuite

from checker import selection
from checker.model import Finding, Report, Severity
from checker.report.common import (
    group_of,
    groups_of,
    requirement_group,
    standard_grouping,
    unmapped_group,
)

_LABEL = {s: s.label for s in Severity}


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


def _cases(report: Report) -> Iterator[tuple[str, Finding | TestCase]]:
    """(group, case) in document order within each group; a violation stays a Finding."""
    standard = standard_grouping(report)
    violated: dict[str, set[str]] = {}
    drifted: dict[tuple[str, str], list[Finding]] = {}
    for f in selection.located(report):  # one case per source location (overlays merged)
        for group in (groups_of(f, report) if standard else (group_of(f, report),)):
            violated.setdefault(group, set()).add(f.rule_id)
            if f.category == "drift":
                drifted.setdefault((group, f.resource or f.location.path), []).append(f)
                continue
            yield group, f
    for (group, _), findings in drifted.items():
        yield group, _drift_case(findings, group, report)
    for f in report.fixed:  # the delta: what the change fixes passes, named as such
        if f.suppression is None:
            group = (groups_of(f, report) if standard else [group_of(f, report)])[0]
            yield group, TestCase(
                name=f"fixed: {f.rule_id}: {f.resource or f.location.path}", classname=group,
                file=f.location.path, line=f.location.line)
    for rule in sorted(report.rules.values(), key=lambda r: r.id):
        if not rule.pack:
            continue
        if standard:
            groups_for_rule = list(dict.fromkeys(
                requirement_group(standard, c.id, c.title) for c in rule.controls
                if c.standard == standard)) or [unmapped_group(standard)]
        else:
            groups_for_rule = ([c for c in report.clusters] if report.group_by == "cluster"
                               and report.clusters else [rule.pack])
        for group in groups_for_rule:
            if rule.id not in violated.get(group, set()):
                yield group, TestCase(name=f"{rule.id}: {rule.title}", classname=group)


def render(report: Report) -> str:
    """The JUnit XML document, as junit-xml's pretty printer lays it out (a violation goes
    straight to text, without a ``TestCase``)."""
    written: dict[str, _Suite] = {}
    for group, item in _cases(report):
        suite = written.get(group)
        if suite is None:
            suite = written[group] = _Suite(TestSuite(group, []))
        if isinstance(item, Finding):
            suite.finding(item, report)
        else:
            suite.case(item)
    if not written:
        placeholder = TestSuite("gitops-checker", [TestCase(name="no policies selected")])
        written[placeholder.name] = _Suite(placeholder)
    for suite in written.values():
        if report.engines:  # which engine gave the verdicts, in every report
            suite.properties["engines"] = "; ".join(report.engines)
    _exemptions(report, written)
    return _document([written[name] for name in sorted(written)])


def _exemptions(report: Report, written: dict[str, _Suite]) -> None:
    """A ``exempt: <policy>`` property per exemption on the suite that holds the policy's
    cases (the cluster's suite when grouped by cluster, else the policy's pack or requirement
    suites; the first suite when none does), so the file says which namespaces were not
    checked. The cluster is named in the property when the suite is not the cluster's."""
    if not report.exemptions:
        return
    standard = standard_grouping(report)
    by_cluster = report.group_by == "cluster" and bool(report.clusters)
    for e in sorted(report.exemptions):
        rule = report.rules.get(e.policy)
        if by_cluster:
            groups = [e.cluster]
        elif rule is None:
            groups = []
        elif standard:
            groups = list(dict.fromkeys(
                requirement_group(standard, c.id, c.title) for c in rule.controls
                if c.standard == standard)) or [unmapped_group(standard)]
        else:
            groups = [rule.pack]
        suites = [written[g] for g in groups if g in written] or [
            written[min(written)]]
        name = f"exempt: {e.policy}" + (f" in {e.cluster}" if e.cluster and not by_cluster
                                        else "")
        value = (f"namespaces {', '.join(e.namespaces)}; {e.skipped} objects not checked; "
                 f"set by {e.source}")
        for suite in suites:
            suite.properties[name] = value


# What junit-xml removes from its output: characters XML 1.0 forbids or discourages.
_ILLEGAL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufdd0-\ufddf\ufffe\uffff"
    + "".join(f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}"
              for plane in range(1, 17))
    + "]")


def _text(value: object) -> str:
    """Element text, cleaned and escaped as junit-xml's pretty printer (minidom) does."""
    text = str(value)
    if not (text.isascii() and text.isprintable()):  # most text is printable ASCII: no regex
        text = _ILLEGAL.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;").replace(
        ">", "&gt;")


def _attr(value: object) -> str:
    """An attribute value: escaped, and line breaks and tabs kept as character references."""
    text = str(value)
    if text.isascii() and text.isprintable():
        return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;").replace(
            ">", "&gt;")
    return _text(text).replace("\n", "&#10;").replace("\t", "&#9;")


class _Suite:
    """One ``testsuite``: its cases as text, counted as junit-xml counts them."""

    def __init__(self, suite: TestSuite) -> None:
        self.name = suite.name
        self.out: list[str] = []
        self.counts = {"disabled": 0, "errors": 0, "failures": 0, "tests": 0}
        self.skipped = 0
        self.attrs: dict[object, str] = {}  # classname and file repeat: escaped once
        self.properties: dict[str, str] = {}  # the suite's properties (the engines that ran)
        for case in suite.test_cases:
            self.case(case)

    def attr(self, value: object) -> str:
        out = self.attrs.get(value)
        if out is None:
            out = self.attrs[value] = _attr(value)
        return out

    def outcome(self, tag: str, info: dict[str, Any]) -> str:
        """A failure, error or skipped element as junit-xml builds it."""
        attrs = (f' type="{self.attr(info["type"] or tag)}"' if tag != "skipped"
                 else ' type="skipped"')
        if info["message"]:
            attrs += f' message="{_attr(info["message"])}"'
        if info["output"]:
            return f"\t\t\t<{tag}{attrs}>{_text(info['output'])}</{tag}>\n"
        return f"\t\t\t<{tag}{attrs}/>\n"

    def finding(self, f: Finding, report: Report) -> None:
        """A violation's test case: failing at or above the threshold, else skipped."""
        path, line = f.location.path, f.location.line
        where = f"{path}:{line}"
        state = f"{f.baseline}: " if report.base and f.baseline else ""
        head = f'\t\t<testcase name="{_attr(f"{state}{f.rule_id}: {f.resource or where}")}"'
        if self.name:
            head += f' classname="{self.attr(self.name)}"'
        if path:
            head += f' file="{self.attr(path)}"'
        if line:
            head += f' line="{line}"' if type(line) is int else f' line="{_attr(line)}"'
        text = f"{where}: {f.message}"
        self.counts["tests"] += 1
        if report.fails(f):
            self.counts["failures"] += 1
            body = self.outcome("failure", {"message": f.message, "output": text,
                                            "type": _LABEL[f.severity]})
        else:
            self.skipped += 1
            why = ("unchanged (the base has it too), " if report.gate == "new" and report.base
                   and f.baseline != "new" else "")
            body = self.outcome("skipped", {"message": f"{why}{_LABEL[f.severity]}: "
                                                       f"{f.message}", "output": text})
        self.out.append(f"{head}>\n{body}\t\t</testcase>\n")

    def case(self, case: TestCase) -> None:
        """One ``testcase`` with the attributes and outcomes this module sets."""
        head = f'\t\t<testcase name="{_attr(case.name)}"'
        if case.classname:
            head += f' classname="{self.attr(case.classname)}"'
        if case.file:
            head += f' file="{self.attr(case.file)}"'
        if case.line:
            head += f' line="{case.line}"' if type(case.line) is int else (
                f' line="{_attr(case.line)}"')
        body = "".join([self.outcome("failure", i) for i in case.failures
                        if i["message"] or i["output"]])
        counts = self.counts
        counts["tests"] += 1
        counts["failures"] += bool(body)
        if case.errors:
            errors = "".join([self.outcome("error", i) for i in case.errors
                              if i["message"] or i["output"]])
            counts["errors"] += bool(errors)
            body += errors
        if case.skipped:
            self.skipped += 1
            body += "".join([self.outcome("skipped", i) for i in case.skipped])
        if not case.is_enabled:
            counts["disabled"] += 1
        self.out.append(f"{head}>\n{body}\t\t</testcase>\n" if body else f"{head}/>\n")

    def xml(self) -> str:
        """The suite element."""
        c = self.counts
        head = (f'\t<testsuite disabled="{c["disabled"]}" errors="{c["errors"]}" '
                f'failures="{c["failures"]}" name="{_attr(self.name)}" '
                f'skipped="{self.skipped}" tests="{c["tests"]}" time="0"')
        props = ""
        if self.properties:
            props = ("\t\t<properties>\n" + "".join(
                f'\t\t\t<property name="{_attr(k)}" value="{_attr(v)}"/>\n'
                for k, v in sorted(self.properties.items())) + "\t\t</properties>\n")
        body = props + "".join(self.out)
        return head + (">\n" + body + "\t</testsuite>\n" if body else "/>\n")


def _document(written: list[_Suite]) -> str:
    """The ``testsuites`` document of written suites."""
    totals = {key: sum(s.counts[key] for s in written)
              for key in ("disabled", "errors", "failures", "tests")}
    head = ('<?xml version="1.0" encoding="utf-8"?>\n<testsuites '
            + " ".join(f'{key}="{n}"' for key, n in totals.items()) + ' time="0.0"')
    if not written:
        return head + "/>\n"
    return head + ">\n" + "".join(s.xml() for s in written) + "</testsuites>\n"
