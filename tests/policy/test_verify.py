"""`verify`: gator-format suites get the verdicts gator gives."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.policy.suites import Assertion, run_suite

Write = Callable[[str, str], Path]

TEMPLATE = """
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sdenyname
spec:
  crd:
    spec:
      names:
        kind: K8sDenyName
      validation:
        openAPIV3Schema:
          type: object
          properties:
            names:
              type: array
              items:
                type: string
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sdenyname
        violation[{"msg": msg}] {
          input.review.object.metadata.name == input.parameters.names[_]
          msg := sprintf("name %v is denied (operation %q)", [input.review.object.metadata.name, input.review.operation])
        }
        violation[{"msg": msg}] {
          input.review.object.metadata.name == input.parameters.names[_]
          data.inventory.cluster["v1"]["Namespace"]["locked"]
          msg := "cluster is locked"
        }
"""


def obj(name: str, kind: str = "ConfigMap") -> str:
    return f"apiVersion: v1\nkind: {kind}\nmetadata:\n  name: {name}\n"


@pytest.fixture
def suite(write: Write) -> Path:
    write("template.yaml", TEMPLATE)
    write("constraint.yaml", """
        apiVersion: constraints.gatekeeper.sh/v1beta1
        kind: K8sDenyName
        metadata:
          name: deny-bad
        spec:
          parameters:
            names: [bad]
    """)
    write("invalid-constraint.yaml", """
        apiVersion: constraints.gatekeeper.sh/v1beta1
        kind: K8sDenyName
        metadata:
          name: broken
        spec:
          parameters:
            names: bad
    """)
    write("good.yaml", obj("good"))
    write("bad.yaml", obj("bad"))
    write("two.yaml", obj("a") + "---\n" + obj("b"))
    write("locked-ns.yaml", obj("locked", "Namespace"))
    write("review.yaml", """
        apiVersion: admission.k8s.io/v1
        kind: AdmissionReview
        request:
          operation: CREATE
          object:
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: bad
    """)
    return write("suite.yaml", """
        kind: Suite
        apiVersion: test.gatekeeper.sh/v1alpha1
        tests:
          - name: deny-name
            template: template.yaml
            constraint: constraint.yaml
            cases:
              - name: good-passes
                object: good.yaml
                assertions: [{violations: no}]
              - name: bad-fails
                object: bad.yaml
                assertions:
                  - violations: yes
                  - violations: 1
                    message: "^name bad is denied"
                  - violations: 0
                    message: locked
              - name: default-is-yes
                object: bad.yaml
                assertions: [{message: "denied"}]
              - name: operation-is-empty-like-gator
                object: bad.yaml
                assertions: [{violations: 1, message: 'operation ""'}]
              - name: inventory
                object: bad.yaml
                inventory: [locked-ns.yaml]
                assertions: [{violations: 2}, {violations: 1, message: locked}]
              - name: admission-review
                object: review.yaml
                assertions: [{violations: 1}]
              - name: skipped
                skip: true
                object: missing.yaml
                assertions: [{violations: no}]
          - name: schema-rejects-constraint
            template: template.yaml
            constraint: invalid-constraint.yaml
            invalid: true
    """)


def test_suite_passes_with_gator_semantics(suite: Path) -> None:
    """yes/no/count, message regexes, inventory, AdmissionReview, invalid and skip."""
    result = run_suite(suite)
    assert result.failures == []
    assert (result.passed, result.failed, result.skipped) == (7, 0, 1)


@pytest.mark.parametrize(("assertion", "problem"), [
    ("{violations: no}", "got 1 violations but want none"),
    ("{violations: 2}", "got 1 violations but want exactly 2"),
    ("{violations: yes, message: nothing-like-this}", "got 0 violations containing 'nothing-like-this' but want at least 1"),
    ("{violations: maybe}", 'must be a nonnegative integer, "yes", or "no"'),
    ("{violations: -1}", 'must be a nonnegative integer'),
    ("{message: '('}", "invalid message regex"),
])
def test_failing_assertions_explain_themselves(write: Write, suite: Path, assertion: str,
                                               problem: str) -> None:
    """Each unmet assertion fails its case with gator's explanation."""
    path = write("one.yaml", f"""
        kind: Suite
        tests:
          - name: t
            template: template.yaml
            constraint: constraint.yaml
            cases:
              - name: c
                object: bad.yaml
                assertions: [{assertion}]
    """)
    result = run_suite(path)
    assert result.failed == 1
    assert problem in result.failures[0]


@pytest.mark.parametrize(("case", "problem"), [
    ("object: two.yaml\n                assertions: [{violations: no}]", "defines 2 objects"),
    ("object: bad.yaml\n                assertions: []", "assertions must be non-empty"),
    ("assertions: [{violations: no}]", "must define object"),
])
def test_invalid_cases(write: Write, suite: Path, case: str, problem: str) -> None:
    path = write("one.yaml", f"""
        kind: Suite
        tests:
          - name: t
            template: template.yaml
            constraint: constraint.yaml
            cases:
              - name: c
                {case}
    """)
    result = run_suite(path)
    assert result.failed == 1 and problem in result.failures[0]


def test_invalid_expected_but_constraint_is_valid(write: Write, suite: Path) -> None:
    path = write("one.yaml", """
        kind: Suite
        tests:
          - name: t
            template: template.yaml
            constraint: constraint.yaml
            invalid: true
    """)
    result = run_suite(path)
    assert result.failed == 1 and "expects a schema error" in result.failures[0]


def test_assertion_reads_yaml_booleans_as_yes_no() -> None:
    """YAML 1.1 turns a bare yes/no into booleans; gator treats them as the strings."""
    assert Assertion(True, None).check(["m"]) is None
    assert Assertion(False, None).check([]) is None
    assert Assertion(False, None).check(["m"]) is not None


def test_verify_command_exit_codes(suite: Path, write: Write, runner: CliRunner) -> None:
    """Exit 0 and a count line when all pass; exit 1 when a case fails; 2 for a bad path."""
    ok = runner.invoke(cli, ["verify", str(suite)])
    assert ok.exit_code == 0 and ok.stdout.strip().endswith("7 passed, 0 failed")
    engine = ok.stdout.splitlines()[-2]  # the engine that gave gator's verdicts is named
    assert engine.startswith("engine: ") and "(repository templates)" in engine
    bad = write("bad-suite.yaml", """
        kind: Suite
        tests:
          - name: t
            template: template.yaml
            constraint: constraint.yaml
            cases:
              - name: c
                object: good.yaml
                assertions: [{violations: yes}]
    """)
    failed = runner.invoke(cli, ["verify", str(bad)])
    assert failed.exit_code == 1 and "--- FAIL: t/c" in failed.stdout
    missing = runner.invoke(cli, ["verify", str(suite.parent / "nope")])
    assert missing.exit_code == 2


@pytest.mark.slow
def test_shipped_pack_suites_pass(runner: CliRunner) -> None:
    """Every gator suite shipped with the built-in packs passes through `verify`."""
    from tests.conftest import ROOT

    result = runner.invoke(cli, ["verify", str(ROOT / "policy-packs")])
    assert result.exit_code == 0, result.stdout
    assert " 0 failed" in result.stdout
