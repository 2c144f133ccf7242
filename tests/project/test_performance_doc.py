"""docs/performance.md says how to reproduce every benchmark, and README points there instead
of keeping figures of its own."""

from __future__ import annotations

from tests.conftest import ROOT

DOC = ROOT / "docs" / "performance.md"


def test_every_benchmark_has_a_reproduce_row() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## How to reproduce"):text.index("\n## ", text.index(
        "## How to reproduce") + 1)]
    scripts = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))
    assert scripts
    assert [s for s in scripts if f"benchmarks/{s}" not in section] == []


def test_readme_keeps_no_figures_of_its_own() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Performance")
    section = readme[start:readme.index("\n## ", start + 1)]
    assert "docs/performance.md" in section
    assert "|" not in section  # no tables: the figures live in docs/performance.md
