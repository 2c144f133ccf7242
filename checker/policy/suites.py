"""Gator-format test suites (``kind: Suite``) with the verdicts ``gator verify`` gives."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from checker.errors import CheckerError, PolicyError
from checker.load.objects import is_k8s_object, make_resource, read_documents
from checker.model import Finding, Resource, Rule
from checker.policy.evaluate import (
    RULE_ENGINE_DIFFERENCE,
    RULE_NOT_EVALUATED,
    RULE_TEMPLATE_NOTE,
    Evaluator,
)
from checker.policy.gatekeeper import parse_constraint, parse_template
from checker.policy.model import Policy
from checker.policy.packs import packs_dir, read_single_object, with_libs
from checker.rules import BUILTIN_RULES

SUITE_API = "test.gatekeeper.sh/v1alpha1"


def find_suites(paths: Iterable[Path]) -> list[Path]:
    """Suite files among ``paths``; folders are searched recursively for ``kind: Suite``."""
    out: list[Path] = []
    for path in paths:
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            for file in sorted(path.rglob("*.y*ml")):
                try:
                    head = file.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                if re.search(r"^kind:\s*Suite\s*$", head, re.MULTILINE):
                    out.append(file)
        else:
            raise CheckerError(f"suite path does not exist: {path}")
    return out


def read_objects(path: Path) -> list[Resource]:
    """Every Kubernetes object in a file (gator reads objects and inventory this way)."""
    docs, problems = read_documents(path, str(path))
    if problems:
        raise PolicyError(f"{problems[0].location}: {problems[0].message}")
    objects = [make_resource(d.data, d.location(str(path)), {}) for d in docs
               if is_k8s_object(d.data)]
    if not objects:
        raise PolicyError(f"{path}: defines no YAML objects")
    return objects


@dataclass
class Assertion:
    """``violations`` (yes / no / count, default yes) and optional ``message`` regex."""

    violations: Any
    message: str | None

    def check(self, messages: list[str]) -> str | None:
        """None when satisfied, else gator's explanation."""
        if self.message is not None:
            try:
                regex = re.compile(self.message)
            except re.error as err:
                return f"invalid message regex {self.message!r}: {err}"
            matching = sum(1 for m in messages if regex.search(m))
            what = f"violations containing {self.message!r}"
        else:
            matching, what = len(messages), "violations"
        want = "yes" if self.violations is None else self.violations
        if isinstance(want, bool):  # YAML 1.1 reads a bare yes/no as a boolean
            want = "yes" if want else "no"
        if isinstance(want, str) and want not in ("yes", "no"):
            return 'assertion.violations, if set, must be a nonnegative integer, "yes", or "no"'
        if isinstance(want, int):
            if want < 0:
                return ('assertion.violations, if set, must be a nonnegative integer, '
                        '"yes", or "no"')
            if matching != want:
                return f"got {matching} {what} but want exactly {want}: got messages {messages}"
        elif want == "yes" and matching == 0:
            return f"got 0 {what} but want at least 1: got messages {messages}"
        elif want == "no" and matching > 0:
            return f"got {matching} {what} but want none: got messages {messages}"
        return None


@dataclass
class SuiteResult:
    """Outcome of one suite: passed and failed case counts and printable lines."""

    path: Path
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)
    passes: list[str] = field(default_factory=list)
    engines: dict[str, None] = field(default_factory=dict)  # what evaluated, first use first

    def lines(self, verbose: bool = False) -> list[str]:
        """gator-like output."""
        out = [f"--- FAIL: {f}" for f in self.failures]
        if verbose:
            out += [f"--- PASS: {p}" for p in self.passes]
        out.append(f"{'FAIL' if self.failed else 'ok'}\t{self.path}")
        return out


def _policy(suite_dir: Path, test: dict[str, Any]) -> Policy:
    if not test.get("template"):
        raise PolicyError("missing template")
    if not test.get("constraint"):
        raise PolicyError("missing constraint")
    lib_dir = packs_dir() / "lib"
    template = parse_template(with_libs(read_single_object(suite_dir / test["template"]),
                                        lib_dir))
    constraint = parse_constraint(read_single_object(suite_dir / test["constraint"]), template)
    rule = Rule(id=f"{constraint.kind}/{constraint.name}", title=template.kind,
                severity=constraint.severity)
    return Policy(template, constraint, rule, constraint.severity, "suite")


def _messages(evaluator: Evaluator, obj: Resource, inventory: list[Resource],
              templates: Sequence[Any] = ()) -> list[str]:
    evaluator.requests.clear()
    if obj.kind == "AdmissionReview" and obj.group == "admission.k8s.io":
        # gator reviews the AdmissionRequest as given: operation, oldObject, userInfo and all
        request = obj.body.get("request")
        if not isinstance(request, dict):
            raise PolicyError("AdmissionReview has no request")
        subject = request.get("object") or request.get("oldObject")
        if not isinstance(subject, dict) or not is_k8s_object(subject):
            raise PolicyError('AdmissionRequest does not contain an "object" or "oldObject"')
        obj = make_resource(subject, obj.location, {})
        if request.get("operation") == "DELETE" and not request.get("object"):
            request = {**request, "object": subject}  # Gatekeeper reviews the old object
        evaluator.requests[id(obj)] = request
    evaluation = evaluator.run([obj], known=inventory, workers=1)
    # notes are not verdicts: gator never reads what a template note is about
    # (requires-sync-data), and skips a constraint not enforced at its point without a word
    findings = [f for f in evaluation.findings
                if f.rule_id not in (RULE_TEMPLATE_NOTE, RULE_NOT_EVALUATED,
                                     RULE_ENGINE_DIFFERENCE)]
    if templates and not evaluator.requests:  # gator expands objects, not AdmissionReviews
        findings += _implied(evaluator, obj, inventory, templates, evaluation.errors)
    errors = [f.message for f in findings if f.rule_id in BUILTIN_RULES]
    if evaluation.errors or errors:
        raise PolicyError("; ".join([*evaluation.errors, *errors]))
    return [f.message for f in findings]


def _implied(evaluator: Evaluator, obj: Resource, inventory: list[Resource],
             templates: Sequence[Any], errors: list[str]) -> list[Finding]:
    """The violations of the objects ``obj`` expands into, as ``gator verify`` adds them to
    the object's: ``[Implied by <template>]`` messages, reviewed with source Generated."""
    from checker.admit import expand, stage  # only suites with an ``expansion:`` need them

    try:
        generated, _ = expand.expand(obj, templates, [], {})
    except expand.ExpansionError as err:
        raise PolicyError(f"expanding resource {obj.name}: {err}") from err
    implied = stage.validate_generated(evaluator, generated, inventory)
    errors += implied.errors
    return implied.findings


def _expansion(suite_dir: Path, test: dict[str, Any]) -> list[Any]:
    """The ExpansionTemplates of a test's ``expansion:`` file (none without one)."""
    if not test.get("expansion"):
        return []
    from checker.admit import expand

    path = suite_dir / str(test["expansion"])
    objects = read_objects(path)
    if not all(expand.is_expansion_template(o) for o in objects):
        raise PolicyError(f"not an Expansion Template: {path}")
    try:
        templates = [expand.parse_template(o) for o in objects]
    except expand.TemplateError as err:
        raise PolicyError(f"{path}: {err}") from err
    if expand.cyclic(templates):
        raise PolicyError(f"{path}: template forms expansion cycle")
    return templates


def run_suite(path: Path) -> SuiteResult:
    """Run every test and case of one suite file."""
    result = SuiteResult(path)
    try:
        suite = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        result.failed += 1
        result.failures.append(f"{path}: cannot read suite: {err}")
        return result
    if not isinstance(suite, dict) or suite.get("kind") != "Suite":
        result.failed += 1
        result.failures.append(f"{path}: not a Suite")
        return result
    if suite.get("skip"):
        result.skipped += 1
        return result
    suite_dir = path.parent
    for test in suite.get("tests") or []:
        name = str(test.get("name", "?"))
        if test.get("skip"):
            result.skipped += 1
            continue
        try:
            policy = _policy(suite_dir, test)
            templates = _expansion(suite_dir, test)
        except PolicyError as err:
            if test.get("invalid") and "invalid spec.parameters" in str(err):
                result.passed += 1
                result.passes.append(f"{name} (constraint rejected by schema, as expected)")
            else:
                result.failed += 1
                result.failures.append(f"{name}: {err}")
            continue
        if test.get("invalid"):
            result.failed += 1
            result.failures.append(f"{name}: constraint is valid but the test expects a "
                                   "schema error")
            continue
        # the template sees every inventory object the case lists, as in gator
        evaluator = Evaluator([policy], operation="", prune_inventory=False, cluster_view=False)
        result.engines.update(dict.fromkeys(evaluator.engines([policy.template])))
        for case in test.get("cases") or []:
            label = f"{name}/{case.get('name', '?')}"
            if case.get("skip"):
                result.skipped += 1
                continue
            error = _run_case(evaluator, suite_dir, case, templates)
            if error is None:
                result.passed += 1
                result.passes.append(label)
            else:
                result.failed += 1
                result.failures.append(f"{label}: {error}")
    return result


def _run_case(evaluator: Evaluator, suite_dir: Path, case: dict[str, Any],
              templates: Sequence[Any] = ()) -> str | None:
    if not case.get("object"):
        return "must define object"
    assertions = case.get("assertions") or []
    if not assertions:
        return "assertions must be non-empty"
    try:
        objects = read_objects(suite_dir / case["object"])
        if len(objects) != 1:
            return f"{case['object']!r} defines {len(objects)} objects"
        inventory = [o for p in case.get("inventory") or [] for o in read_objects(suite_dir / p)]
        messages = _messages(evaluator, objects[0], inventory, templates)
    except CheckerError as err:
        return str(err)
    for raw in assertions:
        assertion = Assertion(raw.get("violations"), raw.get("message"))
        problem = assertion.check(messages)
        if problem is not None:
            return problem
    return None
