"""Workflow commands read back the way GitHub's runner reads them.

The parser below follows ``ActionCommand.TryParseV2`` of actions/runner
(src/Runner.Common/ActionCommand.cs): the line, leading spaces trimmed, starts with ``::``;
the command info runs to the next ``::``; the name ends at the first space; properties are
split on ``,`` and each on its first ``=`` (empty parts dropped); a property value is
unescaped ``%0D``, ``%0A``, ``%3A``, ``%2C`` then ``%25``, the data ``%0D``, ``%0A`` then
``%25``. The runner reads its output line by line (``\\r`` and ``\\n`` end a line).
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from checker.action.outputs import annotation, command
from checker.model import Finding, Report, Rule, Severity, SourceLocation

PROPERTY = [("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")]
DATA = [("%0D", "\r"), ("%0A", "\n"), ("%25", "%")]


def unescape(text: str, mappings: list[tuple[str, str]]) -> str:
    for replacement, token in mappings:
        text = text.replace(replacement, token)
    return text


def runner_parse(line: str) -> tuple[str, dict[str, str], str] | None:
    message = line.lstrip()
    if not message.startswith("::"):
        return None
    end = message.find("::", 2)
    if end < 0:
        return None
    info = message[2:end]
    space = info.find(" ")
    name = info if space < 0 else info[:space]
    props: dict[str, str] = {}
    if space > 0:
        for part in [p for p in info[space + 1:].strip().split(",") if p]:
            pair = [p for p in part.split("=", 1) if p]
            if len(pair) == 2:
                props[pair[0].lower()] = unescape(pair[1], PROPERTY)
    return name, props, unescape(message[end + 2:], DATA)


HOSTILE = st.lists(st.sampled_from([*"a :,=%\r\n0AD3C25", "::", "::error ", "%0A"]),
                   max_size=30).map("".join)


@settings(max_examples=500, deadline=None)
@given(message=HOSTILE, title=HOSTILE, path=HOSTILE)
def test_any_text_reads_back_as_written_on_one_line(message: str, title: str, path: str) -> None:
    line = command("warning", message, line=3, file=path, title=title, col=1)
    assert not re.search(r"[\r\n]", line)  # one line: nothing the runner reads as a new command
    parsed = runner_parse(line)
    assert parsed is not None
    name, props, data = parsed
    assert name == "warning"
    assert data == message
    expected = {k: v for k, v in (("file", path), ("line", "3"), ("title", title),
                                  ("col", "1")) if v}
    assert props == expected


def test_a_hostile_finding_cannot_forge_properties_or_commands() -> None:
    path = "  apps/x,line=1,title=CI PASSED::.yaml "
    rule = Rule("r", " Title, with: colon%0A and\nnewline", Severity.ERROR)
    finding = Finding(rule_id="r", category="policy", severity=Severity.ERROR,
                      message="m\r\n::add-mask::x\n::error file=evil.yaml::pwned %0A",
                      location=SourceLocation(path, 7, 2), resource="Pod a/b")
    report = Report(findings=(finding,), rules={"r": rule}, resources_checked=1,
                    files_checked=1)
    line = annotation(finding, report, "")
    assert "\n" not in line and "\r" not in line
    parsed = runner_parse(line)
    assert parsed is not None
    name, props, data = parsed
    assert name == "error"
    assert props == {"file": path, "line": "7", "col": "2",
                     "title": " Title, with: colon%0A and\nnewline (r)"}
    assert data == "m\r\n::add-mask::x\n::error file=evil.yaml::pwned %0A (Pod a/b)"
