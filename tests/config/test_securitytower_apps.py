"""Security Tower ``kind: Application`` files: stages become environments, never an exit 2.

``tests/fixtures/securitytower`` is written here in the shape of Security Tower's public
cluster template (securitytower/cluster-template): a Cluster file and Application files with
stages next to it in ``.securitytower/``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from click.testing import CliRunner

from checker.cli import cli
from checker.config import Stage, load_config, stage_order
from checker.overview.run import ImageOptions, inventory
from checker.overview.scope import Scope
from checker.pipeline import load_cluster
from tests.conftest import FIXTURES

FIXTURE = FIXTURES / "securitytower"


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def test_stages_go_to_their_clusters_in_their_namespaces() -> None:
    config = load_config(FIXTURE, None, [FIXTURE])
    assert [c.name for c in config.clusters] == ["shared-cluster", "prod-cluster"]
    shared, prod = config.clusters
    assert [(s.application, s.name, s.namespace, s.previous) for s in shared.stages] == [
        ("namespaces", "namespaces", "", ""), ("shop", "dev", "shop-dev", ""),
        ("shop", "staging", "shop-staging", "dev")]
    assert [(s.name, s.source) for s in prod.stages] == [
        ("prod", ".securitytower/shop-app.yaml:24")]
    assert prod.paths == () and prod.packs == ()   # only its stage, with the default packs
    shared_objects = {(r.kind, r.namespace, r.name, r.location.path)
                      for r in load_cluster(shared, FIXTURE).resources}
    assert ("Deployment", "shop-dev", "shop", "cluster/namespaces/shop-dev/deployment.yaml") in (
        shared_objects)
    assert ("Deployment", "shop-staging", "shop",
            "cluster/namespaces/shop-staging/deployment.yaml") in shared_objects
    assert not any(path.startswith("cluster/namespaces/shop-prod") or (ns == "" and kind ==
                   "Deployment") for kind, ns, _, path in shared_objects)
    prod_loaded = load_cluster(prod, FIXTURE)
    assert [(r.kind, r.namespace) for r in prod_loaded.resources] == [("Deployment", "shop-prod")]
    assert [(c.state, c.kind, c.what, c.path, c.line, c.produced)
            for c in prod_loaded.coverage] == [
        ("rendered", "securitytower", "Application shop stage prod",
         ".securitytower/shop-app.yaml", 24, 1)]


def test_security_tower_repository_scans_without_exit_2() -> None:
    result = CliRunner().invoke(cli, ["scan", str(FIXTURE), "--root", str(FIXTURE)])
    assert result.exit_code == 1, result.output
    assert ("cluster/namespaces/shop-prod/deployment.yaml:18:13: error [pss-privileged] "
            "container shop must not set securityContext.privileged to true "
            "(Deployment shop-prod/shop) [cluster prod-cluster]") in result.output
    assert "[cluster shared-cluster]" not in result.output  # its policy passes dev and staging


def test_previous_stage_is_the_promotion_order_images_use_for_behind() -> None:
    config = load_config(FIXTURE, None, [FIXTURE])
    assert stage_order(config.clusters) == {
        "dev": (), "namespaces": (), "prod": ("staging", "dev"), "staging": ("dev",)}
    scopes = tuple(Scope(c.name, c.environment, c.paths, c) for c in config.clusters)
    inv = inventory(ImageOptions(scopes=scopes, root=FIXTURE))
    assert inv.environments == ("dev", "namespaces", "staging", "prod")
    uses = {u.environment: u for u in inv.uses}
    assert set(uses) == {"dev", "staging", "prod"}
    # prod (1.1.0) is behind the stages before it; dev (1.2.0) is older than staging (1.3.0),
    # but staging comes after dev, so dev is not behind
    assert "behind" in uses["prod"].flags and uses["prod"].ahead_environments == ("dev",
                                                                                  "staging")
    assert "behind" not in uses["dev"].flags
    assert [row.behind for row in inv.matrix] == [("prod",)]


def test_broken_stages_are_findings_not_exit_2(tmp_path: Path) -> None:
    write(tmp_path, ".securitytower/cluster.yaml", """
        apiVersion: securitytower.io/v1alpha1
        kind: Cluster
        metadata: {name: one}
    """)
    write(tmp_path, ".securitytower/app.yaml", """
        apiVersion: securitytower.io/v1alpha1
        kind: Application
        metadata: {name: app}
        spec:
          stages:
            - name: a
              cluster: {name: one}
              resources: {path: not/there}
            - name: b
              cluster: {name: one}
              resources: {path: ok}
              previousStage: nowhere
            - cluster: {name: one}
            - name: d
              cluster: {name: one}
              resources: {path: ../../outside}
        ---
        apiVersion: securitytower.io/v1alpha1
        kind: Application
        metadata: {name: empty}
        spec: {}
    """)
    write(tmp_path, "ok/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    config = load_config(tmp_path, None, [tmp_path])
    (cluster,) = config.clusters
    assert [s.name for s in cluster.stages] == ["b"]
    found = sorted((f.rule_id, f.location.path, f.location.line, f.severity.label)
                   for f in cluster.problems)
    assert found == [
        ("input.missing-path", ".securitytower/app.yaml", 8, "error"),
        ("input.missing-path", ".securitytower/app.yaml", 16, "error"),
        ("input.not-checked", ".securitytower/app.yaml", 9, "warning"),
        ("input.not-checked", ".securitytower/app.yaml", 13, "warning"),
        ("input.not-checked", ".securitytower/app.yaml", 21, "warning"),
    ]
    result = CliRunner().invoke(cli, ["scan", str(tmp_path), "--root", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "stage a path 'not/there' does not exist" in result.output


def test_stage_dataclass_defaults() -> None:
    stage = Stage("app", "dev", "c", Path("x"))
    assert (stage.namespace, stage.previous, stage.line) == ("", "", 1)
