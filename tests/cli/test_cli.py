"""The command line: exit codes, flags, errors without tracebacks, the bundled example."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from checker.cli import cli
from tests.conftest import EXAMPLE, ROOT

Write = Callable[[str, str], Path]

CLEAN = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n  namespace: a\n"
PRIVILEGED = """
apiVersion: v1
kind: Pod
metadata:
  name: root
  namespace: a
spec:
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        privileged: true
"""


def test_clean_repository_exits_zero(write: Write, tmp_path: Path, runner: CliRunner) -> None:
    write("ok.yaml", CLEAN)
    result = runner.invoke(cli, ["scan", str(tmp_path), "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 resources in 1 files checked: 0 error, 0 warning, 0 note" in result.stdout


def test_violation_exits_one_and_fail_on_controls_it(write: Write, tmp_path: Path,
                                                     runner: CliRunner) -> None:
    """Exit 1 at or above --fail-on; `never` reports without failing."""
    write("pod.yaml", PRIVILEGED)
    base = ["scan", str(tmp_path), "--root", str(tmp_path)]
    failing = runner.invoke(cli, base)
    assert failing.exit_code == 1
    assert "pod.yaml:11:9: error [pss-privileged]" in failing.stdout
    assert runner.invoke(cli, [*base, "--fail-on", "never"]).exit_code == 0


def test_unreadable_file_never_passes(write: Write, tmp_path: Path, runner: CliRunner) -> None:
    """A file that cannot be parsed fails the run whatever --fail-on says."""
    write("ok.yaml", CLEAN)
    write("broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n")
    result = runner.invoke(cli, ["scan", str(tmp_path), "--root", str(tmp_path),
                                 "--fail-on", "never"])
    assert result.exit_code == 1
    assert "broken.yaml:4:1: error [input.parse-error]" in result.stdout


def test_usage_and_configuration_errors_exit_two(write: Write, tmp_path: Path,
                                                 runner: CliRunner) -> None:
    """Unknown pack, bad flag, bad policies folder: exit 2 with a one-line message."""
    write("ok.yaml", CLEAN)
    unknown = runner.invoke(cli, ["scan", str(tmp_path), "--pack", "nope"])
    assert unknown.exit_code == 2
    assert "invalid config: unknown pack 'nope'" in unknown.stderr
    assert runner.invoke(cli, ["scan", "--format", "xml"]).exit_code == 2
    write("policies/bad.yaml", """
        apiVersion: constraints.gatekeeper.sh/v1beta1
        kind: NoSuchTemplate
        metadata:
          name: x
    """)
    bad = runner.invoke(cli, ["scan", str(tmp_path / "ok.yaml"), "--root", str(tmp_path),
                              "--policies", str(tmp_path / "policies")])
    assert bad.exit_code == 2
    assert "no ConstraintTemplate defines kind 'NoSuchTemplate'" in bad.stderr
    assert "policies/bad.yaml:1" in bad.stderr


def test_writes_several_formats_in_one_run(write: Write, tmp_path: Path,
                                           runner: CliRunner) -> None:
    write("pod.yaml", PRIVILEGED)
    out = tmp_path / "out"
    result = runner.invoke(cli, ["scan", str(tmp_path / "pod.yaml"), "--root", str(tmp_path),
                                 "--format", "json", "--sarif", str(out / "r.sarif"),
                                 "--junit", str(out / "r.xml"), "--markdown",
                                 str(out / "r.md"), "--json", str(out / "r.json")])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == json.loads((out / "r.json").read_text())
    sarif_rules = {r["ruleId"] for r in json.loads((out / "r.sarif").read_text())["runs"][0]["results"]}
    assert "pss-privileged" in sarif_rules
    assert "<testsuites" in (out / "r.xml").read_text()
    assert "pss-privileged" in (out / "r.md").read_text()


def test_example_repository_findings(runner: CliRunner) -> None:
    """The bundled example: each deliberate violation is found at its line."""
    result = runner.invoke(cli, ["scan", str(EXAMPLE), "--root", str(EXAMPLE), "--policies",
                                 str(EXAMPLE / "policies"), "--format", "json"])
    assert result.exit_code == 1
    found = {(f["rule"], f["resource"], f["location"]["path"], f["location"]["line"])
             for f in json.loads(result.stdout)["findings"]}
    assert ("pss-privileged", "DaemonSet monitoring/node-exporter",
            "infrastructure/monitoring.yaml", 30) in found
    assert ("image-tag", "StatefulSet cache/redis", "infrastructure/cache.yaml", 25) in found
    # the staging overlay sets the tag to latest; the image line is in the base file
    assert ("image-tag", "Deployment podinfo-staging/podinfo",
            "apps/podinfo/base/deployment.yaml", 19) in found
    assert ("K8sRequiredLabels/workloads-must-have-owner", "Deployment podinfo-staging/podinfo",
            "apps/podinfo/base/deployment.yaml", 1) in found
    # production's patch adds the owner label: no finding for it
    assert not any(r == "Deployment podinfo/podinfo" and rule.startswith("K8s")
                   for rule, r, _, _ in found)


def test_python_dash_m_and_no_traceback(tmp_path: Path) -> None:
    """`python -m checker` works; an internal failure prints one line, exit 2."""
    version = subprocess.run([sys.executable, "-m", "checker", "--version"],
                             capture_output=True, text=True, check=False, cwd=ROOT)
    assert version.returncode == 0 and "gitops-checker" in version.stdout
    missing = subprocess.run([sys.executable, "-m", "checker", "verify", str(tmp_path / "x")],
                             capture_output=True, text=True, check=False, cwd=ROOT)
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr
    assert missing.stderr.startswith("gitops-checker: error: suite path does not exist")


def test_readme_workflow_is_the_linted_example() -> None:
    """The workflow README tells users to copy is the one actionlint checks in the tests."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    workflow = (ROOT / "examples" / "workflows" / "gitops-checker.yml").read_text(encoding="utf-8")
    assert f"```yaml\n{workflow}```\n" in readme


def test_readme_opens_with_the_example_scan_and_the_tests() -> None:
    """README's first two shell blocks: scan the bundled example, then install and run the tests."""
    import re

    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"),
                        re.DOTALL)
    assert "pip install . && gitops-checker scan examples/gitops-repo" in blocks[0]
    assert blocks[1].strip() == "bash scripts/test.sh"
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
