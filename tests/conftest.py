"""Shared fixtures: paths, a CLI runner, and helpers to write small repositories."""

from __future__ import annotations

import json
import mmap
import os
import shutil
import struct
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "gitops-repo"
TESTS = Path(__file__).resolve().parent
GOLDEN = TESTS / "golden"
FIXTURES = TESTS / "fixtures"
CASES = TESTS / "cases"

# the real peers some tests need; scripts/test.sh installs them (in CI a skip is a failure)
KUSTOMIZE = shutil.which("kustomize") or shutil.which("kubectl")
needs_kustomize = pytest.mark.skipif(KUSTOMIZE is None, reason="needs kustomize or kubectl")
SARIF_VALIDATOR = Path(os.environ.get("SARIF_MULTITOOL") or ROOT / "node_modules" / "@microsoft"
                       / "sarif-multitool-linux" / "Sarif.Multitool")


def sarif_problems(path: Path, out_dir: Path) -> list[tuple[str, str, str]]:
    """What Microsoft's SARIF Multitool with GitHub's rules (``Sarif;Ghas``) reports about the
    SARIF file ``path`` as an error or a warning: (rule, level, message) each.

    Skips where the tool is not installed (``SARIF_MULTITOOL`` names another copy); a run that
    fails is an assertion error, never an empty list.
    """
    if not SARIF_VALIDATOR.exists():
        pytest.skip("run `npm install --no-save @microsoft/sarif-multitool@5.7.0` first")
    out = out_dir / f"{path.stem}.validation.sarif"
    proc = subprocess.run([str(SARIF_VALIDATOR), "validate", "--rule-kind", "Sarif;Ghas",
                           "--output", str(out), str(path)],
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [(r["ruleId"], r.get("level", "warning"), str(r.get("message", {}).get("text", "")))
            for run in json.loads(out.read_text(encoding="utf-8"))["runs"]
            for r in run.get("results", []) if r.get("level", "warning") in ("error", "warning")]


def kustomize_build(folder: Path) -> list[dict[str, Any]]:
    """The real ``kustomize build`` (or ``kubectl kustomize``) output of a folder."""
    import yaml

    assert KUSTOMIZE is not None
    command = [KUSTOMIZE, "build"] if Path(KUSTOMIZE).name == "kustomize" else [KUSTOMIZE,
                                                                                 "kustomize"]
    out = subprocess.run([*command, str(folder)], capture_output=True, text=True, check=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture
def runner() -> CliRunner:
    """A click runner that keeps stderr separate from stdout."""
    return CliRunner()


@pytest.fixture(autouse=True)
def _not_a_pull_request_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite itself may run in a pull-request job; drift refuses those (tests set them)."""
    for name in ("GITHUB_EVENT_NAME", "CI_PIPELINE_SOURCE", "CHANGE_ID",
                 # what the checkout is (Flux GitRepository spec.ref): tests set them
                 "GITHUB_BASE_REF", "GITHUB_HEAD_REF", "GITHUB_REF_TYPE", "GITHUB_REF_NAME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a dedented file below tmp_path and return its path."""

    def _write(rel: str, text: str) -> Path:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """In CI a skipped test is a failure: every check must really run there.

    Locally a test may skip when a real peer (SARIF validator, OCI registry, ssh-keygen) is not
    installed; scripts/test.sh installs them, and CI=true makes a missing one fail loudly.
    """
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI (every check must run): {reason}"


class RvmRuns:
    """Counts what regorus's compiled VM evaluated (``runs``) and where it gave up (``gave_up``);
    ``fail()`` makes every later run give up, to exercise the interpreter fallback.

    Evaluation runs in forked workers, so the counts live in a shared anonymous mapping.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from checker.policy import rvm

        self._counts = mmap.mmap(-1, 16)
        self._failing = False
        execute = rvm.Compiled.execute

        def counted(compiled: rvm.Compiled, input_json: str) -> Any:
            value = None if self._failing else execute(compiled, input_json)
            runs, gave_up = struct.unpack_from("qq", self._counts)
            struct.pack_into("qq", self._counts, 0, runs + 1, gave_up + (value is None))
            return value

        monkeypatch.setattr(rvm.Compiled, "execute", counted)

    @property
    def runs(self) -> int:
        """Runs of the compiled VM, in this process and its workers."""
        return int(struct.unpack_from("qq", self._counts)[0])

    @property
    def gave_up(self) -> int:
        """Runs that gave no usable value."""
        return int(struct.unpack_from("qq", self._counts)[1])

    def fail(self) -> None:
        self._failing = True


@pytest.fixture
def rvm_runs(monkeypatch: pytest.MonkeyPatch) -> RvmRuns:
    """Counts runs of the compiled VM (see RvmRuns)."""
    return RvmRuns(monkeypatch)
