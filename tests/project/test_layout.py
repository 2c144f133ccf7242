"""The test suite's layout: test files sit in folders that mirror ``checker/``.

``tests/<name>/`` holds the tests of ``checker/<name>/`` (a package) or ``checker/<name>.py`` (a
module); ``tests/project/`` holds checks of the project as a whole (this layout, the import
graph). Shared data lives in
``tests/fixtures/``, ``tests/cases/`` and ``tests/golden/``, which hold no test modules.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT, TESTS

DATA = {"fixtures", "cases", "golden"}
OWN = {"project"}


def mirrored_names(checker: Path) -> set[str]:
    """Names a test folder may take: checker's subpackages and top-level modules."""
    names = {p.name for p in checker.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    names |= {p.stem for p in checker.glob("*.py") if not p.name.startswith("_")}
    return names


def misplaced(tests: Path, checker: Path) -> list[str]:
    """Every test module not in a folder that mirrors ``checker/``, with the reason."""
    allowed = mirrored_names(checker) | OWN
    problems = []
    for path in sorted(tests.rglob("test_*.py")):
        rel = path.relative_to(tests)
        top = rel.parts[0]
        if len(rel.parts) == 1:
            problems.append(f"{rel}: at the tests/ root; move it to tests/<checker module>/")
        elif top in DATA:
            continue  # fixture trees may hold files of any name; they are not collected
        elif top not in allowed:
            problems.append(f"{rel}: tests/{top}/ mirrors nothing in checker/")
        else:
            missing = [str(p.relative_to(tests)) for p in path.parents
                       if p != tests and tests in p.parents and not (p / "__init__.py").is_file()]
            if missing:
                problems.append(f"{rel}: no __init__.py in {', '.join(missing)}")
    return problems


def test_every_test_module_mirrors_checker() -> None:
    assert misplaced(TESTS, ROOT / "checker") == []


def test_misplaced_modules_are_reported(tmp_path: Path) -> None:
    """The check itself can fail: a root test, an unknown folder and a missing __init__.py."""
    checker = tmp_path / "checker"
    (checker / "drift").mkdir(parents=True)
    (checker / "drift" / "__init__.py").write_text("")
    (checker / "config.py").write_text("")
    tests = tmp_path / "tests"
    for rel in ("test_root.py", "drift/test_ok.py", "config/test_ok.py", "nowhere/test_x.py",
                "fixtures/x/test_data.py", "project/test_self.py"):
        (tests / rel).parent.mkdir(parents=True, exist_ok=True)
        (tests / rel).write_text("")
    for folder in ("drift", "config", "nowhere", "project"):
        (tests / folder / "__init__.py").write_text("")
    (tests / "drift" / "deep").mkdir()
    (tests / "drift" / "deep" / "test_deep.py").write_text("")
    assert misplaced(tests, checker) == [
        "drift/deep/test_deep.py: no __init__.py in drift/deep",
        "nowhere/test_x.py: tests/nowhere/ mirrors nothing in checker/",
        "test_root.py: at the tests/ root; move it to tests/<checker module>/",
    ]
