"""Standards as data: requirement mappings, the packs built from them, filters, grouping,
coverage in ``compliance`` and the default selection."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from checker.cli import cli
from checker.errors import ConfigError, PolicyError
from checker.model import Control, Finding, Report, Rule, Severity, SourceLocation
from checker.policy.packs import (
    DEFAULT_PACKS,
    default_overrides,
    load_catalog,
    pack_policies,
    packs_dir,
)
from checker.report import RENDERERS

ROOT = Path(__file__).parent.parent.parent
EXAMPLE = ROOT / "examples" / "gitops-repo"

# How each standard publishes its requirement ids (checked with the published texts; see
# docs/packs.md "Standards and their requirements" for the editions).
ID_FORMS = {
    "bsi-sys-1-6": r"SYS\.1\.6\.A([1-9]|1[0-9]|2[0-6])",
    "bsi-app-4-4": r"APP\.4\.4\.A([1-9]|1[0-9]|2[01])",
    "nist-800-190": r"4\.[1-5]\.[1-5]|4\.6",
    "bsi-c5": r"OPS-34\.0[12](B|AC)",
}


def test_enumerated_standards_list_every_requirement_once_in_the_published_form() -> None:
    catalog = load_catalog()
    assert set(ID_FORMS) <= set(catalog.standards)
    counts = {"bsi-sys-1-6": 26, "bsi-app-4-4": 21, "nist-800-190": 24, "bsi-c5": 3}
    for key, form in ID_FORMS.items():
        std = catalog.standards[key]
        ids = [r.id for r in std.requirements]
        assert len(ids) == counts[key] == len(set(ids)), key
        for rid in ids:
            assert re.fullmatch(form, rid), (key, rid)
        assert std.edition and std.scope, key


def test_mappings_become_controls_and_packs_hold_exactly_the_mapped_policies() -> None:
    catalog = load_catalog()
    for key, std in catalog.standards.items():
        mapped = {pid for pid, p in catalog.policies.items()
                  if any(c.standard == key for c in p.rule.controls)}
        assert mapped, f"no policy maps to {key}"
        for req in std.requirements:
            assert set(req.policies) == set(catalog.serving(key, req.id)), req.id
            assert (req.checks == "outside") == (not req.policies), req.id
        if key in ID_FORMS:
            assert set(catalog.resolve([key])) == mapped, key
    a9 = {c.id for c in catalog.policies["cis-default-service-account-bindings"].rule.controls}
    assert {"5.1.5", "APP.4.4.A9", "4.3.1"} <= a9
    creds = catalog.policies["bsi-literal-credentials"].rule.controls
    assert {(c.standard, c.id) for c in creds} == {("bsi-sys-1-6", "SYS.1.6.A8"),
                                                   ("nist-800-190", "4.1.4")}
    assert all(c.title for c in creds)


def _copy_packs(tmp_path: Path) -> Path:
    root = tmp_path / "packs"
    shutil.copytree(packs_dir(), root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _edit(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@pytest.mark.parametrize(("file", "change", "message"), [
    ("bsi-app-4-4.yaml", lambda d: d["requirements"][10].__setitem__("policies", ["nope"]),
     "names unknown policy 'nope'"),
    ("bsi-app-4-4.yaml", lambda d: d["requirements"][1].__setitem__("policies", ["bp-probes"]),
     "'outside' lists no policies"),
    ("bsi-app-4-4.yaml", lambda d: d["requirements"][10].pop("policies"),
     "needs the policies that serve it"),
    ("bsi-app-4-4.yaml", lambda d: d["requirements"].append(dict(d["requirements"][0])),
     "listed twice"),
    ("bsi-c5.yaml", lambda d: d.__setitem__("key", "c5"), "must match the file name"),
    ("bsi-c5.yaml", lambda d: d["requirements"][0].__setitem__("unverified", ""),
     "requirements/0/unverified"),
])
def test_a_broken_standard_file_is_refused(tmp_path: Path, file: str, change: Any,
                                           message: str) -> None:
    root = _copy_packs(tmp_path)
    _edit(root / "standards" / file, change)
    with pytest.raises(PolicyError, match=re.escape(message)):
        load_catalog(root)


def test_a_control_of_an_unknown_standard_or_requirement_is_refused(tmp_path: Path) -> None:
    root = _copy_packs(tmp_path)
    pack = root / "best-practice" / "pack.yaml"
    original = pack.read_text(encoding="utf-8")
    _edit(pack, lambda d: d["policies"][0]["controls"].append({"standard": "iso", "id": "1"}))
    with pytest.raises(PolicyError, match="control of unknown standard 'iso'"):
        load_catalog(root)
    pack.write_text(original, encoding="utf-8")
    _edit(pack, lambda d: d["policies"][0]["controls"].append(
        {"standard": "bsi-app-4-4", "id": "APP.4.4.A99"}))
    with pytest.raises(PolicyError, match=re.escape("bsi-app-4-4 has no requirement 'APP.4.4.A99'")):
        load_catalog(root)


def test_list_filters_by_any_standard_and_refuses_an_unknown_one() -> None:
    result = CliRunner().invoke(cli, ["policies", "list", "--standard", "bsi-app-4-4",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = {p["id"] for p in json.loads(result.stdout)["policies"]}
    assert listed == set(load_catalog().resolve(["bsi-app-4-4"]))
    assert "cis-default-service-account-bindings" in listed and "image-tag" not in listed
    text = CliRunner().invoke(cli, ["policies", "list", "--standard", "nist-800-190"]).stdout
    assert "- nist-800-190 4.4.3" in text and "- pss-baseline" not in text
    bad = CliRunner().invoke(cli, ["policies", "list", "--standard", "iso-27001"])
    assert bad.exit_code == 2
    assert "unknown standard 'iso-27001'" in bad.stderr and "bsi-c5" in bad.stderr


def _report(group_by: str) -> Report:
    """Two rules: one serving two APP.4.4 requirements, one serving none; one input finding."""
    both = Rule(id="r-both", title="Both", severity=Severity.ERROR, description="d", help="h",
                pack="p", controls=(Control("bsi-app-4-4", "APP.4.4.A4", "Separate pods"),
                                    Control("bsi-app-4-4", "APP.4.4.A9", "Service accounts"),
                                    Control("cis-kubernetes", "5.2.2")))
    other = Rule(id="r-other", title="Other", severity=Severity.WARNING, description="d",
                 help="h", pack="p", controls=(Control("cis-kubernetes", "5.7.4"),))
    quiet = Rule(id="r-quiet", title="Quiet", severity=Severity.ERROR, description="d",
                 help="h", pack="p", controls=(Control("bsi-app-4-4", "APP.4.4.A11", "Probes"),))
    loc = SourceLocation("apps/a.yaml", 3, 1)
    findings = (
        Finding("r-both", "policy", Severity.ERROR, "bad pod", loc, resource="Pod/a",
                controls=both.controls, pack="p"),
        Finding("r-other", "policy", Severity.WARNING, "default ns", loc, resource="Pod/a",
                controls=other.controls, pack="p"),
        Finding("input.parse-error", "input", Severity.ERROR, "broken", loc),
    )
    return Report(findings=findings, rules={r.id: r for r in (both, other, quiet)},
                  resources_checked=1, files_checked=1, group_by=group_by)


def test_junit_groups_by_requirement_of_a_standard() -> None:
    xml = RENDERERS["junit"](_report("bsi-app-4-4"))
    by_name = {name: int(n) for n, name in re.findall(r'failures="(\d+)" name="([^"]+)"', xml)}
    assert by_name == {"bsi-app-4-4 APP.4.4.A4: Separate pods": 1,
                       "bsi-app-4-4 APP.4.4.A9: Service accounts": 1,
                       "bsi-app-4-4 APP.4.4.A11: Probes": 0,
                       "not mapped to bsi-app-4-4": 0,  # the warning is skipped, not failed
                       "input": 1}
    assert xml.count('message="bad pod"') == 2  # under both requirements it fails
    pack_xml = RENDERERS["junit"](_report("pack"))
    assert pack_xml.count('message="bad pod"') == 1 and 'name="p"' in pack_xml


def test_markdown_has_a_row_per_requirement_when_grouped_by_a_standard() -> None:
    md = RENDERERS["markdown"](_report("bsi-app-4-4"))
    assert "### By bsi-app-4-4 requirement" in md
    assert "| APP.4.4.A4: Separate pods | `r-both` | 1 | 🔴 error |" in md
    assert "| APP.4.4.A11: Probes | `r-quiet` | 0 | ✅ |" in md
    assert "| not mapped to bsi-app-4-4 | | 1 | |" in md
    assert md.index("APP.4.4.A4:") < md.index("APP.4.4.A9:") < md.index("APP.4.4.A11:")
    assert "By bsi-app-4-4 requirement" not in RENDERERS["markdown"](_report("pack"))


def test_scan_group_by_a_standard_and_an_unknown_grouping(tmp_path: Path) -> None:
    out = tmp_path / "r.xml"
    result = CliRunner().invoke(cli, ["scan", str(EXAMPLE), "--root", str(EXAMPLE),
                                      "--group-by", "bsi-sys-1-6", "--junit", str(out)])
    assert result.exit_code == 1, result.output
    names = set(re.findall(r'<testsuite [^>]*name="([^"]+)"', out.read_text()))
    assert "bsi-sys-1-6 SYS.1.6.A17: Run containers without privileges" in names
    bad = CliRunner().invoke(cli, ["scan", str(EXAMPLE), "--root", str(EXAMPLE),
                                   "--group-by", "iso"])
    assert bad.exit_code == 2 and "unknown grouping 'iso'" in bad.stderr


def test_compliance_counts_coverage_per_standard(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\nspec:\n  containers:\n"
        "  - {name: c, image: 'registry.example.com/c:1.0'}\n", encoding="utf-8")
    (tmp_path / ".gitops-checker.yaml").write_text(
        "clusters:\n  - name: prod\n    paths: [apps]\n    packs: [bsi-app-4-4]\n"
        "  - name: dev\n    paths: [apps]\n    packs: [pss-baseline]\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["compliance", "--root", str(tmp_path), "--format", "json",
                                      "--today", "2026-01-01"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    std = {s["standard"]: s for s in data["standards"]}["bsi-app-4-4"]
    catalog = load_catalog()
    app = catalog.standards["bsi-app-4-4"]
    outside = sum(1 for r in app.requirements if r.checks == "outside")
    assert (std["requirements"], std["outside"]) == (21, outside)
    on = {p.rule.id for p in pack_policies(catalog, ["bsi-app-4-4"])}
    expected_complete = sum(1 for r in app.requirements if r.policies
                            and set(r.policies) <= on)
    assert std["cells"]["prod"]["complete"] == expected_complete
    assert std["cells"]["prod"]["missing"] + std["cells"]["prod"]["partial"] == (
        21 - outside - expected_complete)
    reqs = {(r["standard"], r["id"]): r for r in data["requirements"]}
    a11 = reqs[("bsi-app-4-4", "APP.4.4.A11")]
    assert a11["cells"]["prod"]["status"] == "complete"
    assert a11["cells"]["prod"]["violations"] == 2  # no liveness and no readiness probe
    assert a11["cells"]["dev"]["status"] == "missing"
    assert reqs[("bsi-app-4-4", "APP.4.4.A5")]["cells"]["prod"]["status"] == "outside"
    md = CliRunner().invoke(cli, ["compliance", "--root", str(tmp_path), "--format", "markdown",
                                  "--today", "2026-01-01"]).stdout
    assert "## Coverage per standard" in md and "| APP.4.4.A5 Back up the cluster |" in md


def test_default_selection_surfaces_root_escalation_and_seccomp_at_warning() -> None:
    assert DEFAULT_PACKS == ("pss-restricted", "best-practice")
    catalog = load_catalog()
    overrides = default_overrides(catalog, {"pss-run-as-non-root": {"severity": "error"}})
    assert overrides["pss-privilege-escalation"] == {"severity": "warning"}
    assert overrides["pss-run-as-non-root"] == {"severity": "error"}  # the config wins
    assert "pss-privileged" not in overrides  # baseline stays at error
    result = CliRunner().invoke(cli, ["scan", str(EXAMPLE), "--root", str(EXAMPLE),
                                      "--format", "json"])
    data = json.loads(result.stdout)
    levels = {(f["rule"], f["severity"]) for f in data["findings"]}
    for rule in ("pss-run-as-non-root", "pss-privilege-escalation", "pss-seccomp-restricted"):
        assert (rule, "warning") in levels, rule
    assert ("pss-privileged", "error") in levels
    named = CliRunner().invoke(cli, ["scan", str(EXAMPLE), "--root", str(EXAMPLE),
                                     "--pack", "pss-restricted", "--format", "json"])
    assert ("pss-run-as-non-root", "error") in {
        (f["rule"], f["severity"]) for f in json.loads(named.stdout)["findings"]}


def test_unknown_standard_lookup_names_the_known() -> None:
    with pytest.raises(ConfigError, match=r"unknown standard 'x' .*bsi-sys-1-6"):
        load_catalog().standard("x")


def test_c5_ids_name_the_source_they_were_checked_against_in_the_data_and_the_docs() -> None:
    """Each C5:2026 OPS-34 id names where and when it was checked (a republication of the
    criteria text; BSI's PDF was not reachable), in the data and on its generated docs page;
    none is left marked unverified."""
    from checker.policy.docs import render_standard_page

    catalog = load_catalog()
    requirements = catalog.standard("bsi-c5").requirements
    assert {r.id for r in requirements} == {"OPS-34.01B", "OPS-34.02B", "OPS-34.01AC"}
    assert all(not r.unverified for r in requirements)
    assert all("Checked on 2026-12-02" in r.source and "https://grca.planeth.de/" in r.source
               for r in requirements)
    assert len({r.source for r in requirements}) == len(requirements)  # one page per criterion
    assert all(not r.unverified for key in ("bsi-sys-1-6", "bsi-app-4-4", "nist-800-190")
               for r in catalog.standard(key).requirements)
    page = render_standard_page(catalog, "bsi-c5")
    assert page.count("Id checked: Checked on 2026-12-02") == len(requirements)
    assert "Id unverified" not in page
