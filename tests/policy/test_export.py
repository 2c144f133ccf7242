"""``policies export``: valid Gatekeeper objects, deterministic, and a faithful round trip.

Round trip: scanning manifests with ``--pack P`` and with ``--pack none --policies <export of
P>`` must give the same findings (rule, message, resource, location, field path).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from checker.cli import cli
from checker.options import ScanOptions
from checker.pipeline import scan
from checker.policy.export import GENERATED_HEADER, export_objects, write_export
from checker.policy.gatekeeper import parse_constraint, parse_template
from checker.policy.packs import LIBS_ANNOTATION, POLICY_ANNOTATION, load_catalog, packs_dir
from checker.policy.suites import find_suites
from tests.conftest import FIXTURES, ROOT

DNS1123 = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
STRINGS = {"type": "array", "items": {"type": "string"}}

TEMPLATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "templates.gatekeeper.sh/v1"},
        "kind": {"const": "ConstraintTemplate"},
        "metadata": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]+$"},
                           "annotations": {"type": "object",
                                           "additionalProperties": {"type": "string"}}},
        },
        "spec": {
            "type": "object", "required": ["crd", "targets"], "additionalProperties": False,
            "properties": {
                "crd": {"type": "object", "required": ["spec"], "properties": {"spec": {
                    "type": "object", "required": ["names"],
                    "properties": {
                        "names": {"type": "object", "required": ["kind"], "properties": {
                            "kind": {"type": "string", "pattern": "^[A-Z][A-Za-z0-9]*$"}}},
                        "validation": {"type": "object", "properties": {"openAPIV3Schema": {
                            "type": "object", "required": ["type"],
                            "properties": {"type": {"const": "object"}}}}},
                    }}}},
                "targets": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
                    "type": "object", "required": ["target", "rego"],
                    "additionalProperties": False,
                    "properties": {"target": {"const": "admission.k8s.gatekeeper.sh"},
                                   "rego": {"type": "string", "pattern": "^package [a-z0-9]+\n"},
                                   "libs": {"type": "array", "items": {
                                       "type": "string", "pattern": "^package lib\\."}}}}},
            },
        },
    },
}

CONSTRAINT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "constraints.gatekeeper.sh/v1beta1"},
        "kind": {"type": "string", "pattern": "^[A-Z][A-Za-z0-9]*$"},
        "metadata": {"type": "object", "required": ["name", "annotations"], "properties": {
            "name": {"type": "string", "pattern": DNS1123, "maxLength": 253},
            "annotations": {"type": "object", "required": [POLICY_ANNOTATION],
                            "additionalProperties": {"type": "string"}}}},
        "spec": {
            "type": "object", "required": ["enforcementAction", "match"],
            "additionalProperties": False,
            "properties": {
                "enforcementAction": {"enum": ["deny", "dryrun", "warn"]},
                "parameters": {"type": "object"},
                "match": {"type": "object", "additionalProperties": False, "properties": {
                    "kinds": {"type": "array", "items": {
                        "type": "object", "additionalProperties": False,
                        "required": ["apiGroups", "kinds"],
                        "properties": {"apiGroups": STRINGS, "kinds": STRINGS}}},
                    "scope": {"enum": ["*", "Cluster", "Namespaced"]},
                    "namespaces": STRINGS, "excludedNamespaces": STRINGS,
                    "labelSelector": {"type": "object"},
                    "namespaceSelector": {"type": "object"},
                    "name": {"type": "string"}}},
            },
        },
    },
}

SYNCSET_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "syncset.gatekeeper.sh/v1alpha1"},
        "kind": {"const": "SyncSet"},
        "spec": {"type": "object", "required": ["gvks"], "properties": {"gvks": {
            "type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["group", "version", "kind"],
                "additionalProperties": False,
                "properties": {"group": {"type": "string"}, "version": {"type": "string"},
                               "kind": {"type": "string"}}}}}},
    },
}

PACK_NAMES = sorted(load_catalog().packs)


def _objects(files: dict[str, str]) -> dict[str, Any]:
    return {name: yaml.safe_load(text) for name, text in files.items()}


@pytest.mark.slow
@pytest.mark.parametrize("pack", PACK_NAMES)
@pytest.mark.parametrize("enforcement", ["dryrun", "warn", "deny"])
def test_export_is_valid_gatekeeper(pack: str, enforcement: str) -> None:
    files = export_objects(load_catalog(), [pack], enforcement, include_disabled=True)
    objects = _objects(files)
    templates = {n: o for n, o in objects.items() if n.startswith("templates/")}
    constraints = {n: o for n, o in objects.items() if n.startswith("constraints/")}
    assert templates and len(templates) == len(constraints)
    kinds = set()
    for name, obj in templates.items():
        jsonschema.validate(obj, TEMPLATE_SCHEMA)
        assert name == f"templates/{obj['metadata']['name']}.yaml"
        assert LIBS_ANNOTATION not in obj["metadata"].get("annotations", {})
        kind = obj["spec"]["crd"]["spec"]["names"]["kind"]
        assert obj["metadata"]["name"] == kind.lower()
        rego = obj["spec"]["targets"][0]["rego"]
        if "data.lib.gitops_checker.pods" in rego:
            assert any(lib.startswith("package lib.gitops_checker.pods")
                       for lib in obj["spec"]["targets"][0]["libs"])
        kinds.add(kind)
    for name, obj in constraints.items():
        jsonschema.validate(obj, CONSTRAINT_SCHEMA)
        assert obj["kind"] in kinds
        assert obj["spec"]["enforcementAction"] == enforcement
        assert name == f"constraints/{obj['metadata']['annotations'][POLICY_ANNOTATION]}.yaml"
    if "sync/syncset.yaml" in objects:
        jsonschema.validate(objects["sync/syncset.yaml"], SYNCSET_SCHEMA)


def test_exported_objects_parse_and_validate_as_gatekeeper_does() -> None:
    from checker.load.objects import make_resource
    from checker.model import SourceLocation

    files = export_objects(load_catalog(), PACK_NAMES, "deny", include_disabled=True)
    objects = _objects(files)
    templates = {}
    for name, obj in objects.items():
        if name.startswith("templates/"):
            t = parse_template(make_resource(obj, SourceLocation(name), {}))
            templates[t.kind] = t
    for name, obj in objects.items():
        if name.startswith("constraints/"):
            parse_constraint(make_resource(obj, SourceLocation(name), {}), templates[obj["kind"]])


def test_referential_packs_get_a_syncset_and_others_do_not() -> None:
    catalog = load_catalog()
    cis = _objects(export_objects(catalog, ["cis-kubernetes"], None))
    gvks = cis["sync/syncset.yaml"]["spec"]["gvks"]
    assert {"group": "networking.k8s.io", "version": "v1", "kind": "NetworkPolicy"} in gvks
    assert {"group": "", "version": "v1", "kind": "ServiceAccount"} in gvks
    assert "sync/syncset.yaml" not in export_objects(catalog, ["pss-restricted"], None)


def test_disabled_policies_are_exported_only_on_request() -> None:
    catalog = load_catalog()
    default = export_objects(catalog, ["best-practice"], None)
    everything = export_objects(catalog, ["best-practice"], None, include_disabled=True)
    assert "constraints/bp-replicas.yaml" not in default
    assert "constraints/bp-replicas.yaml" in everything
    assert "constraints/image-tag.yaml" in default


def test_enforcement_defaults_to_the_pack_constraint() -> None:
    objects = _objects(export_objects(load_catalog(), ["pss-baseline"], None))
    assert objects["constraints/pss-privileged.yaml"]["spec"]["enforcementAction"] == "deny"


def test_export_command_is_deterministic_and_cleans_up(tmp_path: Path) -> None:
    runner = CliRunner()
    out1, out2 = tmp_path / "a", tmp_path / "b"
    for out in (out1, out2):
        result = runner.invoke(cli, ["policies", "export", "--pack", "pss-restricted",
                                     "--pack", "cis-kubernetes", "--out", str(out),
                                     "--enforcement", "warn"])
        assert result.exit_code == 0, result.output
    files1 = sorted(p.relative_to(out1) for p in out1.rglob("*") if p.is_file())
    files2 = sorted(p.relative_to(out2) for p in out2.rglob("*") if p.is_file())
    assert files1 == files2
    for rel in files1:
        assert (out1 / rel).read_bytes() == (out2 / rel).read_bytes()
        assert (out1 / rel).read_text().startswith(GENERATED_HEADER)
    # Re-exporting a smaller pack removes stale generated files, keeps the user's own files.
    (out1 / "constraints" / "mine.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n")
    result = runner.invoke(cli, ["policies", "export", "--pack", "pss-baseline",
                                 "--out", str(out1)])
    assert result.exit_code == 0, result.output
    assert not (out1 / "constraints" / "cis-rbac-wildcards.yaml").exists()
    assert not (out1 / "sync" / "syncset.yaml").exists()
    assert (out1 / "constraints" / "pss-privileged.yaml").exists()
    assert (out1 / "constraints" / "mine.yaml").exists()


def test_export_rejects_unknown_pack(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["policies", "export", "--pack", "nope",
                                      "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "unknown pack 'nope'" in result.output
    assert not (tmp_path / "x").exists()


def _manifest_tree(root: Path) -> Path:
    """Every case object of every suite (and its inventory), plus the PSS fixtures and the
    example repository, as one tree of manifests."""
    tree = root / "manifests"
    tree.mkdir()
    n = 0
    for suite in find_suites([packs_dir()]):
        for case in suite.parent.glob("*.yaml"):
            if case.name == "suite.yaml" or case.name.startswith(("constraint", "invalid")):
                continue
            n += 1
            shutil.copy(case, tree / f"{n:04d}-{case.name}")
    fixtures = FIXTURES / "pss"
    shutil.copytree(fixtures, tree / "pss", ignore=shutil.ignore_patterns("NOTICE"))
    shutil.copytree(ROOT / "examples" / "gitops-repo" / "infrastructure",
                    tree / "infrastructure")
    return tree


def _key(f: Any) -> tuple[Any, ...]:
    return (f.rule_id, f.message, f.resource, f.location, f.field_path)


@pytest.mark.slow
@pytest.mark.parametrize("pack", PACK_NAMES)
def test_round_trip_gives_the_same_findings(tmp_path: Path, pack: str) -> None:
    tree = _manifest_tree(tmp_path)
    exported = tmp_path / "exported"
    write_export(export_objects(load_catalog(), [pack], "deny"), exported)
    with_pack = scan(ScanOptions(paths=(tree,), root=tmp_path, packs=(pack,)))
    with_folder = scan(ScanOptions(paths=(tree,), root=tmp_path, packs=("none",),
                                   policies=(exported,)))
    assert with_pack.errors == () and with_folder.errors == ()
    policy_findings = [f for f in with_pack.findings if f.category == "policy"]
    assert len(policy_findings) > 20
    assert sorted(map(_key, with_pack.findings)) == sorted(map(_key, with_folder.findings))
    # Controls travel with the exported policy, so reports group the same way.
    controls = {f.rule_id: f.controls for f in with_folder.findings if f.category == "policy"}
    for f in policy_findings:
        assert controls[f.rule_id] == f.controls


def test_export_applies_configured_overrides() -> None:
    files = export_objects(load_catalog(), ["best-practice"], "warn", overrides={
        "bp-allowed-registries": {"enabled": True,
                                  "parameters": {"registries": ["registry.example.com"]}},
        "bp-probes": {"enabled": False}})
    objects = _objects(files)
    assert "constraints/bp-probes.yaml" not in objects
    allowed = objects["constraints/bp-allowed-registries.yaml"]
    assert allowed["spec"]["parameters"] == {"registries": ["registry.example.com"]}
    assert allowed["spec"]["enforcementAction"] == "warn"
