"""docs/architecture.md names only paths that exist, and every package of checker/."""

from __future__ import annotations

import re

from tests.conftest import ROOT

DOC = ROOT / "docs" / "architecture.md"


def named_paths(text: str) -> list[str]:
    """Backticked repository paths (``checker/...``, ``tests/...``, ``policy-packs/...``,
    ``docs/...``, ``scripts/...``), without placeholders such as ``<pack>``."""
    out = []
    for span in re.findall(r"`([^`\s]+)`", text):
        path = span.split("#")[0].rstrip(".,")
        if re.match(r"(checker|tests|policy-packs|docs|scripts)/", path) and "<" not in path:
            out.append(path)
    return out


def test_every_named_path_exists() -> None:
    paths = named_paths(DOC.read_text(encoding="utf-8"))
    assert len(paths) > 20
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert missing == []


def test_every_checker_package_is_placed() -> None:
    text = DOC.read_text(encoding="utf-8")
    packages = sorted(p.name for p in (ROOT / "checker").iterdir()
                      if (p / "__init__.py").is_file())
    assert [p for p in packages if f"checker/{p}/" not in text] == []


def test_the_check_sees_a_missing_path() -> None:
    assert named_paths("`checker/nope.py` and `policy-packs/<pack>/x` and `README.md`") == [
        "checker/nope.py"]
