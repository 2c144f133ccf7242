#!/usr/bin/env python3
"""Regenerate docs/rules.md from checker/rules.py; ``--check`` only verifies it is up to date
(what tests/rules/test_rules_page.py asserts)."""

import sys
from pathlib import Path

from checker.rules import BUILTIN_RULES, rules_page

if __name__ == "__main__":
    page = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
    text = rules_page(BUILTIN_RULES)
    if "--check" in sys.argv[1:]:
        if page.read_text(encoding="utf-8") != text:
            sys.exit(f"{page} is out of date: run python scripts/gen_rule_docs.py")
    else:
        page.write_text(text, encoding="utf-8")
