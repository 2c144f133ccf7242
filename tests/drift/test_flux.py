"""Drift compares against the desired state as scan loads it: Flux Kustomizations followed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from checker.cli import cli

Write = Callable[[str, str], Path]

FLUX = """
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  path: ./apps
  prune: true
  targetNamespace: shop
  sourceRef:
    kind: GitRepository
    name: flux-system
  postBuild:
    substitute:
      version: "1.2.3"
"""


def _repo(write: Write) -> None:
    write("clusters/prod/apps.yaml", FLUX)
    write("apps/settings.yaml", """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
        data:
          version: "${version}"
    """)


def _live(version: str) -> str:
    flux = FLUX.strip("\n")
    return f"""{flux}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
  labels:
    kustomize.toolkit.fluxcd.io/name: apps
    kustomize.toolkit.fluxcd.io/namespace: flux-system
data:
  version: "{version}"
"""


def test_flux_target_namespace_and_substitution_are_applied(write: Write,
                                                            tmp_path: Path) -> None:
    _repo(write)
    snapshot = write("live.yaml", _live("1.2.3"))
    args = ["drift", str(tmp_path / "clusters/prod"), "--root", str(tmp_path), "--snapshot",
            str(snapshot), "--pack", "none", "--format", "json"]
    in_sync = CliRunner().invoke(cli, args)
    assert in_sync.exit_code == 0, in_sync.output
    assert json.loads(in_sync.stdout)["findings"] == []
    drifted_snapshot = write("live.yaml", _live("9.9.9"))
    assert drifted_snapshot == snapshot
    drifted = CliRunner().invoke(cli, args)
    assert drifted.exit_code == 1
    (finding,) = json.loads(drifted.stdout)["findings"]
    assert finding["rule"] == "drift.modified"
    assert finding["resource"] == "ConfigMap shop/settings"
    assert (finding["location"]["path"], finding["location"]["line"]) == ("apps/settings.yaml", 6)  # the version line


def test_drift_ignore_rules_from_the_repository_config(write: Write, tmp_path: Path) -> None:
    """drift.ignore in .gitops-checker.yaml silences a field; a bad entry names its line."""
    _repo(write)
    snapshot = write("live.yaml", _live("9.9.9"))
    args = ["drift", str(tmp_path / "clusters/prod"), "--root", str(tmp_path), "--snapshot",
            str(snapshot), "--pack", "none", "--format", "json"]
    write(".gitops-checker.yaml", """
        version: 1
        drift:
          ignore:
            - kind: ConfigMap
              name: settings
              jsonPointers: [/data/version]
              reason: set by the release pipeline
    """)
    ignored = CliRunner().invoke(cli, args)
    assert ignored.exit_code == 0, ignored.output
    assert json.loads(ignored.stdout)["findings"] == []
    write(".gitops-checker.yaml", """
        version: 1
        drift:
          ignore:
            - kind: ConfigMap
              jsonPointer: /data/version
    """)
    bad = CliRunner().invoke(cli, args)
    assert bad.exit_code == 2
    assert ".gitops-checker.yaml:4: unknown key(s) in ignore entry: jsonPointer" in bad.output


def test_drift_junit_follows_fail_on(write: Write, tmp_path: Path) -> None:
    """Below --fail-on, drift is a skipped JUnit case and exit 0; at or above it, a failure."""
    from junitparser import JUnitXml

    _repo(write)
    snapshot = write("live.yaml", _live("9.9.9"))
    counts = {}
    for fail_on in ("error", "never"):
        junit = tmp_path / f"{fail_on}.xml"
        result = CliRunner().invoke(cli, [
            "drift", str(tmp_path / "clusters/prod"), "--root", str(tmp_path), "--snapshot",
            str(snapshot), "--pack", "none", "--fail-on", fail_on, "--junit", str(junit)])
        (suite,) = list(JUnitXml.fromfile(str(junit)))
        counts[fail_on] = (result.exit_code, suite.failures, suite.skipped)
    assert counts == {"error": (1, 1, 0), "never": (0, 0, 1)}
