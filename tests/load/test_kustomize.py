"""Kustomize, completely: components, cycles, whole messages, rendered-output problems, remote
bases. Everything here runs the real ``kubectl kustomize`` (or ``kustomize``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.load import kustomize, load_paths
from checker.model import Severity
from tests.conftest import needs_kustomize

Write = Callable[[str, str], Path]
pytestmark = needs_kustomize

DEPLOY = """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      template:
        spec:
          containers:
            - name: web
              image: nginx:1.27
"""


def test_self_reference_and_cycle_are_errors_naming_the_files(write: Write,
                                                                tmp_path: Path) -> None:
    """``resources: [., ../staging]`` used to hide both folders: 0 resources, exit 0."""
    write("prod/kustomization.yaml", "resources: [., ../staging]\n")
    write("prod/pod.yaml", DEPLOY)
    write("staging/kustomization.yaml", "resources:\n  - ../prod\n")
    write("other/kustomization.yaml", "resources: [../ring-a]\n")
    write("ring-a/kustomization.yaml", "resources: [../ring-b]\n")
    write("ring-b/kustomization.yaml", "resources:\n  - ../ring-a\n")
    result = load_paths([tmp_path], tmp_path)
    messages = sorted((f.location.path, f.location.line, f.message) for f in result.findings)
    assert all(f.rule_id == "input.kustomize-error" and f.severity is Severity.ERROR
               for f in result.findings)
    assert messages == [
        ("other/kustomization.yaml", 1, "kustomization other/kustomization.yaml was not "
         "rendered: it includes ring-a, which is in a kustomization cycle"),
        ("prod/kustomization.yaml", 1, "kustomization prod/kustomization.yaml includes its own "
         "folder (resources entry '.'); Kustomize cannot build it, so nothing in it was "
         "rendered"),
        ("ring-b/kustomization.yaml", 2, "kustomization cycle: ring-a/kustomization.yaml -> "
         "ring-b/kustomization.yaml -> ring-a/kustomization.yaml (resources entry '../ring-a' "
         "in ring-b/kustomization.yaml); Kustomize cannot build these folders, so nothing in "
         "them was rendered"),
        ("staging/kustomization.yaml", 2, "kustomization cycle: prod/kustomization.yaml -> "
         "staging/kustomization.yaml -> prod/kustomization.yaml (resources entry '../prod' in "
         "staging/kustomization.yaml); Kustomize cannot build these folders, so nothing in "
         "them was rendered"),
    ]


def test_cycle_fails_the_scan(write: Write, tmp_path: Path) -> None:
    write("prod/kustomization.yaml", "resources: [., ../staging]\n")
    write("staging/kustomization.yaml", "resources: [../prod]\n")
    write("prod/pod.yaml", DEPLOY)
    result = CliRunner().invoke(cli, ["scan", str(tmp_path), "--root", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "includes its own folder" in result.output


def test_components_render_only_through_the_kustomizations_that_use_them(
        write: Write, tmp_path: Path) -> None:
    write("base/kustomization.yaml", "resources: [deploy.yaml]\n")
    write("base/deploy.yaml", DEPLOY)
    write("components/debug/kustomization.yaml", """
        apiVersion: kustomize.config.k8s.io/v1alpha1
        kind: Component
        patches:
          - path: patch.yaml
            target: {kind: Deployment}
    """)
    write("components/debug/patch.yaml", """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: not-important
          labels: {debug: "on"}
    """)
    write("components/unused/kustomization.yaml", """
        apiVersion: kustomize.config.k8s.io/v1alpha1
        kind: Component
        patches:
          - path: patch.yaml
    """)
    write("components/unused/patch.yaml", "apiVersion: apps/v1\nkind: Deployment\n"
          "metadata: {name: ghost}\n")
    write("overlay/kustomization.yaml", """
        resources: [../base]
        components: [../components/debug]
    """)
    result = load_paths([tmp_path], tmp_path)
    assert result.findings == []  # the unused component is not built alone (an error before)
    (deploy,) = result.resources
    assert deploy.body["metadata"]["labels"] == {"debug": "on"}
    assert [(c.state, c.what, c.produced) for c in result.coverage] == [
        ("rendered", "overlay", 1)]


def test_whole_kustomize_message_without_temporary_paths_is_the_same_every_run(
        write: Write, tmp_path: Path) -> None:
    write("app/kustomization.yaml", """
        resources: [cm.yaml]
        patches:
          - patch: |
              - op: replace
                path: /data/missing
                value: x
            target: {kind: ConfigMap}
    """)
    write("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    first = load_paths([tmp_path], tmp_path).findings
    second = load_paths([tmp_path], tmp_path).findings
    assert first == second
    (finding,) = first
    assert finding.message.startswith("kustomize build app failed: ")
    # the whole chain, not its last line, and no klog header, timestamp, pid or temp path
    assert "accumulating resources" in finding.message
    assert "doc is missing path: /data/missing" in finding.message
    assert "command failed" not in finding.message
    assert str(tmp_path) not in finding.message and "/tmp" not in finding.message
    assert "gitops-checker-kustomize" not in finding.message


def test_clean_message_removes_klog_headers_and_paths() -> None:
    stderr = ('E1202 05:52:55.983129   15852 run.go:72] "command failed" err="accumulating '
              "resources: '/tmp/gitops-checker-kustomize-abc/x' at 2026-12-02T05:52:55Z: "
              "'/repo/app/file.yaml' \\\"quoted\\\"\"\n")
    text = kustomize.clean_message(stderr, Path("/tmp/gitops-checker-kustomize-abc"),
                                   Path("/repo"), 1)
    assert text == "accumulating resources: 'x' at <time>: 'app/file.yaml' \"quoted\""


def test_rendered_output_problems_are_findings(write: Write, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Objects past the nesting limit (or any other unreadable output) are never dropped."""
    write("app/kustomization.yaml", "resources: [cm.yaml]\n")
    write("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    deep = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: " + "[" * 300 + \
        "]" * 300 + "\n"
    monkeypatch.setattr(kustomize, "run_build", lambda wrapper, root, *_: (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\n" + deep
        + "---\n- just\n- a list\n"))
    result = load_paths([tmp_path], tmp_path)
    assert [r.name for r in result.resources] == ["ok"]
    messages = [f.message for f in result.findings]
    assert len(messages) == 2, messages
    assert messages[0].startswith("kustomize build app: rendered document 2 cannot be checked")
    assert messages[1] == "kustomize build app: rendered document 3 is not a Kubernetes object"
    assert all(f.severity is Severity.ERROR for f in result.findings)


@pytest.mark.parametrize("entry", [
    "https://github.com/example/config//base?ref=v1.0.0",
    "github.com/example/config/base?ref=main",
    "git@github.com:example/config.git//base",
    "ssh://git@gitlab.example.com/team/config.git",
])
def test_remote_bases_are_not_fetched_without_an_allowed_host(
        write: Write, tmp_path: Path, entry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    write("app/kustomization.yaml", f"resources:\n  - deploy.yaml\n  - {entry}\n")
    write("app/deploy.yaml", DEPLOY)
    ran: list[Path] = []
    monkeypatch.setattr(kustomize, "run_build", lambda wrapper, root, *_: ran.append(wrapper) or "")
    result = load_paths([tmp_path], tmp_path)
    assert ran == []  # kustomize never ran, so nothing was fetched
    (finding,) = result.findings
    assert finding.rule_id == "input.not-checked"
    assert (finding.location.path, finding.location.line) == ("app/kustomization.yaml", 3)
    assert "remote resources entry" in finding.message
    assert "kustomize.remoteHosts" in finding.message
    (entry_ledger,) = result.coverage
    assert entry_ledger.state == "not-checked"


def test_allowed_hosts_never_include_loopback_or_private_addresses() -> None:
    assert "not allowed" in kustomize.host_allowed("github.com", ["gitlab.com"])
    for host in ("localhost", "127.0.0.1", "10.1.2.3", "169.254.169.254", "[::1]".strip("[]")):
        why = kustomize.host_allowed(host, [host])
        assert why, host
        assert "non-public" in why or "cannot be resolved" in why


def test_remote_host_and_detection() -> None:
    assert kustomize.is_remote("https://github.com/a/b//c")
    assert kustomize.is_remote("github.com/a/b/c?ref=x")
    assert kustomize.is_remote("git@github.com:a/b.git")
    assert not kustomize.is_remote("../base")
    assert not kustomize.is_remote("deploy.yaml")
    assert kustomize.remote_host("git::https://user@Git.Example.com:8443/x") == (
        "git.example.com")
    assert kustomize.remote_host("git@github.com:a/b.git") == "github.com"


def test_entries_that_leave_the_repository_are_never_built(write: Write, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            ) -> None:
    """A pull request may not make Kustomize read folders or files outside the checkout."""
    outside = tmp_path / "outside"
    (outside / "secret").mkdir(parents=True)
    (outside / "secret" / "kustomization.yaml").write_text("resources: []\n", encoding="utf-8")
    repo = tmp_path / "repo"
    write("repo/app/kustomization.yaml", "resources:\n  - ../../outside/secret\n")
    ran: list[Path] = []
    monkeypatch.setattr(kustomize, "run_build", lambda wrapper, root, *_: ran.append(wrapper) or "")
    result = load_paths([repo], repo)
    assert ran == []
    (finding,) = result.findings
    assert finding.rule_id == "input.kustomize-error"
    assert (finding.location.path, finding.location.line) == ("app/kustomization.yaml", 2)
    assert finding.message == ("kustomize build app not run: resources entry "
                               "'../../outside/secret' in app/kustomization.yaml leaves the "
                               "repository")


def test_patched_fields_point_at_the_patch_lines(write: Write, tmp_path: Path) -> None:
    """A field an overlay's patch sets points at the patch: the line in a patch file (a
    container merged by name), in an inline strategic-merge block, or the JSON 6902
    operation's value; fields the patches leave alone still point at the base."""
    write("base/deploy.yaml", DEPLOY)
    write("base/kustomization.yaml", "resources: [deploy.yaml]\n")
    write("prod/kustomization.yaml", """
        resources: [../base]
        namePrefix: prod-
        patches:
          - path: privileged.yaml
          - patch: |
              apiVersion: apps/v1
              kind: Deployment
              metadata:
                name: web
              spec:
                replicas: 3
          - target: {kind: Deployment, name: web}
            patch: |
              - op: add
                path: /spec/template/spec/hostNetwork
                value: true
    """)
    write("prod/privileged.yaml", """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          template:
            spec:
              containers:
                - name: web
                  securityContext:
                    privileged: true
    """)
    loaded = load_paths([tmp_path / "prod"], tmp_path)
    assert loaded.findings == []
    (deploy,) = loaded.resources
    assert deploy.name == "prod-web"
    container = ("spec", "template", "spec", "containers", 0)

    def at(*path: str | int) -> str:
        return str(deploy.locate(path))

    assert at(*container, "securityContext", "privileged") == "prod/privileged.yaml:11"
    assert at("spec", "replicas") == "prod/kustomization.yaml:11"
    assert at("spec", "template", "spec", "hostNetwork") == "prod/kustomization.yaml:16"  # value:
    assert at(*container, "image") == "base/deploy.yaml:10"
    assert str(deploy.location) == "base/deploy.yaml:1"


def test_later_patch_of_the_same_field_wins(write: Write, tmp_path: Path) -> None:
    write("base/deploy.yaml", DEPLOY)
    write("base/kustomization.yaml", """
        resources: [deploy.yaml]
        patches:
          - target: {kind: Deployment}
            patch: '[{"op": "add", "path": "/spec/replicas", "value": 2}]'
    """)
    write("prod/kustomization.yaml", """
        resources: [../base]
        patches:
          - target: {kind: Deployment}
            patch: '[{"op": "replace", "path": "/spec/replicas", "value": 5}]'
    """)
    loaded = load_paths([tmp_path / "prod"], tmp_path)
    (deploy,) = loaded.resources
    assert deploy.body["spec"]["replicas"] == 5
    assert str(deploy.locate(("spec", "replicas"))) == "prod/kustomization.yaml:4"


def test_patch_of_another_object_does_not_move_fields(write: Write, tmp_path: Path) -> None:
    write("base/deploy.yaml", DEPLOY)
    write("base/kustomization.yaml", "resources: [deploy.yaml]\n")
    write("prod/kustomization.yaml", """
        resources: [../base]
        patches:
          - target: {kind: Deployment, name: other}
            patch: '[{"op": "add", "path": "/spec/paused", "value": true}]'
    """)
    loaded = load_paths([tmp_path / "prod"], tmp_path)
    (deploy,) = loaded.resources
    assert "paused" not in deploy.body["spec"]
    assert deploy.locate(("spec", "template")).path == "base/deploy.yaml"
