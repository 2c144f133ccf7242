"""The fast local selection and the full CI run: a plain ``pytest`` leaves out the tests marked
``slow``; ``scripts/test.sh`` (what CI runs) selects every test."""

from __future__ import annotations

import re
import shlex
import tomllib

from tests.conftest import ROOT


def test_local_default_leaves_out_slow_tests() -> None:
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    addopts = ini["addopts"]
    assert addopts[addopts.index("-m") + 1] == "not slow"
    assert any(m.startswith("slow:") for m in ini["markers"])


def test_ci_runs_every_test() -> None:
    """The last pytest line of scripts/test.sh empties the marker expression before "$@"."""
    script = (ROOT / "scripts" / "test.sh").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci
    calls = [shlex.split(line) for line in script.splitlines()
             if re.match(r"\s*pytest\b", line)]
    assert calls, "scripts/test.sh does not run pytest"
    args = calls[-1]
    assert args[1:3] == ["-m", ""], args
    assert args[-1] == "$@"
