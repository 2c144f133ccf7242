"""Golden files through `scan` for CEL templates and ValidatingAdmissionPolicies: every format,
byte for byte (UPDATE_GOLDEN=1 rewrites them)."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.report import RENDERERS
from tests.conftest import GOLDEN

SCENARIO = GOLDEN / "cel"
REPO = SCENARIO / "repo"
SUFFIX = {"text": "txt", "json": "json", "sarif": "sarif", "junit": "xml", "markdown": "md"}


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_cel_golden_output(fmt: str, runner: CliRunner) -> None:
    """A CEL-only template, a VAP with Deny/Warn/Audit bindings and params, an authorizer call."""
    result = runner.invoke(cli, ["scan", str(REPO / "apps"), "--root", str(REPO), "--pack",
                                 "none", "--policies", str(REPO / "policies"), "--format", fmt])
    assert result.exit_code == 1, result.output
    golden = SCENARIO / f"expected.{SUFFIX[fmt]}"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(result.stdout, encoding="utf-8")
    assert result.stdout == golden.read_text(encoding="utf-8")
    for needle in ("vap/replica-limits", "replica-limits-audit", "K8sDisallowedTagsCel"):
        assert needle in result.stdout, (fmt, needle)
