"""Custom resources' field types from the CRDs in the repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from checker.drift.compare import DriftOptions, compare
from checker.drift.crdtypes import canonical_duration
from checker.drift.secrets import SecretHasher
from checker.drift.sources import KindRef, Snapshot
from checker.load.objects import load_file
from checker.model import SourceLocation

HASHER = SecretHasher(b"unit-key")
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: certificates.example.io}
spec:
  group: example.io
  scope: Namespaced
  names: {kind: Certificate, plural: certificates}
  versions:
    - name: v1
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                duration: {type: string, format: duration}
                port: {x-kubernetes-int-or-string: true}
                size:
                  x-kubernetes-int-or-string: true
                  pattern: '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$'
                windows:
                  type: array
                  items: {type: object, properties: {every: {type: string, format: duration}}}
                name: {type: string}
---
apiVersion: example.io/v1
kind: Certificate
metadata: {name: web, namespace: shop}
spec:
  duration: 8760h
  port: 8443
  size: "0.5"
  windows: [{every: 90m}]
  name: web
"""


@pytest.mark.parametrize(("a", "b"), [
    ("8760h", "8760h0m0s"), ("90m", "1h30m"), ("1.5s", "1500ms"), ("0", "0s"),
    ("-2m", "-120s"),
])
def test_go_durations_compare_by_value(a: str, b: str) -> None:
    assert canonical_duration(a) == canonical_duration(b)


@pytest.mark.parametrize("text", ["", "8760", "1d", "h", "1h x"])
def test_not_a_duration_is_left_as_is(text: str) -> None:
    assert canonical_duration(text) == text


def test_crd_schema_types_normalize_custom_fields(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(CRD)
    res = load_file(tmp_path / "m.yaml", tmp_path).resources
    live: dict[str, Any] = yaml.safe_load(CRD.split("---\n")[1])
    live["spec"].update({"duration": "8760h0m0s", "port": "8443", "size": "500m",
                         "windows": [{"every": "1h30m0s"}]})
    crd_live = yaml.safe_load(CRD.split("---\n")[0])
    snap = Snapshot(objects=[live, crd_live], key_id=HASHER.key_id, read_kinds={
        KindRef("example.io", "Certificate"),
        KindRef("apiextensions.k8s.io", "CustomResourceDefinition")})
    result = compare(res, snap, HASHER, DriftOptions(entry=SourceLocation("x")))
    assert result.findings == []
    live["spec"]["duration"] = "8761h"
    live["spec"]["name"] = "other"
    result = compare(res, snap, HASHER, DriftOptions(entry=SourceLocation("x")))
    assert sorted(f.details["field"] for f in result.findings) == ["spec.duration", "spec.name"]
    duration = next(f for f in result.findings if f.details["field"] == "spec.duration")
    assert (duration.details["before"], duration.details["after"]) == ("8760h", "8761h")


def _cli(tmp_path: Path, config: str) -> Any:
    import json

    from click.testing import CliRunner

    from checker.cli import cli

    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    (repo / "cert.yaml").write_text(CRD.split("---\n")[1].replace("example.io", "cert-manager.io"))
    (repo / ".gitops-checker.yaml").write_text(config)
    live = yaml.safe_load(CRD.split("---\n")[1].replace("example.io", "cert-manager.io"))
    live["spec"]["duration"] = "8760h0m0s"
    (tmp_path / "live.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List",
                                                    "items": [live]}))
    return CliRunner().invoke(cli, ["drift", str(repo), "--root", str(repo), "--snapshot",
                                    str(tmp_path / "live.json"), "--format", "json"],
                              env={"GITHUB_EVENT_NAME": "push"})


def test_config_gives_types_no_crd_gives(tmp_path: Path) -> None:
    import json

    without = _cli(tmp_path, "drift:\n  fieldTypes: []\n")
    assert without.exit_code == 1, without.output
    assert [f["details"]["field"] for f in json.loads(without.stdout)["findings"]] == [
        "spec.duration"]
    typed = _cli(tmp_path, "drift:\n  fieldTypes:\n    - {group: cert-manager.io, kind: "
                           "Certificate, path: /spec/duration, type: duration}\n")
    assert typed.exit_code == 0, typed.output
    bad = _cli(tmp_path, "drift:\n  fieldTypes:\n    - {kind: Certificate, path: /spec/x, "
                         "type: seconds}\n")
    assert bad.exit_code == 2 and ".gitops-checker.yaml:3" in bad.output, bad.output
