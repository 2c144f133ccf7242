"""Kustomize builds run several at a time; the results are the ones a build one at a time
gives, in the same order, for good overlays, failing ones and ones that are never built.
Everything here runs the real ``kubectl kustomize`` (or ``kustomize``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from checker.load import kustomize, load_paths
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


def _repository(write: Write, tmp_path: Path) -> list[Path]:
    """Six overlays of one base: four that build (one privileged), one Kustomize refuses, one
    naming a remote base, one whose patch is a symlink out of the repository."""
    write("base/kustomization.yaml", "resources: [deploy.yaml]\n")
    write("base/deploy.yaml", DEPLOY)
    for n in range(4):
        write(f"overlays/env-{n}/kustomization.yaml",
              f"resources: [../../base]\nnamespace: env-{n}\npatches:\n  - path: patch.yaml\n")
        write(f"overlays/env-{n}/patch.yaml", f"""
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: web
            spec:
              replicas: {n + 1}
              template:
                spec:
                  containers:
                    - name: web
                      securityContext:
                        privileged: {str(n == 2).lower()}
            """)
    write("overlays/broken/kustomization.yaml", "resources: [../../base, missing.yaml]\n")
    write("overlays/remote/kustomization.yaml",
          "resources:\n  - https://github.com/example/fleet//base?ref=v1\n")
    write("overlays/linked/kustomization.yaml",
          "resources: [../../base]\npatches:\n  - path: patch.yaml\n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.yaml"
    outside.write_text("kind: Deployment\n", encoding="utf-8")
    os.symlink(outside, tmp_path / "overlays" / "linked" / "patch.yaml")
    return sorted((tmp_path / "overlays").iterdir())


def test_concurrent_builds_give_the_serial_results_in_order(write: Write,
                                                            tmp_path: Path) -> None:
    dirs = _repository(write, tmp_path)
    serial = [kustomize.render(d, tmp_path) for d in dirs]
    one = list(kustomize.render_all(dirs, tmp_path, workers=1))
    four = list(kustomize.render_all(dirs, tmp_path, workers=4))
    assert one == serial
    assert four == serial
    # the cases are really there: 4 built overlays, a Kustomize error, 2 not built
    states = [(c.state, c.what) for r in serial for c in r.coverage]
    rendered = [what for state, what in states if state == "rendered"]
    assert rendered == [f"overlays/env-{n}" for n in range(4)]
    assert any("missing.yaml" in f.message for f in serial[0].findings)
    assert [d.name for d in dirs] == ["broken", "env-0", "env-1", "env-2", "env-3", "linked",
                                      "remote"]
    assert [c.state for c in serial[5].coverage] == ["not-checked"]  # symlink out
    assert [c.state for c in serial[6].coverage] == ["not-checked"]  # remote
    replicas = [r.body["spec"]["replicas"] for res in serial[1:5] for r in res.resources]
    assert replicas == [1, 2, 3, 4]


def test_scan_loading_is_the_same_with_one_build_at_a_time(
        write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _repository(write, tmp_path)
    concurrent = load_paths([tmp_path], tmp_path)
    monkeypatch.setattr(kustomize, "BUILD_WORKERS", 1)
    serial = load_paths([tmp_path], tmp_path)
    assert concurrent == serial
    assert len(concurrent.resources) == 4 and len(concurrent.findings) >= 3


def test_each_overlay_is_its_own_build(write: Write, tmp_path: Path) -> None:
    """One Kustomize build of both folders would bind ``a``'s reference to ``b``'s generated
    ConfigMap (``cfg-<hash>``: name references are fixed once, at a build's root, across all
    its objects); Flux and Argo CD build each alone, so the check must too."""
    write("a/kustomization.yaml", "namespace: shop\nresources: [deploy.yaml]\n")
    write("a/deploy.yaml", DEPLOY + "              envFrom: [{configMapRef: {name: cfg}}]\n")
    write("b/kustomization.yaml", """
        namespace: shop
        configMapGenerator:
          - name: cfg
            literals: [MODE=debug]
        """)
    a, b = (kustomize.render(tmp_path / d, tmp_path) for d in ("a", "b"))
    for together in (list(kustomize.render_all([tmp_path / "a", tmp_path / "b"], tmp_path)),
                     [a, b]):
        (deploy,) = together[0].resources
        container = deploy.body["spec"]["template"]["spec"]["containers"][0]
        assert container["envFrom"] == [{"configMapRef": {"name": "cfg"}}]
        (config,) = together[1].resources
        assert config.body["metadata"]["name"].startswith("cfg-")
