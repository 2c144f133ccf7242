"""Repository text is inert in GitHub Markdown: checked with GitHub's own cmark-gfm.

``cmarkgfm`` binds GitHub's fork of cmark (the parser of github.com's Markdown, with its table,
autolink, strikethrough and tag-filter extensions). Raw HTML is rendered *unsafe* here, so a
tag that got through would show; GitHub's own sanitiser is not relied on. The property: the
text of the rendered cell is the text we put in, and the only elements are the ones we wrote.
"""

from __future__ import annotations

import html.parser
import re

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options
from hypothesis import given, settings
from hypothesis import strategies as st

from checker.action import comment
from checker.model import (
    Coverage,
    Finding,
    ObjectRef,
    Report,
    Severity,
    SourceLocation,
    Suppression,
)
from checker.report import markdown
from checker.report.common import markdown_code, markdown_link, markdown_text

HOSTILE = [
    "</table><img src=x onerror=alert(1)>",
    "<img src=https://evil.example/t.png>",
    "<details open><summary>x</summary>",
    "<!-- hidden -->",
    "@acme/platform-security please approve @octocat",
    "[click](javascript:alert(1))",
    "![pixel](https://evil.example/p.gif)",
    "see https://evil.example/login and www.evil.example and mailto:a@evil.example",
    "[ref]: https://evil.example",
    "**bold** _it_ ~~gone~~ `code` $x^2$ :+1:",
    "| cell | break |",
    "fixes #12 and acme/other#3",
    "- a list\n# heading\n> quote\n1. one\n    code",
    "&lt;not a tag&gt; &amp; &#60;",
    "back\\slash\\",
    "=== setext",
    "12) ordered",
    "   leading spaces",
    "tab\there\rcr\u2028ls\x00nul\x07bell",
]


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.cells: list[str] = []
        self.plain: list[str] = []  # text outside code spans (GitHub links mentions there)
        self._code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._code += tag == "code"
        if tag in ("td", "th"):
            self.cells.append("")

    def handle_endtag(self, tag: str) -> None:
        self._code -= tag == "code"

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if not self._code:
            self.plain.append(data)
        if self.cells and data != "\n":
            self.cells[-1] += data

    def handle_comment(self, data: str) -> None:
        self.tags.append(("!--", {}))


def render(markdown: str) -> _Text:
    parsed = _Text()
    parsed.feed(cmarkgfm.github_flavored_markdown_to_html(
        markdown, options=Options.CMARK_OPT_UNSAFE))
    return parsed


def shown(value: str) -> str:
    """What a reader should see: line breaks as spaces, other control characters replaced."""
    out = "".join(" " if c in "\r\n\t\v\f\u2028\u2029\x85" else (
        "\ufffd" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in value)
    return out.strip()


def cell_text(parsed: _Text) -> str:
    """The text of the first body cell of a table, else of the whole document."""
    if parsed.cells:
        assert len(parsed.cells) == 4, parsed.cells  # two header cells, two body cells
        assert parsed.cells[3] == "end"
        return parsed.cells[2].replace("\u2060", "").strip()
    return "".join(parsed.text).replace("\u2060", "").strip()


def in_table(cell: str) -> str:
    return f"| h | x |\n| --- | --- |\n| {cell} | end |\n"


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("where", ["cell", "list", "paragraph"])
def test_hostile_text_renders_as_itself(value: str, where: str) -> None:
    escaped = markdown_text(value)
    source = {"cell": in_table(escaped), "list": f"- {escaped}\n",
              "paragraph": f"{escaped}\n"}[where]
    parsed = render(source)
    allowed = {"cell": {"table", "thead", "tbody", "tr", "th", "td"}, "list": {"ul", "li"},
               "paragraph": {"p"}}[where]
    assert {tag for tag, _ in parsed.tags} <= allowed, (value, parsed.tags)
    text = cell_text(parsed)
    assert re.sub(r"\s+", " ", text).strip() == re.sub(r"\s+", " ", shown(value))
    assert "@acme" not in "".join(parsed.text)  # the word joiner: no mention
    assert "#12" not in "".join(parsed.text)    # no issue reference


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(
    [*"ab :/.@#<>&|\\`*_[]()!~$-+=1.)>\n\t\"'{}w", "www.", "https://", "&amp;", "\x00"]),
    max_size=40).map("".join))
def test_any_text_renders_as_itself_in_a_cell(value: str) -> None:
    parsed = render(in_table(markdown_text(value)))
    assert {tag for tag, _ in parsed.tags} <= {"table", "thead", "tbody", "tr", "th", "td"}
    assert re.sub(r"\s+", " ", cell_text(parsed)) == re.sub(r"\s+", " ", shown(value))


@pytest.mark.parametrize("value", HOSTILE)
def test_code_spans_stay_one_cell_and_literal(value: str) -> None:
    parsed = render(in_table(markdown_code(value)))
    assert {tag for tag, _ in parsed.tags} <= {"table", "thead", "tbody", "tr", "th", "td",
                                               "code"}
    text = cell_text(parsed)
    # a backtick becomes a quote; everything else shows as written
    expected = shown(value).replace("`", "'")
    assert re.sub(r"\s+", " ", text) == re.sub(r"\s+", " ", expected)


def test_links_point_at_the_base_whatever_the_path() -> None:
    base = "https://github.com/o/r/blob/0123abc"
    for path in ["a b/(x)](javascript:alert(1)).yaml", "é/#frag?.yaml", "x\"><img>.yaml"]:
        parsed = render(markdown_link(f"{path}:3", base, path, 3) + "\n")
        links = [attrs.get("href") or "" for tag, attrs in parsed.tags if tag == "a"]
        assert len(links) == 1 and links[0].startswith(base + "/") and links[0].endswith("#L3")
        assert [tag for tag, _ in parsed.tags] == ["p", "a"]
        assert cell_text(parsed) == f"{path}:3"


BASE = "https://github.com/o/r/blob/0123456789abcdef0123456789abcdef01234567"
SUMMARY_TAGS = {"h2", "h3", "p", "table", "thead", "tbody", "tr", "th", "td", "code", "a",
                "ul", "li"}


def hostile_report() -> Report:
    """Every kind of repository text a summary shows, each a hostile string."""
    evil = " | ".join(HOSTILE[:12])
    path = "apps/<img src=x>/[x](javascript:alert(1)) @team.yaml"
    ref = ObjectRef("prod", "apps", "v1", "Deployment", "@team", "</table>")
    findings = [
        Finding(rule_id="K8sEvil/<b>x</b>", category="policy", severity=Severity.ERROR,
                message=evil, location=SourceLocation(path, 3), resource=evil, ref=ref,
                cluster="prod"),
        Finding(rule_id="drift.modified", category="drift", severity=Severity.WARNING,
                message=evil, location=SourceLocation(path, 4), resource="Pod a/b",
                details={"field": "spec.x <img>", "before": "@team", "after": "[x](y)",
                         "change": "modified"}),
        Finding(rule_id="r", category="policy", severity=Severity.NOTE, message="m",
                location=SourceLocation(path, 5), resource="Pod a/c",
                suppression=Suppression(kind="file", justification=evil, owner="@acme/x",
                                        expires="<img>")),
    ]
    return Report(findings=tuple(findings), rules={}, resources_checked=3, files_checked=1,
                  link_base=BASE, clusters=("prod",), errors=(f"a.yaml:1: {evil}",),
                  coverage=(Coverage("not-checked", "helm", evil, path, 2, reason=evil),),
                  packs=("<b>pack</b>",), engines=("@team engine",))


def test_a_hostile_report_renders_inert_in_the_job_summary() -> None:
    parsed = render(markdown.render(hostile_report()))
    tags = {tag for tag, _ in parsed.tags}
    assert tags <= SUMMARY_TAGS, tags - SUMMARY_TAGS
    hrefs = [attrs.get("href") or "" for tag, attrs in parsed.tags if tag == "a"]
    assert hrefs and all(h.startswith(BASE + "/apps/") for h in hrefs), hrefs
    plain = "".join(parsed.plain)
    assert "@team" not in plain and "@acme" not in plain and "#12" not in plain
    shown_text = "".join(parsed.text).replace("\u2060", "")
    for value in HOSTILE[:12]:
        assert shown(value) in shown_text or re.sub(r"\s+", " ", shown(value)) in shown_text


def test_a_hostile_report_renders_inert_in_the_pull_request_comment() -> None:
    parsed = render(comment.body(hostile_report(), "cat<egory>"))
    tags = {tag for tag, _ in parsed.tags}
    assert tags <= SUMMARY_TAGS | {"!--"}, tags
    assert [tag for tag, _ in parsed.tags].count("!--") == 1  # our marker, nothing else
    hrefs = [attrs.get("href") or "" for tag, attrs in parsed.tags if tag == "a"]
    assert hrefs and all(h.startswith(BASE + "/apps/") for h in hrefs), hrefs
    assert "@team" not in "".join(parsed.plain) and "#12" not in "".join(parsed.plain)
