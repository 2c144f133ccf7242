"""Every rule links to its docs: docs/rules.md is generated from the built-in rules and up to
date, every help link resolves to a page and heading, and SARIF rules carry it as helpUri."""

from __future__ import annotations

import json
import re

from checker.model import Rule, Severity
from checker.policy.packs import load_catalog
from checker.report.sarif import INFO_URI, help_uri
from checker.rules import BUILTIN_RULES, RULES_PAGE, anchor, rules_page
from tests.conftest import GOLDEN, ROOT


def anchors(markdown: str) -> set[str]:
    return {anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", markdown, re.MULTILINE)}


def test_rules_page_is_up_to_date() -> None:
    committed = (ROOT / RULES_PAGE).read_text(encoding="utf-8")
    assert committed == rules_page(BUILTIN_RULES), "run: python scripts/gen_rule_docs.py"


def test_every_builtin_rule_links_to_an_existing_page_and_heading() -> None:
    for rid, rule in BUILTIN_RULES.items():
        page, _, fragment = rule.help_uri.partition("#")
        assert (ROOT / page).is_file(), (rid, rule.help_uri)
        if fragment:
            assert fragment in anchors((ROOT / page).read_text(encoding="utf-8")), rid


def test_every_pack_policy_links_to_its_generated_page() -> None:
    for pid, pdef in load_catalog().policies.items():
        assert pdef.rule.help_uri == f"docs/policies/{pid}.md"
        assert (ROOT / pdef.rule.help_uri).is_file(), pid


def test_anchor_is_githubs() -> None:
    assert anchor("`input.parse-error`") == "inputparse-error"
    assert anchor("Risk acceptances") == "risk-acceptances"
    assert anchor("Input: what could not be read") == "input-what-could-not-be-read"


def test_rules_page_refuses_a_category_without_a_heading() -> None:
    rules = {"new.thing": Rule("new.thing", "New", Severity.NOTE)}
    try:
        rules_page(rules)
    except ValueError as err:
        assert "new" in str(err)
    else:
        raise AssertionError("a rule category without a heading was accepted")


def test_help_uri_is_absolute_at_the_release() -> None:
    rule = Rule("x", "X", Severity.NOTE, help_uri="docs/rules.md#x")
    assert help_uri(rule, "1.2.3") == f"{INFO_URI}/blob/v1.2.3/docs/rules.md#x"
    assert help_uri(rule, "") == f"{INFO_URI}/blob/main/docs/rules.md#x"
    assert help_uri(Rule("y", "Y", Severity.NOTE), "1.2.3") is None


def test_golden_sarif_rules_link_to_their_docs() -> None:
    """In the multi-cluster golden SARIF every built-in and pack rule has its helpUri."""
    sarif = json.loads((GOLDEN / "multi-cluster" / "expected.sarif").read_text(encoding="utf-8"))
    rules = [r for run in sarif["runs"] for r in run["tool"]["driver"]["rules"]]
    catalog = load_catalog().policies
    linked = [r for r in rules if r["id"] in BUILTIN_RULES or r["id"] in catalog]
    assert linked
    for r in linked:
        assert r["helpUri"].startswith(f"{INFO_URI}/blob/v"), r["id"]
