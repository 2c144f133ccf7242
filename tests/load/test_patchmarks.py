"""Marks of objects a Kustomize patch or component edited point at the line that set the field.

Every case renders with the real Kustomize (``kubectl kustomize`` or ``kustomize``), so the
list order and contents are what Kustomize produces; the expected lines are found by text in
the fixture files, not computed by the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from checker.drift.compare import DriftOptions, compare
from checker.drift.secrets import SecretHasher
from checker.drift.sources import KindRef, Snapshot, protect
from checker.load import kustomize
from checker.load.objects import Marks
from checker.load.patchmarks import RenderedMarks
from checker.model import Resource, SourceLocation
from tests.conftest import needs_kustomize

pytestmark = needs_kustomize

BASE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: frontend
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: server
          image: frontend:1
          ports:
            - containerPort: 8080
          env:
            - name: A
              value: "1"
            - name: PORT
              value: "8080"
            - name: B
              value: "2"
          volumeMounts:
            - name: cache
              mountPath: /cache
      volumes:
        - name: cache
          emptyDir: {}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: server
          image: checkout:1
"""
# A component like Online Boutique's google-cloud-operations: a strategic-merge patch that
# edits a list (a new env entry first, one changed), and an inline JSON 6902 insertion.
COMPONENT = """\
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches:
  - path: tracing.yaml
  - target:
      kind: Deployment
      name: frontend
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/env/1
        value:
          name: INSERTED
          value: "yes"
"""
TRACING = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: frontend
spec:
  template:
    spec:
      containers:
        - name: server
          env:
            - name: ENABLE_TRACING
              value: "1"
            - name: PORT
              value: "9090"
"""
OVERLAY = """\
resources:
  - ../../base
components:
  - ../../components/tracing
namePrefix: prod-
patches:
  - path: replicas.yaml
    target:
      kind: Deployment
"""
# targets both Deployments; checkout's base already has the same value
REPLICAS = """\
- op: replace
  path: /spec/replicas
  value: 3
"""


def write(root: Path) -> Path:
    files = {"base/deploy.yaml": BASE,
             "base/kustomization.yaml": "resources:\n  - deploy.yaml\n",
             "components/tracing/kustomization.yaml": COMPONENT,
             "components/tracing/tracing.yaml": TRACING,
             "overlays/prod/kustomization.yaml": OVERLAY,
             "overlays/prod/replicas.yaml": REPLICAS}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root / "overlays/prod"


def line_of(root: Path, rel: str, text: str, nth: int = 1) -> int:
    """1-based line of the ``nth`` line of a fixture file that contains ``text``."""
    hits = [n for n, line in enumerate((root / rel).read_text().splitlines(), start=1)
            if text in line]
    return hits[nth - 1]


def rendered(tmp_path: Path) -> dict[str, Resource]:
    result = kustomize.render(write(tmp_path), tmp_path)
    assert result.findings == []
    return {r.name: r for r in result.resources}


ENV = ("spec", "template", "spec", "containers", 0, "env")


def test_kustomize_reorders_the_patched_list(tmp_path: Path) -> None:
    env = rendered(tmp_path)["prod-frontend"].body["spec"]["template"]["spec"][
        "containers"][0]["env"]
    # what the real Kustomize did: the patch's new entry first, the inserted one at 1
    assert [e["name"] for e in env] == ["ENABLE_TRACING", "INSERTED", "PORT", "A", "B"]


def test_each_env_entry_points_at_the_file_and_line_that_set_it(tmp_path: Path) -> None:
    res = rendered(tmp_path)["prod-frontend"]
    assert isinstance(res.marks, RenderedMarks)
    env = res.body["spec"]["template"]["spec"]["containers"][0]["env"]
    at = {e["name"]: (res.locate((*ENV, i, "value")), res.locate((*ENV, i))) for i, e in
          enumerate(env)}
    comp, base = "components/tracing/tracing.yaml", "base/deploy.yaml"
    kfile = "components/tracing/kustomization.yaml"

    def where(loc: SourceLocation) -> tuple[str, int]:
        return loc.path, loc.line

    # set by the strategic-merge patch: the patch's lines
    assert where(at["ENABLE_TRACING"][0]) == (comp, line_of(tmp_path, comp, 'value: "1"'))
    assert where(at["ENABLE_TRACING"][1]) == (comp, line_of(tmp_path, comp, "ENABLE_TRACING"))
    assert where(at["PORT"][0]) == (comp, line_of(tmp_path, comp, 'value: "9090"'))
    # the entry itself is the base's; its value is the patch's
    assert where(at["PORT"][1]) == (base, line_of(tmp_path, base, "name: PORT"))
    # inserted by the inline JSON 6902 op: inside the kustomization file's block scalar
    assert where(at["INSERTED"][0]) == (kfile, line_of(tmp_path, kfile, 'value: "yes"'))
    assert at["INSERTED"][0].column == 1 + (tmp_path / kfile).read_text().splitlines()[
        at["INSERTED"][0].line - 1].index("value")
    # untouched entries: the base's lines, not the lines of the index they had there
    assert where(at["A"][0]) == (base, line_of(tmp_path, base, 'value: "1"'))
    assert where(at["B"][0]) == (base, line_of(tmp_path, base, 'value: "2"'))


def test_a_patch_sets_only_what_it_wrote_on_the_objects_it_selects(tmp_path: Path) -> None:
    objects = rendered(tmp_path)
    front, check = objects["prod-frontend"], objects["prod-checkout"]
    replicas = line_of(tmp_path, "overlays/prod/replicas.yaml", "value: 3")
    assert (front.locate(("spec", "replicas")).path,
            front.locate(("spec", "replicas")).line) == ("overlays/prod/replicas.yaml",
                                                         replicas)
    # the tracing patch names frontend only; checkout's env-less container is the base's
    loc = check.locate(("spec", "template", "spec", "containers", 0, "image"))
    assert (loc.path, loc.line) == ("base/deploy.yaml",
                                    line_of(tmp_path, "base/deploy.yaml", "image: checkout:1"))
    # the base's mount and container port, found by identity in the reordered object
    mount = front.locate(("spec", "template", "spec", "containers", 0, "volumeMounts", 0,
                          "mountPath"))
    assert mount.line == line_of(tmp_path, "base/deploy.yaml", "mountPath: /cache")


def _leaf_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def test_every_mark_of_the_rendered_objects_names_its_field(tmp_path: Path) -> None:
    """Whatever the path, the marked line holds that field's key (and a scalar's value)."""
    checked = 0
    for res in rendered(tmp_path).values():
        for path in res.marks:
            loc = res.marks[path]
            line = (tmp_path / loc.path).read_text().splitlines()[loc.line - 1]
            node: Any = res.body
            for part in path:
                node = node[part]
            key = next((p for p in reversed(path) if isinstance(p, str)), "")
            if isinstance(path[-1] if path else None, int):
                assert line.lstrip().startswith("- ") or "value:" in line, (path, loc, line)
            elif path and path[:2] != ("metadata", "name"):  # the prefix is the overlay's
                # the field's key, or the "value:" of the JSON 6902 op that wrote it
                assert f"{key}:" in line or "value:" in line, (path, loc, line)
                if not isinstance(node, (dict, list)):
                    assert _leaf_text(node) in line, (path, loc, line)
            checked += 1
    assert checked > 40


def test_an_object_no_patch_acted_on_keeps_its_plain_marks(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app/kustomization.yaml").write_text("resources:\n  - cm.yaml\n")
    (tmp_path / "app/cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n")
    [res] = kustomize.render(tmp_path / "app", tmp_path).resources
    assert isinstance(res.marks, Marks)
    assert "annotations" not in res.body["metadata"]  # no bookkeeping annotation is left


def test_drift_inside_a_patched_list_points_at_the_patch_or_the_base(tmp_path: Path) -> None:
    res = rendered(tmp_path)["prod-frontend"]
    live = json.loads(json.dumps(res.body))
    live["metadata"]["namespace"] = "default"  # where an object without one is applied
    env = live["spec"]["template"]["spec"]["containers"][0]["env"]
    for entry in env:
        if entry["name"] in ("PORT", "A"):
            entry["value"] = "changed"
    hasher = SecretHasher(b"k")
    snap = Snapshot(objects=[protect(live, hasher)],
                    read_kinds={KindRef("apps", "Deployment")}, key_id=hasher.key_id)
    result = compare([res], snap, hasher, DriftOptions(entry=SourceLocation("x")))
    found = sorted((f.details["field"], f.location.path, f.location.line)
                   for f in result.findings)
    assert found == [
        ("spec.template.spec.containers[server].env[A].value", "base/deploy.yaml",
         line_of(tmp_path, "base/deploy.yaml", 'value: "1"')),
        ("spec.template.spec.containers[server].env[PORT].value",
         "components/tracing/tracing.yaml",
         line_of(tmp_path, "components/tracing/tracing.yaml", 'value: "9090"')),
    ]


def test_long_lists_without_identity_are_paired_by_position() -> None:
    """Items of a list without identity keys are found by value (an insertion does not shift
    them), but a list of 20,000 is paired by position: not 2e8 comparisons."""
    from checker.load.patchmarks import Patch, rendered_marks
    from checker.load.yamlfile import parse_documents

    def second_item_line(count: int) -> int:
        items = [f"arg-{n}" for n in range(count)]
        [doc] = list(parse_documents("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
                                     "args:\n" + "".join(f"  - {i}\n" for i in items)))
        body = {**doc.data, "args": ["inserted", *items[:-1]]}  # one in front, one gone
        patch = Patch("patch.yaml", {"kind": "ConfigMap", "metadata": {"name": "c"}}, {}, {})
        return rendered_marks(body, ("base.yaml", doc), [patch])[("args", 1)].line

    assert second_item_line(100) == 6      # arg-0, the base's first item (line 6)
    assert second_item_line(20_000) == 7   # by position: the base's second item


def test_legacy_strategic_merge_patch_with_a_delete_directive(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "overlays/legacy").mkdir(parents=True)
    (tmp_path / "overlays/legacy/kustomization.yaml").write_text(
        "resources:\n  - ../../base\npatchesStrategicMerge:\n  - image.yaml\n")
    (tmp_path / "overlays/legacy/image.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: frontend\nspec:\n"
        "  template:\n    spec:\n      containers:\n        - name: server\n"
        "          image: frontend:2\n          env:\n            - name: A\n"
        "              $patch: delete\n")
    result = kustomize.render(tmp_path / "overlays/legacy", tmp_path)
    res = next(r for r in result.resources if r.name == "frontend")
    container = res.body["spec"]["template"]["spec"]["containers"][0]
    assert [e["name"] for e in container["env"]] == ["PORT", "B"]  # A deleted by Kustomize
    image = res.locate(("spec", "template", "spec", "containers", 0, "image"))
    assert (image.path, image.line) == ("overlays/legacy/image.yaml", 10)
    for index, name in enumerate(["PORT", "B"]):
        loc = res.locate((*ENV, index, "name"))
        assert (loc.path, loc.line) == ("base/deploy.yaml",
                                        line_of(tmp_path, "base/deploy.yaml", f"name: {name}"))
