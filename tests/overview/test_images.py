"""Image inventory: extraction, flags, environments, snapshots, every output format."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from checker.cli import cli
from checker.load.objects import make_resource
from checker.model import SourceLocation
from checker.overview.extract import declared_images
from checker.overview.images import parse_image, registry_allowed
from checker.overview.render_images import CSV_COLUMNS
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "multi-cluster"
DIGEST = "sha256:" + "1f" * 32
LIVE_DIGEST = "sha256:" + "9a" * 32

STAGING = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: registry.example.com/shop/web:1.4.0
      containers:
        - name: web
          image: registry.example.com/shop/web:1.4.0
        - name: proxy
          image: envoyproxy/envoy:v1.30.1
      ephemeralContainers:
        - name: debug
          image: busybox
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
  namespace: shop
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: report
              image: registry.example.com/shop/report:2.0.1
"""

PRODUCTION = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    spec:
      containers:
        - name: web
          image: registry.example.com/shop/web:1.3.2@{DIGEST}
        - name: proxy
          image: envoyproxy/envoy:v1.30.1
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: admin
  namespace: shop
spec:
  template:
    spec:
      containers:
        - name: admin
          image: registry.example.com/shop/web:1.3.0
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
  namespace: shop
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: report
              image: registry.example.com/shop/report:2.0.1
"""

SNAPSHOT = f"""\
apiVersion: v1
kind: List
items:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: web, namespace: shop, uid: d1}}
    spec:
      template:
        spec:
          containers:
            - {{name: web, image: "registry.example.com/shop/web:1.3.1"}}
            - {{name: proxy, image: "envoyproxy/envoy:v1.30.1"}}
  - apiVersion: apps/v1
    kind: ReplicaSet
    metadata:
      name: web-7d9f
      namespace: shop
      ownerReferences: [{{kind: Deployment, name: web, apiVersion: apps/v1}}]
  - apiVersion: v1
    kind: Pod
    metadata:
      name: web-7d9f-x2x
      namespace: shop
      ownerReferences: [{{kind: ReplicaSet, name: web-7d9f, apiVersion: apps/v1}}]
    spec:
      containers:
        - {{name: web, image: "registry.example.com/shop/web:1.3.1"}}
    status:
      containerStatuses:
        - name: web
          image: registry.example.com/shop/web:1.3.1
          imageID: "registry.example.com/shop/web@{LIVE_DIGEST}"
  - apiVersion: batch/v1
    kind: CronJob
    metadata: {{name: report, namespace: shop}}
    spec:
      jobTemplate:
        spec:
          template:
            spec:
              containers:
                - {{name: report, image: "registry.example.com/shop/report:2.0.1"}}
"""


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def tree(tmp_path: Path) -> Path:
    write(tmp_path, "staging/apps.yaml", STAGING)
    write(tmp_path, "production/apps.yaml", PRODUCTION)
    write(tmp_path, "snapshots/production.yaml", SNAPSHOT)
    return tmp_path


def run(args: list[str]) -> Any:
    result = CliRunner().invoke(cli, ["images", *args])
    return result


def two_clusters(root: Path, *extra: str, fmt: str = "json") -> Any:
    return run(["--cluster", f"staging={root / 'staging'}",
                "--cluster", f"production={root / 'production'}", "--root", str(root),
                "--format", fmt, *extra])


def by_place(data: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(u["cluster"], u["resource"]["name"], u["container"]): u for u in data["images"]}


def test_json_inventory_across_environments(tmp_path: Path) -> None:
    root = tree(tmp_path)
    result = two_clusters(root, "--allowed-registry", "registry.example.com",
                          "--allowed-registry", "docker.io/library")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["clusters"] == ["staging", "production"]
    assert data["environments"] == ["staging", "production"]
    uses = by_place(data)
    assert len(data["images"]) == 9
    web = uses[("staging", "web", "web")]
    assert web == {
        "cluster": "staging", "environment": "staging",
        "image": {"reference": "registry.example.com/shop/web:1.4.0",
                  "registry": "registry.example.com", "repository": "shop/web",
                  "tag": "1.4.0", "digest": "", "error": ""},
        "resource": {"kind": "Deployment", "namespace": "shop", "name": "web"},
        "container": "web", "containerType": "container",
        "location": {"path": "staging/apps.yaml", "line": 14, "column": 11},
        "live": None, "flags": ["not-pinned"], "newestInEnvironment": "",
        "newestSeen": "", "newestInRegistry": "", "behindOf": [],
    }
    assert uses[("staging", "web", "migrate")]["containerType"] == "initContainer"
    assert uses[("staging", "web", "migrate")]["location"]["line"] == 11
    debug = uses[("staging", "web", "debug")]
    assert debug["containerType"] == "ephemeralContainer"
    assert debug["image"]["repository"] == "library/busybox"
    assert debug["flags"] == ["mutable-tag", "not-pinned"]
    proxy = uses[("staging", "web", "proxy")]
    assert proxy["flags"] == ["not-pinned", "disallowed-registry"]  # docker.io/envoyproxy
    assert uses[("staging", "report", "report")]["location"]["line"] == 34
    # production runs web 1.3.2 (pinned) while staging has 1.4.0: production is behind.
    prod_web = uses[("production", "web", "web")]
    assert prod_web["flags"] == ["behind"]
    assert prod_web["behindOf"] == ["staging"]
    assert prod_web["newestSeen"] == "1.4.0"
    assert prod_web["image"]["digest"] == DIGEST
    # admin runs 1.3.0 while web in the same environment runs 1.3.2: outdated and behind.
    admin = uses[("production", "admin", "admin")]
    assert admin["flags"] == ["not-pinned", "outdated", "behind"]
    assert admin["newestInEnvironment"] == "1.3.2"
    assert uses[("production", "report", "report")]["flags"] == ["not-pinned"]
    versions = {row["image"]: row for row in data["versions"]}
    assert versions["registry.example.com/shop/web"] == {
        "image": "registry.example.com/shop/web",
        "versions": {"staging": ["1.4.0"], "production": ["1.3.0", "1.3.2"]},
        "newest": "1.4.0", "behind": ["production"]}
    assert versions["registry.example.com/shop/report"]["behind"] == []
    assert versions["docker.io/library/busybox"]["versions"] == {"staging": ["latest"]}
    assert data["summary"] == {"behind": 2, "disallowed-registry": 2, "images": 6,
                               "invalid-reference": 0, "mutable-tag": 1, "not-pinned": 8,
                               "outdated": 1, "uses": 9}
    assert data["errors"] == []


def test_snapshot_shows_what_runs(tmp_path: Path) -> None:
    root = tree(tmp_path)
    result = two_clusters(root, "--snapshot", f"production={root / 'snapshots/production.yaml'}")
    assert result.exit_code == 0, result.output
    uses = by_place(json.loads(result.output))
    assert uses[("production", "web", "web")]["live"] == {
        "status": "different", "image": "registry.example.com/shop/web:1.3.1",
        "imageIDs": [LIVE_DIGEST]}
    assert uses[("production", "web", "proxy")]["live"] == {
        "status": "same", "image": "envoyproxy/envoy:v1.30.1", "imageIDs": []}
    assert uses[("production", "report", "report")]["live"]["status"] == "same"
    assert uses[("production", "admin", "admin")]["live"] == {
        "status": "missing", "image": "", "imageIDs": []}
    assert uses[("staging", "web", "web")]["live"] is None  # no snapshot for staging
    text = two_clusters(root, "--snapshot", f"production={root / 'snapshots/production.yaml'}",
                        fmt="text")
    assert "different: registry.example.com/shop/web:1.3.1" in text.output
    assert text.output.splitlines()[0].split()[-2:] == ["LIVE", "FLAGS"]


def test_snapshot_for_unknown_cluster_is_a_usage_error(tmp_path: Path) -> None:
    root = tree(tmp_path)
    result = two_clusters(root, "--snapshot", f"nope={root / 'snapshots/production.yaml'}")
    assert result.exit_code == 2
    assert "staging, production" in result.output


def test_csv_has_fixed_columns(tmp_path: Path) -> None:
    root = tree(tmp_path)
    result = two_clusters(root, fmt="csv")
    rows = list(csv.reader(io.StringIO(result.output)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 10
    assert [r[0] for r in rows[1:]] == ["staging"] * 5 + ["production"] * 4  # config order
    record = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert record == {
        "cluster": "staging", "environment": "staging", "registry": "docker.io",
        "repository": "envoyproxy/envoy", "tag": "v1.30.1", "digest": "",
        "reference": "envoyproxy/envoy:v1.30.1", "kind": "Deployment", "namespace": "shop",
        "name": "web", "container": "proxy", "container_type": "container",
        "path": "staging/apps.yaml", "line": "16", "live_status": "", "live_image": "",
        "live_image_ids": "", "flags": "not-pinned", "newest_in_environment": "",
        "newest_seen": "", "newest_in_registry": "", "behind_of": ""}
    admin = next(dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows[1:] if r[9] == "admin")
    assert admin["flags"] == "not-pinned outdated behind"
    assert admin["behind_of"] == "staging"
    assert admin["line"] == "25"


def test_markdown_and_text(tmp_path: Path) -> None:
    root = tree(tmp_path)
    md = two_clusters(root, fmt="markdown").output
    assert md.startswith("# Image inventory\n")
    assert "| registry.example.com/shop/web | 1.4.0 | 1.3.0, 1.3.2 | production |" in md
    assert "- `behind`: 2" in md
    text = two_clusters(root, fmt="text").output
    assert "registry.example.com/shop/web: staging=1.4.0  production=1.3.0|1.3.2  " \
           "(behind: production)" in text
    assert text.rstrip().endswith("9 image uses, 6 distinct images; 2 behind, 1 mutable-tag, "
                                  "8 not-pinned, 1 outdated")


EXPECTED_MARKDOWN = f"""\
# Image inventory

9 image uses, 6 distinct images.

| CLUSTER | ENVIRONMENT | IMAGE | TAG | DIGEST | DECLARED AT | RESOURCE | CONTAINER | LIVE | FLAGS |
|---|---|---|---|---|---|---|---|---|---|
| staging | staging | docker.io/envoyproxy/envoy | v1.30.1 | - | staging/apps.yaml:16 \
| Deployment shop/web | proxy | - | not-pinned, disallowed-registry |
| staging | staging | docker.io/library/busybox | - | - | staging/apps.yaml:19 \
| Deployment shop/web | debug | - | mutable-tag, not-pinned, disallowed-registry |
| staging | staging | registry.example.com/shop/report | 2.0.1 | - | staging/apps.yaml:34 \
| CronJob shop/report | report | - | not-pinned |
| staging | staging | registry.example.com/shop/web | 1.4.0 | - | staging/apps.yaml:11 \
| Deployment shop/web | migrate | - | not-pinned |
| staging | staging | registry.example.com/shop/web | 1.4.0 | - | staging/apps.yaml:14 \
| Deployment shop/web | web | - | not-pinned |
| production | production | docker.io/envoyproxy/envoy | v1.30.1 | - | production/apps.yaml:13 \
| Deployment shop/web | proxy | same | not-pinned, disallowed-registry |
| production | production | registry.example.com/shop/report | 2.0.1 | - | production/apps.yaml:39 \
| CronJob shop/report | report | same | not-pinned |
| production | production | registry.example.com/shop/web | 1.3.0 | - | production/apps.yaml:25 \
| Deployment shop/admin | admin | missing | not-pinned, outdated, behind |
| production | production | registry.example.com/shop/web | 1.3.2 | sha256:{"1f" * 6} \
| production/apps.yaml:11 | Deployment shop/web | web | different: \
registry.example.com/shop/web:1.3.1 | behind |

## Versions by environment

| Image | staging | production | Behind |
|---|---|---|---|
| docker.io/envoyproxy/envoy | v1.30.1 | v1.30.1 | - |
| docker.io/library/busybox | latest | - | - |
| registry.example.com/shop/report | 2.0.1 | 2.0.1 | - |
| registry.example.com/shop/web | 1.4.0 | 1.3.0, 1.3.2 | production |

## Flags

- `behind`: 2
- `disallowed-registry`: 3
- `mutable-tag`: 1
- `not-pinned`: 8
- `outdated`: 1
"""


def test_markdown_in_full(tmp_path: Path) -> None:
    root = tree(tmp_path)
    result = two_clusters(root, "--snapshot", f"production={root / 'snapshots/production.yaml'}",
                          "--allowed-registry", "registry.example.com", fmt="markdown")
    assert result.stdout == EXPECTED_MARKDOWN


def test_output_is_deterministic(tmp_path: Path) -> None:
    root = tree(tmp_path)
    for fmt in ("json", "csv", "markdown", "text"):
        assert two_clusters(root, fmt=fmt).output == two_clusters(root, fmt=fmt).output


def test_sarif_and_junit_point_at_the_image_line(tmp_path: Path) -> None:
    root = tree(tmp_path)
    sarif, junit = tmp_path / "out/images.sarif", tmp_path / "out/images.xml"
    result = two_clusters(root, "--allowed-registry", "registry.example.com",
                          "--sarif", str(sarif), "--junit", str(junit), "--fail-on", "warning")
    assert result.exit_code == 1  # warnings (behind, outdated, mutable tag) reach --fail-on
    log = json.loads(sarif.read_text())
    results = log["runs"][0]["results"]
    rules = {r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]}
    assert rules == {"image.behind", "image.disallowed-registry", "image.mutable-tag",
                     "image.not-pinned", "image.outdated"}
    behind = [r for r in results if r["ruleId"] == "image.behind"]
    assert len(behind) == 2
    places = sorted((r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                     r["locations"][0]["physicalLocation"]["region"]["startLine"])
                    for r in behind)
    assert places == [("production/apps.yaml", 11), ("production/apps.yaml", 25)]
    assert any("is behind staging" in r["message"]["text"] for r in behind)
    xml = junit.read_text()
    assert "image.disallowed-registry" in xml and "image.outdated" in xml
    ok = two_clusters(root, "--fail-on", "error")
    assert ok.exit_code == 0  # no error-level flag without an allowlist


def test_plain_paths_are_one_unnamed_cluster(tmp_path: Path) -> None:
    root = tree(tmp_path)
    result = run([str(root / "staging"), "--root", str(root), "--format", "json"])
    data = json.loads(result.output)
    assert data["clusters"] == [""]
    assert {u["cluster"] for u in data["images"]} == {""}
    text = run([str(root / "staging"), "--root", str(root)]).output
    assert text.splitlines()[0].startswith("IMAGE ")


def test_invalid_and_unreadable_input(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
                              "  containers:\n    - {name: c, image: '${IMAGE}'}\n")
    write(tmp_path, "broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n")
    result = run([str(tmp_path), "--root", str(tmp_path), "--format", "json"])
    assert result.exit_code == 1  # an unreadable file is never a pass
    data = json.loads(result.output)
    assert data["images"][0]["flags"] == ["invalid-reference"]
    assert data["images"][0]["image"]["error"] == "invalid repository name '${IMAGE}'"
    assert len(data["errors"]) == 1 and data["errors"][0].startswith("broken.yaml:4: invalid YAML")


def test_multi_cluster_example() -> None:
    result = run(["--root", str(EXAMPLE), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["clusters"] == ["staging", "production"]
    uses = by_place(data)
    assert set(uses) == {
        ("production", "redis", "redis"), ("production", "debug-toolbox", "toolbox"),
        ("production", "podinfo", "podinfo"), ("production", "node-exporter", "node-exporter"),
        ("staging", "debug-toolbox", "toolbox"), ("staging", "podinfo", "podinfo"),
        ("staging", "node-exporter", "node-exporter")}
    redis = uses[("production", "redis", "redis")]
    assert redis["image"]["repository"] == "library/redis"
    assert redis["flags"] == ["mutable-tag", "not-pinned"]
    assert redis["location"]["path"] == "infrastructure/production/cache.yaml"
    staging_podinfo = uses[("staging", "podinfo", "podinfo")]
    assert staging_podinfo["image"]["tag"] == "latest"  # set by the staging overlay
    assert staging_podinfo["resource"]["namespace"] == "podinfo-staging"
    assert uses[("production", "podinfo", "podinfo")]["image"]["tag"] == "6.7.1"
    versions = {r["image"]: r["versions"] for r in data["versions"]}
    assert versions["ghcr.io/stefanprodan/podinfo"] == {"staging": ["latest"],
                                                         "production": ["6.7.1"]}
    assert data["summary"]["uses"] == 7


def test_extraction_covers_custom_resources() -> None:
    def images_of(body: dict[str, Any]) -> list[tuple[str, str, str]]:
        res = make_resource(body, SourceLocation("x.yaml"), {})
        return [(d.image, d.container_type, ".".join(map(str, d.field_path)))
                for d in declared_images(res)]

    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r"},
               "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:1"}]}}}}
    assert images_of(rollout) == [("a:1", "container", "spec.template.spec.containers.0.image")]
    task = {"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "t"},
            "spec": {"steps": [{"name": "s", "image": "golang:1.22"}],
                     "sidecars": [{"image": "redis:7"}]}}
    assert images_of(task) == [("golang:1.22", "step", "spec.steps.0.image"),
                               ("redis:7", "sidecar", "spec.sidecars.0.image")]
    workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow",
                "metadata": {"name": "w"},
                "spec": {"workflowSpec": {"templates": [
                    {"name": "main", "container": {"image": "alpine:3.20"}},
                    {"name": "py", "script": {"image": "python:3.12", "source": "print()"}}]}}}
    assert [i[0] for i in images_of(workflow)] == ["alpine:3.20", "python:3.12"]
    knative = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "k"},
               "spec": {"template": {"spec": {"containers": [{"image": "k:1"}]}}}}
    assert images_of(knative)[0][0] == "k:1"
    core_service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                    "spec": {"template": {"spec": {"containers": [{"image": "no:1"}]}}}}
    assert images_of(core_service) == []  # a core Service has no pod template
    job = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "metadata": {"name": "j"},
           "spec": {"jobTargetRef": {"template": {"spec": {"containers": [{"image": "j:2"}]}}}}}
    assert images_of(job)[0][0] == "j:2"


def test_allowlist_entries() -> None:
    ref = parse_image("ghcr.io/acme/team/app:1")
    assert registry_allowed(ref, [])
    assert registry_allowed(ref, ["ghcr.io"])
    assert registry_allowed(ref, ["ghcr.io/acme"])
    assert registry_allowed(ref, ["ghcr.io/acme/"])
    assert not registry_allowed(ref, ["ghcr.io/acm"])
    assert registry_allowed(ref, ["*.io/acme/*"])
    assert not registry_allowed(ref, ["quay.io", "docker.io"])
    assert registry_allowed(parse_image("nginx"), ["docker.io/library"])
    assert not registry_allowed(parse_image("bitnami/nginx"), ["docker.io/library"])


def test_image_findings_name_their_object_in_its_cluster() -> None:
    from checker.overview.images import Inventory, collect, findings

    res = make_resource({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": "web", "namespace": "shop"},
                         "spec": {"template": {"spec": {"containers": [
                             {"name": "app", "image": "nginx:latest"}]}}}},
                        SourceLocation("apps/web.yaml", 1), {})
    uses = collect([res], "prod", "production")
    flagged = [replace(u, flags=("mutable-tag",)) for u in uses]
    out = findings(Inventory(uses=tuple(flagged), clusters=("prod",),
                             environments=("production",), matrix=()))
    assert [(f.ref.cluster, f.ref.group, f.ref.kind, f.ref.namespace, f.ref.name)
            for f in out if f.ref] == [("prod", "apps", "Deployment", "shop", "web")]


def test_tekton_runs_and_pipelines_declare_their_step_images() -> None:
    run = make_resource({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
                         "metadata": {"name": "r"},
                         "spec": {"pipelineSpec": {"tasks": [{"name": "a", "taskSpec": {
                             "steps": [{"name": "s", "image": "builder:1"}],
                             "sidecars": [{"name": "d", "image": "dind:2"}]}}],
                             "finally": [{"name": "b", "taskSpec": {
                                 "steps": [{"name": "n", "image": "notify:3"}]}}]}}},
                        SourceLocation("run.yaml", 1), {})
    assert [(d.image, d.container_type, d.field_path[:3]) for d in declared_images(run)] == [
        ("builder:1", "step", ("spec", "pipelineSpec", "tasks")),
        ("dind:2", "sidecar", ("spec", "pipelineSpec", "tasks")),
        ("notify:3", "step", ("spec", "pipelineSpec", "finally"))]
