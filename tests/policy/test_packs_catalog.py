"""The catalog is complete and consistent; overrides work; generated docs are up to date."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from checker.cli import cli
from checker.errors import ConfigError, PolicyError
from checker.model import Severity
from checker.policy.docs import render_docs
from checker.policy.packs import (
    DEFAULT_PACKS,
    PACK_SCHEMA,
    load_catalog,
    pack_policies,
    packs_dir,
    read_single_object,
)
from tests.conftest import ROOT

DOCS = ROOT / "docs" / "policies"
STANDARDS = {"pss-baseline", "pss-restricted", "cis-kubernetes", "nsa-cisa-hardening",
             "best-practice", "bsi-sys-1-6", "bsi-app-4-4", "nist-800-190", "bsi-c5"}


def test_every_pack_loads_and_compiles() -> None:
    catalog = load_catalog()
    assert set(catalog.packs) == STANDARDS
    for name in catalog.packs:
        policies = pack_policies(catalog, [name])
        assert policies, name
    assert set(DEFAULT_PACKS) <= set(catalog.packs)


def test_every_policy_is_complete() -> None:
    catalog = load_catalog()
    for pid, pdef in catalog.policies.items():
        rule = pdef.rule
        assert re.fullmatch(r"[a-z0-9-]+", pid)
        assert rule.title and pdef.rationale and pdef.remediation, pid
        assert pdef.example, f"{pid}: no corrected YAML snippet"
        yaml.safe_load(pdef.example)
        assert rule.controls, pid
        assert {c.standard for c in rule.controls} <= STANDARDS, pid
        assert pdef.tests_path is not None and pdef.tests_path.is_file(), pid
        assert (DOCS / f"{pid}.md").is_file(), pid
        assert catalog.packs_of(pid), f"{pid} is in no pack"
        template = read_single_object(pdef.template_path).body
        rego = template["spec"]["targets"][0]["rego"]
        assert "import future.keywords.in" in rego, pid
        assert "import rego.v1" not in rego, pid
        props = template["spec"]["crd"]["spec"]["validation"]["openAPIV3Schema"]["properties"]
        params = (read_single_object(pdef.constraint_path).body["spec"].get("parameters") or {})
        assert set(params) <= set(props), f"{pid}: undocumented parameter"
        if props:
            assert pdef.parameters_doc, f"{pid}: parameters are not documented"
            for name, schema in props.items():
                assert schema.get("description"), f"{pid}: parameter {name} has no description"


def test_pss_packs_cover_every_control() -> None:
    catalog = load_catalog()
    baseline = {c.id for p in catalog.resolve(["pss-baseline"])
                for c in catalog.policies[p].rule.controls if c.standard == "pss-baseline"}
    assert baseline == {"HostProcess", "Host Namespaces", "Privileged Containers", "Capabilities",
                        "HostPath Volumes", "Host Ports", "Host Probes / Lifecycle Hooks",
                        "AppArmor", "SELinux", "/proc Mount Type", "Seccomp", "Sysctls"}
    restricted = {c.id for p in catalog.resolve(["pss-restricted"])
                  for c in catalog.policies[p].rule.controls if c.standard == "pss-restricted"}
    assert restricted == {"Volume Types", "Privilege Escalation", "Running as Non-root",
                          "Running as Non-root user", "Seccomp", "Capabilities",
                          "/proc Mount Type"}
    assert set(catalog.resolve(["pss-baseline"])) < set(catalog.resolve(["pss-restricted"]))


def test_cis_pack_maps_section_five() -> None:
    catalog = load_catalog()
    ids = {c.id for p in catalog.resolve(["cis-kubernetes"])
           for c in catalog.policies[p].rule.controls if c.standard == "cis-kubernetes"}
    for control in ("5.1.1", "5.1.2", "5.1.3", "5.1.4", "5.1.5", "5.1.6", "5.1.8", "5.2.2",
                    "5.2.3", "5.2.4", "5.2.5", "5.2.6", "5.2.7", "5.2.8", "5.2.9", "5.2.10",
                    "5.2.11", "5.2.12", "5.2.13", "5.3.2", "5.4.1", "5.7.2", "5.7.4"):
        assert control in ids, control


def test_one_policy_serves_several_standards_and_is_evaluated_once() -> None:
    catalog = load_catalog()
    policies = pack_policies(catalog, ["pss-restricted", "cis-kubernetes",
                                       "nsa-cisa-hardening"])
    ids = [p.rule.id for p in policies]
    assert len(ids) == len(set(ids))
    nonroot = catalog.policies["pss-run-as-non-root"].rule.controls
    assert {c.standard for c in nonroot} >= {"pss-restricted", "cis-kubernetes",
                                             "nsa-cisa-hardening"}


def test_pack_schema_rejects_unknown_keys(tmp_path: Path) -> None:
    assert "enabled" in PACK_SCHEMA["properties"]["policies"]["items"]["oneOf"][1]["properties"]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "pack.yaml").write_text(
        "name: bad\ntitle: Bad\nstandard: x\npolicies:\n  - id: x\n    bogus: 1\n")
    with pytest.raises(PolicyError, match="invalid pack"):
        load_catalog(tmp_path)


def test_disabled_policies_are_off_by_default() -> None:
    catalog = load_catalog()
    off = {pid for pid, p in catalog.policies.items() if not p.enabled}
    assert off == {"bp-image-digest", "bp-required-labels", "bp-allowed-registries",
                   "bp-replicas", "bp-pod-disruption-budget"}
    ids = {p.rule.id for p in pack_policies(catalog, ["best-practice"])}
    assert ids == {"image-tag", "bp-resources", "bp-probes", "bp-ingress-tls"}


# ----------------------------------------------------------------------------- overrides


def test_override_enables_and_parameterises_a_policy() -> None:
    catalog = load_catalog()
    policies = pack_policies(catalog, ["best-practice"], {
        "bp-allowed-registries": {"enabled": True,
                                  "parameters": {"registries": ["registry.example.com"]}},
        "bp-replicas": {"enabled": True, "parameters": {"minReplicas": 3}},
        "bp-probes": {"enabled": False},
    })
    by_id = {p.rule.id: p for p in policies}
    assert "bp-probes" not in by_id
    assert by_id["bp-allowed-registries"].constraint.parameters == {
        "registries": ["registry.example.com"]}
    assert by_id["bp-replicas"].constraint.parameters == {"minReplicas": 3}


def test_override_parameters_merge_over_constraint_defaults() -> None:
    catalog = load_catalog()
    [policy] = [p for p in pack_policies(catalog, ["best-practice"], {
        "bp-resources": {"parameters": {"limits": ["cpu", "memory"]}}})
        if p.rule.id == "bp-resources"]
    assert policy.constraint.parameters == {"requests": ["cpu", "memory"],
                                            "limits": ["cpu", "memory"]}


def test_override_severity() -> None:
    catalog = load_catalog()
    [policy] = [p for p in pack_policies(catalog, ["pss-baseline"], {
        "pss-sysctls": {"severity": "warning"}}) if p.rule.id == "pss-sysctls"]
    assert policy.severity is Severity.WARNING
    assert catalog.policies["pss-sysctls"].rule.severity is Severity.ERROR


@pytest.mark.parametrize(("overrides", "message"), [
    ({"no-such-policy": {"severity": "error"}}, "unknown policy id 'no-such-policy'"),
    ({"pss-sysctls": {"severity": "fatal"}}, "unknown severity 'fatal'"),
    ({"bp-replicas": {"enabled": True, "parameters": {"minReplicas": 0}}},
     "invalid spec.parameters at minReplicas"),
    ({"bp-resources": {"parameters": ["cpu"]}}, "must be a mapping"),
])
def test_bad_overrides_are_config_errors(overrides: dict[str, dict[str, object]],
                                         message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        pack_policies(load_catalog(), ["best-practice", "pss-baseline"], overrides)


# ----------------------------------------------------------------------------- docs


def test_generated_docs_are_up_to_date() -> None:
    pages = render_docs(load_catalog())
    committed = {p.name for p in DOCS.glob("*.md")}
    assert committed == set(pages)
    for name, text in pages.items():
        assert (DOCS / name).read_text(encoding="utf-8") == text, \
            f"docs/policies/{name} is stale: run scripts/gen_policy_docs.py"


def test_docs_check_command_detects_stale_pages(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["policies", "docs", "--out", str(tmp_path)])
    assert result.exit_code == 0
    assert runner.invoke(cli, ["policies", "docs", "--out", str(tmp_path), "--check"]).exit_code \
        == 0
    (tmp_path / "pss-sysctls.md").write_text("edited\n")
    (tmp_path / "old-policy.md").write_text("gone\n")
    result = runner.invoke(cli, ["policies", "docs", "--out", str(tmp_path), "--check"])
    assert result.exit_code == 1
    assert "pss-sysctls.md" in result.output
    assert "old-policy.md" in result.output


def test_policy_page_content() -> None:
    page = (DOCS / "pss-run-as-non-root.md").read_text()
    assert "| cis-kubernetes | 5.2.7 |" in page
    assert "runAsNonRoot: true" in page
    assert "`pss-restricted`" in page
    assert packs_dir().name == "policy-packs"


def _rego_sources() -> list[tuple[str, str]]:
    out = [("lib/pods.rego", (packs_dir() / "lib" / "pods.rego").read_text())]
    for pdef in load_catalog().policies.values():
        body = read_single_object(pdef.template_path).body
        out.append((str(pdef.template_path), body["spec"]["targets"][0]["rego"]))
    return out


@pytest.mark.parametrize(("name", "rego"), _rego_sources(), ids=lambda v: v[:40])
def test_rego_v0_imports_every_future_keyword_it_uses(name: str, rego: str) -> None:
    """OPA's v0 parser (older Gatekeeper) needs an import for each future keyword."""
    code = "\n".join(line.split("#", 1)[0] for line in rego.splitlines())
    uses = {
        "contains": re.search(r"^\w+ contains ", code, re.MULTILINE),
        "if": re.search(r"\)? if\b", code),
        "in": re.search(r"\bsome [\w, ]+ in\b| in [\w{\[]", code),
        "every": re.search(r"^\s*every\b", code, re.MULTILINE),
    }
    for keyword, used in uses.items():
        if used:
            assert f"import future.keywords.{keyword}" in code, f"{name}: {keyword}"
    assert "import rego.v1" not in code


def test_every_parameterised_policy_has_a_schema_rejection_test() -> None:
    """Parameters are validated by the template's schema, and a suite proves it."""
    catalog = load_catalog()
    for pid, pdef in catalog.policies.items():
        template = read_single_object(pdef.template_path).body
        props = template["spec"]["crd"]["spec"]["validation"]["openAPIV3Schema"]["properties"]
        if not props:
            continue
        assert pdef.tests_path is not None
        suite = yaml.safe_load(pdef.tests_path.read_text())
        assert any(t.get("invalid") for t in suite["tests"]), f"{pid}: no invalid-parameter test"
