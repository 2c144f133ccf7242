"""Shared fixtures: paths, a CLI runner, and helpers to write small repositories."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "gitops-repo"
GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.fixture
def runner() -> CliRunner:
    """A click runner that keeps stderr separate from stdout."""
    return CliRunner()


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a dedented file below tmp_path and return its path."""

    def _write(rel: str, text: str) -> Path:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write
