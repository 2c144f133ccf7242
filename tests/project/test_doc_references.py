"""Every test file that the docs, the code and the scripts name exists: moved tests leave no
dead references behind (issue 15: docs true to the code)."""

from __future__ import annotations

import re

from tests.conftest import ROOT

# a repository path under tests/ ending in .py (pack suites are named relative to their pack)
REFERENCE = re.compile(r"(?<![\w/.-])tests/[A-Za-z0-9_/.-]+\.py\b")
WHERE = ("checker", "docs", "benchmarks", "scripts")


def references() -> dict[str, set[str]]:
    """Test-file path -> the files that name it."""
    texts = [ROOT / "README.md"]
    for folder in WHERE:
        texts += [p for p in (ROOT / folder).rglob("*")
                  if p.suffix in (".py", ".md") and "__pycache__" not in p.parts]
    out: dict[str, set[str]] = {}
    for path in texts:
        for name in REFERENCE.findall(path.read_text(encoding="utf-8")):
            out.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return out


def test_references_are_found() -> None:
    assert "tests/assemble/test_selection.py" in references()


def test_every_named_test_file_exists() -> None:
    missing = {name: sorted(where) for name, where in references().items()
               if not (ROOT / name).is_file()}
    assert missing == {}
