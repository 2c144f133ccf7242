"""Golden snapshots per scenario: every output format, compared byte for byte.

Each scenario is one command line; its outputs are committed under ``tests/golden/<scenario>/``
as ``expected.<suffix>`` (one per format in the renderer registry) plus the scenario's extra
files (the accepted-findings SARIF). ``UPDATE_GOLDEN=1 pytest tests/report/test_golden.py``
rewrites them; review the diff before committing it.

- ``basic``: a small repository with its own policies, a broken file and an error finding.
- ``multi-cluster``: ``examples/multi-cluster`` (two clusters, one SARIF run each, risk
  acceptances active, expiring, expired and stale); ``accepted.sarif`` is the opt-in file of
  accepted findings with their suppressions.
- ``cel``: a CEL-only ConstraintTemplate, a ValidatingAdmissionPolicy with Deny/Warn/Audit
  bindings and params, an authorizer call.
- ``admission``: Gatekeeper mutators that make one Pod compliant and another fail, an
  unsupported mutator field, and an ExpansionTemplate whose generated Pod violates a Pod-only
  constraint (``[Implied by ...]`` on the Deployment's line, at the template's warn action).
- ``delta``: ``scan --base main`` of a git repository built by ``delta_repo`` (fixed dates, so
  fixed commit ids): one finding moved (unchanged), one new, one fixed, one cluster untouched.
- ``drift``: the drift scenario (``tests/cases/drift``) against its snapshot with every planted
  change (``live-drifted.yaml``): modified, missing, unmanaged, a Secret and a hand-made policy
  violation.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from checker.cli import cli
from checker.policy import opa
from checker.report import FILE_FORMATS, FORMATS, RENDERERS
from tests.conftest import CASES, GOLDEN, ROOT

SUFFIX = {name: f.suffix for name, f in FORMATS.items()}  # the registry's golden suffixes
BASIC = GOLDEN / "basic" / "repo"
CEL = GOLDEN / "cel" / "repo"
ADMISSION = GOLDEN / "admission" / "repo"
EXAMPLE = ROOT / "examples" / "multi-cluster"
DRIFT = CASES / "drift"
DELTA = "{delta-repo}"  # replaced by the repository delta_repo builds


@dataclass(frozen=True)
class Scenario:
    """A command line, the exit code it must give, and extra files (flag -> golden name)."""

    args: tuple[str, ...]
    exit_code: int
    extra: dict[str, str] = field(default_factory=dict)


SCENARIOS = {
    "basic": Scenario(
        ("scan", str(BASIC / "manifests"), "--root", str(BASIC), "--pack", "none",
         "--policies", str(BASIC / "policies")), 1),
    "multi-cluster": Scenario(
        ("scan", str(EXAMPLE), "--root", str(EXAMPLE), "--today", "2026-11-27"), 1,
        {"--sarif-accepted": "accepted.sarif"}),
    "cel": Scenario(
        ("scan", str(CEL / "apps"), "--root", str(CEL), "--pack", "none", "--policies",
         str(CEL / "policies")), 1),
    "admission": Scenario(
        ("scan", str(ADMISSION / "manifests"), "--root", str(ADMISSION), "--pack", "none",
         "--policies", str(ADMISSION / "policies")), 1),
    "delta": Scenario(
        ("scan", DELTA, "--root", DELTA, "--base", "main", "--today", "2026-11-27"), 1),
    "drift": Scenario(
        ("drift", str(DRIFT / "repo"), "--root", str(DRIFT / "repo"), "--snapshot",
         str(DRIFT / "live-drifted.yaml"), "--cluster", "prod", "--pack", "pss-baseline"), 1),
}
FILE_FLAGS = {fmt: f"--{fmt}" for fmt in FILE_FORMATS}


def delta_repo(tmp: Path) -> Path:
    """The delta scenario's repository: tests/pipeline/test_delta.py's, with fixed dates."""
    import subprocess

    from tests.accept.test_four_eyes import put
    from tests.pipeline.test_delta import CONFIG, pod

    repo = tmp / "delta-repo"
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "A",
           "GIT_COMMITTER_EMAIL": "a@x", "GIT_AUTHOR_DATE": "2026-11-27T10:00:00Z",
           "GIT_COMMITTER_DATE": "2026-11-27T10:00:00Z"}

    def git(*args: str) -> None:
        done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, (args, done.stderr)

    put(repo, ".gitops-checker.yaml", CONFIG)
    put(repo, "prod/web.yaml", pod("web", privileged=True))
    put(repo, "prod/api.yaml", pod("api", host_network=True))
    put(repo, "stage/web.yaml", pod("web", privileged=True))
    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    git("checkout", "-q", "-b", "change")
    put(repo, "prod/web.yaml", pod("web", privileged=True, lead="# moved\n# down\n# three\n"))
    put(repo, "prod/api.yaml", pod("api"))
    put(repo, "prod/db.yaml", pod("db", privileged=True))
    git("add", "-A")
    git("commit", "-q", "-m", "change")
    return repo


@functools.cache
def outputs(name: str, tmp: Path) -> dict[str, str]:
    """Every file one run of scenario ``name`` writes (text is its standard output)."""
    scenario = SCENARIOS[name]
    out = tmp / name
    out.mkdir()
    files = {fmt: out / f"expected.{SUFFIX[fmt]}" for fmt in FILE_FLAGS}
    files |= {golden: out / golden for golden in scenario.extra.values()}
    flags = [arg for fmt, flag in FILE_FLAGS.items() for arg in (flag, str(files[fmt]))]
    flags += [arg for flag, golden in scenario.extra.items() for arg in (flag, str(files[golden]))]
    runner = CliRunner(env={"GITOPS_CHECKER_SECRET_KEY": "golden-key"})
    args = list(scenario.args)
    if DELTA in args:
        built = str(delta_repo(tmp))
        args = [built if a == DELTA else a for a in args]
    result = runner.invoke(cli, [*args, "--format", "text", *flags])
    assert result.exit_code == scenario.exit_code, result.output
    texts = {golden.name: golden.read_text(encoding="utf-8") for golden in files.values()}
    return {**texts, f"expected.{SUFFIX['text']}": result.stdout}


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("golden")


def golden_names(name: str) -> list[str]:
    return [*(f"expected.{SUFFIX[fmt]}" for fmt in sorted(RENDERERS)),
            *sorted(SCENARIOS[name].extra.values())]


# Repository templates in the scenarios run on real OPA, the default wherever it is installed
# (scripts/test.sh installs it; in CI a skip is a failure).
needs_opa = pytest.mark.skipif(not opa.available(), reason="the OPA binding is not installed")


@needs_opa
@pytest.mark.parametrize(("scenario", "golden"),
                         [(s, g) for s in SCENARIOS for g in golden_names(s)])
def test_golden_output(scenario: str, golden: str, tmp: Path) -> None:
    """Each output of each scenario matches its committed file byte for byte."""
    got = outputs(scenario, tmp)[golden]
    path = GOLDEN / scenario / golden
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8")


def test_every_scenario_has_a_golden_file_per_format() -> None:
    """The registry and the golden files agree: adding a format needs a suffix and goldens."""
    assert set(SUFFIX) == set(RENDERERS)
    for scenario in SCENARIOS:
        on_disk = {p.name for p in (GOLDEN / scenario).iterdir() if p.is_file()}
        assert on_disk == set(golden_names(scenario)), scenario
    assert {p.name for p in GOLDEN.iterdir()} == set(SCENARIOS)


def test_cel_scenario_reports_each_kind_of_cel_policy(tmp: Path) -> None:
    for golden, text in outputs("cel", tmp).items():
        for needle in ("vap/replica-limits", "replica-limits-audit", "K8sDisallowedTagsCel"):
            assert needle in text, (golden, needle)


def test_standard_output_matches_the_written_file(runner: CliRunner, tmp_path: Path) -> None:
    """``--format F`` on standard output and ``--F FILE`` write the same bytes."""
    scenario = SCENARIOS["basic"]
    for fmt, flag in FILE_FLAGS.items():
        path = tmp_path / f"out.{SUFFIX[fmt]}"
        result = runner.invoke(cli, [*scenario.args, "--format", fmt, flag, str(path)])
        assert result.exit_code == scenario.exit_code, result.output
        assert result.stdout == path.read_text(encoding="utf-8"), fmt


def test_drift_snapshot_is_the_scenarios_planted_changes(tmp_path: Path) -> None:
    """``live-drifted.yaml`` holds exactly what tests/drift/test_scenario.py plants."""
    from tests.drift.test_scenario import planted

    committed = yaml.safe_load((DRIFT / "live-drifted.yaml").read_text(encoding="utf-8"))
    assert committed == yaml.safe_load(planted(tmp_path).read_text(encoding="utf-8"))
    clean = yaml.safe_load((DRIFT / "live-clean.yaml").read_text(encoding="utf-8"))
    assert committed != clean
