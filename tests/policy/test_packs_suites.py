"""Every gator suite under policy-packs/ passes through ``verify``, and covers every rule.

Coverage: each ``violation`` rule of each template, evaluated alone (with the template's helper
rules), must be triggered by at least one case of the policy's suite, so that every branch of
the Rego has a failing example.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from checker.cli import cli
from checker.load.objects import make_resource
from checker.model import Rule, Severity, SourceLocation
from checker.policy.evaluate import Evaluator
from checker.policy.gatekeeper import Template, parse_constraint, parse_template
from checker.policy.model import Policy
from checker.policy.packs import load_catalog, packs_dir, read_single_object, with_libs
from checker.policy.suites import find_suites, read_objects, run_suite

PACKS = packs_dir()
SUITES = find_suites([PACKS])
_RULE_START = re.compile(r"^violation\[", re.MULTILINE)


def test_suites_exist_for_every_policy() -> None:
    catalog = load_catalog()
    suites = {p.resolve() for p in SUITES}
    for pid, pdef in catalog.policies.items():
        assert pdef.tests_path is not None, pid
        assert pdef.tests_path.resolve() in suites, pid


@pytest.mark.slow
def test_verify_command_passes_every_suite() -> None:
    result = CliRunner().invoke(cli, ["verify", str(PACKS)])
    assert result.exit_code == 0, result.output
    summary = result.output.strip().splitlines()[-1]
    passed = int(summary.split()[0])
    assert summary.endswith(" 0 failed")
    assert passed >= 150
    assert result.output.count("\nok\t") + result.output.startswith("ok\t") == len(SUITES)


def test_verify_fails_when_a_case_is_wrong(tmp_path: Path) -> None:
    """verify is not vacuous: flipping one expectation makes it fail with exit 1."""
    src = PACKS / "pss-baseline" / "tests" / "host-namespaces"
    suite = yaml.safe_load((src / "suite.yaml").read_text())
    for name in ("host-namespaces.yaml",):
        (tmp_path / "templates").mkdir()
        (tmp_path / "constraints").mkdir()
        (tmp_path / "templates" / name).write_text(
            (PACKS / "pss-baseline/templates" / name).read_text())
        (tmp_path / "constraints" / name).write_text(
            (PACKS / "pss-baseline/constraints" / name).read_text())
    tests_dir = tmp_path / "tests" / "x"
    tests_dir.mkdir(parents=True)
    for f in src.glob("*.yaml"):
        (tests_dir / f.name).write_text(f.read_text())
    suite["tests"][0]["cases"][0]["assertions"] = [{"violations": 1}]
    (tests_dir / "suite.yaml").write_text(yaml.safe_dump(suite))
    result = CliRunner().invoke(cli, ["verify", str(tests_dir)])
    assert result.exit_code == 1
    assert "FAIL" in result.output


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: str(p.relative_to(PACKS)))
def test_suite_passes(suite: Path) -> None:
    result = run_suite(suite)
    assert result.failures == []
    assert result.failed == 0
    assert result.passed > 0


def _split_rules(rego: str) -> tuple[str, list[str]]:
    """(everything but the violation rules, [each violation rule])."""
    starts = [m.start() for m in _RULE_START.finditer(rego)]
    rules = []
    rest = rego
    for start in starts:
        end = rego.index("\n}\n", start) + 3
        rules.append(rego[start:end])
    for rule in rules:
        rest = rest.replace(rule, "")
    return rest, rules


def _cases(suite_path: Path) -> list[tuple[dict[str, Any], Any, list[Any]]]:
    """(test, object, inventory) for every case of a suite."""
    suite = yaml.safe_load(suite_path.read_text())
    out = []
    for test in suite["tests"]:
        if test.get("invalid"):
            continue
        for case in test["cases"]:
            obj = read_objects(suite_path.parent / case["object"])[0]
            inventory = [o for p in case.get("inventory") or []
                         for o in read_objects(suite_path.parent / p)]
            out.append((test, obj, inventory))
    return out


def _catalog_items() -> list[tuple[str, Path, Path]]:
    catalog = load_catalog()
    return [(pid, p.template_path, p.tests_path) for pid, p in sorted(catalog.policies.items())
            if p.tests_path is not None]


def uncovered_rules(pid: str, template_path: Path,
                    cases: list[tuple[dict[str, Any], Any, list[Any]]],
                    suite_dir: Path) -> list[str]:
    """Violation rules of a template that no case triggers when evaluated alone."""
    full = parse_template(with_libs(read_single_object(template_path), PACKS / "lib"))
    rest, rules = _split_rules(full.rego)
    assert rules, f"{pid}: no violation rules found"
    missing = []
    for rule in rules:
        template = Template(
            name=full.name, kind=full.kind, package=full.package, rego=rest + "\n" + rule,
            libs=full.libs, rego_v1=False, schema=full.schema, location=full.location,
            body=full.body)
        fired = False
        for test, obj, inventory in cases:
            constraint = parse_constraint(
                read_single_object(suite_dir / test["constraint"]), template)
            policy = Policy(template, constraint, Rule(id=pid, title=pid, severity=Severity.ERROR),
                            Severity.ERROR, "test")
            result = Evaluator([policy], operation="").run([obj], known=inventory)
            assert result.errors == []
            if any(f.rule_id == pid for f in result.findings):
                fired = True
                break
        if not fired:
            missing.append(rule)
    return missing


@pytest.mark.slow
@pytest.mark.parametrize(("pid", "template_path", "suite_path"), _catalog_items(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_violation_rule_has_a_failing_case(pid: str, template_path: Path,
                                                 suite_path: Path) -> None:
    rego = parse_template(with_libs(read_single_object(template_path), PACKS / "lib")).rego
    for rule in _split_rules(rego)[1]:
        assert '"details": {"path": path}' in rule, f"{pid}: a violation without details.path"
    missing = uncovered_rules(pid, template_path, _cases(suite_path), suite_path.parent)
    assert missing == [], f"{pid}: violation rules without a failing case: {missing}"


def test_coverage_check_detects_an_uncovered_rule() -> None:
    """Without its lifecycle cases, host-probes' second rule is reported as uncovered."""
    catalog = load_catalog()
    pdef = catalog.policies["pss-host-probes"]
    assert pdef.tests_path is not None
    cases = [c for c in _cases(pdef.tests_path) if "lifecycle" not in c[1].body["metadata"]
             .get("name", "") and "lifecycle" not in str(c[1].body)]
    missing = uncovered_rules("pss-host-probes", pdef.template_path, cases,
                              pdef.tests_path.parent)
    assert len(missing) == 1
    assert "lifecycle" in missing[0]


def test_rule_splitter_finds_every_rule() -> None:
    rego = ('package x\n\nviolation[{"msg": m, "details": {"path": path}}] {\n  a\n}\n\n'
            'helper if b\n\nviolation[{"msg": m, "details": {"path": path}}] {\n  c\n}\n')
    rest, rules = _split_rules(rego)
    assert len(rules) == 2
    assert "helper if b" in rest
    assert "violation" not in rest


def test_cases_are_objects() -> None:
    for suite in SUITES:
        for _test, obj, _inv in _cases(suite):
            assert obj.kind and obj.api_version
            assert make_resource(dict(obj.body), SourceLocation("x"), {}).key == obj.key


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: str(p.relative_to(PACKS)))
def test_suite_has_pass_and_fail_cases_with_messages(suite: Path) -> None:
    """Each suite has both verdicts, and every failing case names the violation it expects."""
    data = yaml.safe_load(suite.read_text())
    verdicts = set()
    for test in data["tests"]:
        for case in test.get("cases") or []:
            for assertion in case["assertions"]:
                want = assertion.get("violations", "yes")
                verdicts.add("pass" if want in ("no", 0) else "fail")
                if want not in ("no", 0):
                    assert assertion.get("message"), f"{case['name']}: no message regex"
    assert verdicts == {"pass", "fail"}


def unlisted_files(suite_path: Path) -> list[str]:
    """Files in a suite's folder that its ``suite.yaml`` does not name (gator would skip them)."""
    suite_dir = suite_path.parent
    data = yaml.safe_load(suite_path.read_text())
    named = {suite_path.resolve()}
    for test in data.get("tests") or []:
        named |= {(suite_dir / test[k]).resolve() for k in ("template", "constraint") if test.get(k)}
        for case in test.get("cases") or []:
            named |= {(suite_dir / p).resolve()
                      for p in [case.get("object"), *(case.get("inventory") or [])] if p}
    return sorted(str(p.relative_to(suite_dir)) for p in suite_dir.rglob("*")
                  if p.is_file() and p.resolve() not in named)


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: str(p.relative_to(PACKS)))
def test_every_case_file_is_listed_in_its_suite(suite: Path) -> None:
    """A case file the suite does not name would never run: it fails here instead."""
    assert unlisted_files(suite) == []


def test_every_pack_tests_folder_is_a_suite() -> None:
    """Case files under a pack's tests/ sit in a folder with a suite.yaml."""
    dirs = {s.parent for s in SUITES}
    stray = [str(p.relative_to(PACKS)) for tests in PACKS.glob("*/tests") for p in tests.rglob("*")
             if p.is_file() and not any(d == p.parent or d in p.parents for d in dirs)]
    assert stray == []


def test_unlisted_case_file_is_reported(tmp_path: Path) -> None:
    src = PACKS / "best-practice" / "tests" / "replicas"
    shutil.copytree(src, tmp_path / "replicas")
    suite = tmp_path / "replicas" / "suite.yaml"
    text = suite.read_text().replace("../../", str(src.parent.parent) + "/")
    suite.write_text(text)
    assert unlisted_files(suite) == []
    (tmp_path / "replicas" / "fail-forgotten.yaml").write_text("kind: Deployment\n")
    assert unlisted_files(suite) == ["fail-forgotten.yaml"]
