"""Following Flux Kustomizations: spec.path, cycles, targetNamespace, postBuild.substitute."""

from __future__ import annotations

from pathlib import Path

from checker.config import load_config
from checker.load.flux import FluxSync, apply, follow
from checker.load.objects import SourceLocation, make_resource
from checker.pipeline import load_cluster
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "multi-cluster"
FLUX = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: flux-system
spec:
  path: {path}
  sourceRef: {{kind: GitRepository, name: flux-system}}
"""


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_follow_is_recursive_stops_at_cycles_and_reports_missing_paths(tmp_path: Path) -> None:
    write(tmp_path, "clusters/prod/sync.yaml", FLUX.format(name="flux-system",
                                                           path="./clusters/prod"))
    write(tmp_path, "clusters/prod/apps.yaml", FLUX.format(name="apps", path="./apps"))
    write(tmp_path, "apps/nested.yaml", FLUX.format(name="nested", path="./deep/app"))
    write(tmp_path, "deep/app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    write(tmp_path, "clusters/prod/broken.yaml", "# header\n" + FLUX.format(
        name="broken", path="./not/there"))
    syncs, findings = follow([tmp_path / "clusters/prod"], tmp_path)
    # the cluster folder's own sync is a sync too: it is rendered as Flux renders it
    assert [(s.name, s.path.relative_to(tmp_path).as_posix()) for s in syncs] == [
        ("flux-system/apps", "apps"), ("flux-system/flux-system", "clusters/prod"),
        ("flux-system/nested", "deep/app")]
    assert syncs[0].location.path == "clusters/prod/apps.yaml"
    (missing,) = findings
    assert missing.rule_id == "input.missing-path"
    assert (missing.location.path, missing.location.line) == ("clusters/prod/broken.yaml", 8)
    assert "spec.path './not/there' does not exist" in missing.message


def test_flux_path_outside_the_repository_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "c/ks.yaml", FLUX.format(name="x", path="../../etc"))
    syncs, findings = follow([tmp_path / "c"], tmp_path)
    assert syncs == []
    assert "leaves the repository" in findings[0].message


def test_apply_sets_target_namespace_and_substitutes_like_flux() -> None:
    body = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web-${stage}", "namespace": "old",
                     "labels": {"tier": "${tier:=backend}", "esc": "$${literal}"}},
        "spec": {"replicas": "${replicas}", "template": {"spec": {"containers": [
            {"name": "c", "image": "repo/web:${tag}", "env": [{"value": "${unset}"}]}]}}},
    }
    deploy = make_resource(body, SourceLocation("d.yaml", 1), {})
    ns = make_resource({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}},
                       SourceLocation("n.yaml", 1), {})
    opted_out = make_resource({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "${stage}", "annotations": {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}
    }}, SourceLocation("c.yaml", 1), {})
    sync = FluxSync(path=Path("."), name="flux-system/apps", target_namespace="prod",
                    substitute={"stage": "prod", "replicas": "3", "tag": "1.2.3"})
    out_deploy, out_ns, out_cm = apply([deploy, ns, opted_out], sync)
    assert out_deploy.name == "web-prod"
    assert out_deploy.namespace == "prod"
    assert out_deploy.body["metadata"]["labels"] == {"tier": "backend", "esc": "${literal}"}
    assert out_deploy.body["spec"]["replicas"] == 3  # a number again, as in Flux
    container = out_deploy.body["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "repo/web:1.2.3"
    assert container["env"][0]["value"] == "${unset}"  # unknown variables stay as written
    assert out_ns.namespace == "" and out_ns is ns  # cluster-scoped: untouched
    assert out_cm.name == "${stage}" and out_cm.namespace == "prod"
    assert body["metadata"]["name"] == "web-${stage}"  # the input is not mutated


def test_example_clusters_load_their_synced_state_with_substitutions() -> None:
    config = load_config(EXAMPLE)
    staging, production = config.clusters
    prod = {r.display: r for r in load_cluster(production, EXAMPLE).resources}
    stag = {r.display: r for r in load_cluster(staging, EXAMPLE).resources}
    podinfo = prod["Deployment podinfo/podinfo"]
    assert podinfo.body["metadata"]["labels"]["stage"] == "production"
    image = podinfo.body["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "ghcr.io/stefanprodan/podinfo:6.7.1"
    assert podinfo.location.path == "apps/podinfo/base/deployment.yaml"
    assert stag["Deployment podinfo-staging/podinfo"].body["metadata"]["labels"]["stage"] == (
        "staging")
    assert "StatefulSet cache/redis" in prod and "StatefulSet cache/redis" not in stag
    # Security Tower cluster files are configuration, never desired state.
    assert not any(r.location.path.startswith(".securitytower/") for r in prod.values())


def test_sync_of_a_parent_folder_does_not_duplicate_objects(tmp_path: Path) -> None:
    write(tmp_path, "clusters/prod/sync.yaml", FLUX.format(name="root", path="./"))
    write(tmp_path, "apps/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    config = load_config(tmp_path, default_paths=[tmp_path / "clusters/prod"])
    (cluster,) = config.clusters
    assert [s.name for s in cluster.syncs] == ["flux-system/root"]
    loaded = load_cluster(cluster, tmp_path)
    assert sorted(r.display for r in loaded.resources) == [
        "ConfigMap c", "Kustomization flux-system/root"]
