"""Snapshot files: our format, kubectl List output, multi-document YAML, and bad input."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.drift.secrets import SecretHasher
from checker.drift.sources import FileSource, KindRef, Snapshot, Unreadable, write_snapshot
from checker.errors import InputError

HASHER = SecretHasher(b"k")
VALUE = "pa55-w0rd-value"
B64 = base64.b64encode(VALUE.encode()).decode()


def test_multi_document_yaml_with_a_list_inside(tmp_path: Path) -> None:
    path = tmp_path / "live.yaml"
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n---\n"
        "apiVersion: v1\nkind: SecretList\nitems:\n"
        f"  - apiVersion: v1\n    kind: Secret\n    metadata:\n      name: s\n      namespace: x\n"
        "      annotations:\n        kubectl.kubernetes.io/last-applied-configuration: "
        f"'{{\"data\":{{\"p\":\"{B64}\"}}}}'\n"
        f"    data:\n      p: {B64}\n---\n# a comment only\n---\nnot: a kubernetes object\n")
    snap = FileSource(path, HASHER).read()
    assert sorted(o["metadata"]["name"] for o in snap.objects) == ["a", "s"]
    assert snap.read_kinds == {KindRef("", "ConfigMap"), KindRef("", "Secret")}
    assert snap.key_id == HASHER.key_id
    dumped = json.dumps(snap.objects)
    assert VALUE not in dumped and B64 not in dumped
    secret = next(o for o in snap.objects if o["kind"] == "Secret")
    assert secret["data"]["p"] == HASHER.digest(VALUE.encode())


def test_our_format_round_trip_is_deterministic(tmp_path: Path) -> None:
    snap = Snapshot(objects=[{"apiVersion": "apps/v1", "kind": "Deployment",
                              "metadata": {"name": "b", "namespace": "n"}},
                             {"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "a", "namespace": "n"}}],
                    read_kinds={KindRef("apps", "Deployment"), KindRef("", "ConfigMap")},
                    unreadable=[Unreadable("", "Secret", "HTTP 403 forbidden")],
                    key_id=HASHER.key_id, context="prod")
    out = tmp_path / "snap.json"
    write_snapshot(snap, out)
    again = FileSource(out, HASHER).read()
    assert again.unreadable == snap.unreadable and again.context == "prod"
    assert [o["kind"] for o in again.objects] == ["ConfigMap", "Deployment"]
    second = tmp_path / "second.json"
    write_snapshot(again, second)
    assert second.read_bytes() == out.read_bytes()


@pytest.mark.parametrize(("text", "pattern"), [
    ("items:\n  - a: [1, 2\n", r"live\.yaml:\d+: cannot parse snapshot"),
    ("just: data\n", r"live\.yaml: no Kubernetes objects"),
    ('{"apiVersion": "gitops-checker.io/v9", "kind": "ClusterSnapshot"}',
     r"unsupported snapshot apiVersion"),
    ('{"apiVersion": "gitops-checker.io/v1alpha1", "kind": "ClusterSnapshot", '
     '"kinds": [{"kind": "X"}]}', r"malformed snapshot header"),
])
def test_bad_snapshot_files_name_the_file(tmp_path: Path, text: str, pattern: str) -> None:
    path = tmp_path / "live.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=pattern):
        FileSource(path, HASHER, "live.yaml").read()


def test_missing_snapshot_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    result = CliRunner().invoke(cli, ["drift", str(tmp_path), "--root", str(tmp_path),
                                      "--snapshot", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 2
    assert "absent.yaml: cannot read snapshot" in result.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: List\nitems:\n  - {\n")
    result = CliRunner().invoke(cli, ["drift", str(tmp_path), "--root", str(tmp_path),
                                      "--snapshot", str(broken)])
    assert result.exit_code == 2
    assert "broken.yaml:" in result.output and "cannot parse snapshot" in result.output


def test_bookkeeping_is_dropped_on_read(tmp_path: Path) -> None:
    path = tmp_path / "live.yaml"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "a", "managedFields": [{"manager": "kubectl"}], "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "me"}}}))
    (obj,) = FileSource(path, HASHER).read().objects
    assert obj["metadata"] == {"name": "a", "annotations": {"keep": "me"}}


def test_in_cluster_without_a_pod_is_exit_2(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = CliRunner().invoke(cli, ["drift", str(tmp_path), "--root", str(tmp_path),
                                      "--in-cluster"])
    assert result.exit_code == 2
    assert "cannot load cluster credentials from in-cluster service account" in result.output


def test_markdown_says_when_secret_values_were_not_compared(tmp_path: Path) -> None:
    from checker.options import DriftRunOptions
    from checker.pipeline import drift as run_drift
    from checker.report.markdown import drift_section

    (tmp_path / "s.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n"
                                     "  namespace: default\nstringData:\n  a: b\n")
    snap = Snapshot(objects=[{"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "s", "namespace": "default"}, "data": {"a": "hmac-sha256:00"}}],
        read_kinds={KindRef("", "Secret")}, key_id="someone-elses-key",
        not_searched=[Unreadable("batch", "Job", "HTTP 403 forbidden")])
    out = tmp_path / "snap.json"
    write_snapshot(snap, out)
    report = run_drift(DriftRunOptions(paths=(tmp_path / "s.yaml",), root=tmp_path,
                                       snapshot=out, packs=("none",)), hasher=HASHER)
    assert report.findings == ()
    text = "\n".join(drift_section(report))
    assert "only Secret key names were compared" in text
    assert "Not searched for unmanaged objects (no access): Job.batch." in text
