"""Evaluate policies against resources the way Gatekeeper's admission webhook would.

Each template is compiled once; each (constraint, matching resource) pair is one evaluation with
``input = {"review": <AdmissionRequest>, "parameters": <constraint parameters>}``. The review
JSON of a resource is built once and reused for every policy; referential data
(``data.inventory``) is built from the scanned resources and loaded only into templates that
read it.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from checker.errors import PolicyError
from checker.model import FieldPath, Finding, Resource, Severity, SourceLocation
from checker.policy.engine import CompiledPolicy, EvalError, PolicyEngine, default_engine
from checker.policy.gatekeeper import Template
from checker.policy.match import MatchError, is_namespace, matches
from checker.policy.model import Policy

RULE_EVAL_ERROR = "policy.evaluation-error"
RULE_INVALID_POLICY = "policy.invalid"
RULE_MATCH_UNDECIDED = "policy.match-undecided"
_INDEX = re.compile(r"\[(\d+)\]")


def review(res: Resource, operation: str = "CREATE") -> dict[str, Any]:
    """The AdmissionRequest Gatekeeper builds for an object being created."""
    out: dict[str, Any] = {
        "kind": {"group": res.group, "version": res.version, "kind": res.kind},
        "name": res.name,
        "operation": operation,
        "object": res.body,
        "oldObject": None,
        "userInfo": {"username": "gitops-checker", "groups": []},
        "dryRun": False,
    }
    if res.namespace:
        out["namespace"] = res.namespace
    return out


def inventory(resources: Iterable[Resource]) -> dict[str, Any]:
    """``data.inventory`` as Gatekeeper's sync cache lays it out."""
    cluster: dict[str, Any] = {}
    namespace: dict[str, Any] = {}
    for res in resources:
        slot = namespace.setdefault(res.namespace, {}) if res.namespace else cluster
        slot.setdefault(res.api_version, {}).setdefault(res.kind, {})[res.name] = res.body
    return {"inventory": {"cluster": cluster, "namespace": namespace}}


def parse_field_path(value: Any) -> FieldPath | None:
    """``details.path`` as a list, a dotted path with [i] indexes, or a JSON pointer."""
    if isinstance(value, list) and all(isinstance(p, (str, int)) for p in value):
        return tuple(value)
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("/"):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in value[1:].split("/")]
        return tuple(int(p) if p.isdigit() else p for p in parts)
    out: list[str | int] = []
    for part in _INDEX.sub(r".\1", value).split("."):
        if part:
            out.append(int(part) if part.isdigit() else part)
    return tuple(out)


_FORK_STATE: tuple[Evaluator, Sequence[Resource], Sequence[Resource]] | None = None
PARALLEL_THRESHOLD = 50_000  # (resource, policy) pairs below which one process is faster


def default_workers(pairs: int) -> int:
    """Worker processes for a run of ``pairs`` (resource, policy) pairs."""
    if pairs < PARALLEL_THRESHOLD or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def partition(policies: Sequence[Policy], resources: Sequence[Resource],
              workers: int) -> list[list[int]]:
    """Split policy indexes into at most ``workers`` chunks of similar cost.

    Policies of one template stay together (it is compiled once per process); the cost of a
    template is estimated by how many resources its constraints' kinds select.
    """
    if workers <= 1 or len(policies) <= 1:
        return [list(range(len(policies)))]
    kinds: dict[str, int] = {}
    for res in resources:
        kinds[res.kind] = kinds.get(res.kind, 0) + 1
    groups: dict[str, list[int]] = {}
    for index, policy in enumerate(policies):
        groups.setdefault(policy.template.name, []).append(index)

    def cost(indexes: list[int]) -> int:
        total = 0
        for index in indexes:
            selected = {k for entry in policies[index].constraint.match.get("kinds") or []
                        if isinstance(entry, dict) for k in entry.get("kinds") or ["*"]}
            total += len(resources) if "*" in selected or not selected else sum(
                kinds.get(k, 0) for k in selected)
        return total + 1

    chunks: list[list[int]] = [[] for _ in range(min(workers, len(groups)))]
    loads = [0] * len(chunks)
    for indexes in sorted(groups.values(), key=lambda g: (-cost(g), g[0])):
        target = loads.index(min(loads))
        chunks[target].extend(indexes)
        loads[target] += cost(indexes)
    return [sorted(c) for c in chunks if c]


def _run_chunk(indexes: list[int]) -> list[Evaluation]:
    assert _FORK_STATE is not None
    evaluator, resources, known = _FORK_STATE
    return evaluator._run_each([evaluator.policies[i] for i in indexes], resources, known)


@dataclass
class Evaluation:
    """Findings from policies, and policy problems that stop a policy from running."""

    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Evaluator:
    """Evaluates a set of policies against a set of resources."""

    def __init__(self, policies: Sequence[Policy], engine: PolicyEngine | None = None,
                 operation: str = "CREATE") -> None:
        self.policies = policies
        self.engine = engine or default_engine()
        self.operation = operation
        self._compiled: dict[str, CompiledPolicy | PolicyError] = {}

    def _compile(self, template: Template, data_json: str | None) -> CompiledPolicy:
        key = f"{template.name}@{template.location}"
        if template.uses_inventory:  # referential data is compiled in: one engine per data set
            key += f"#{hashlib.sha256((data_json or '').encode()).hexdigest()}"
        cached = self._compiled.get(key)
        if cached is None:
            modules = [(f"{template.name}.rego", template.rego)]
            modules += [(f"{template.name}.lib{i}.rego", lib)
                        for i, lib in enumerate(template.libs)]
            try:
                cached = self.engine.compile(
                    template.package, modules, rego_v1=template.rego_v1,
                    data_json=data_json if template.uses_inventory else None,
                )
            except PolicyError as err:
                cached = PolicyError(f"{template.location}: ConstraintTemplate "
                                     f"{template.name!r}: {err}")
            self._compiled[key] = cached
        if isinstance(cached, PolicyError):
            raise cached
        return cached

    def run(self, resources: Sequence[Resource],
            known: Sequence[Resource] | None = None, workers: int | None = None) -> Evaluation:
        """Evaluate every policy against every resource its constraint matches.

        ``known`` is what referential data and namespace lookups see (default: ``resources``;
        gator's suites pass their inventory objects instead). Large runs are split by template
        over forked worker processes (``workers``, default: the CPUs available); the result is
        the same as a serial run, in the same order.
        """
        known = resources if known is None else known
        if workers is None:
            workers = default_workers(len(resources) * len(self.policies))
        chunks = partition(self.policies, resources, workers)
        if len(chunks) <= 1:
            return self._run_serial(self.policies, resources, known)
        global _FORK_STATE
        _FORK_STATE = (self, resources, known)
        try:
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(len(chunks)) as pool:
                parts = pool.map(_run_chunk, chunks)
        finally:
            _FORK_STATE = None
        merged = Evaluation()
        by_policy: dict[int, Evaluation] = {}
        for chunk, part in zip(chunks, parts, strict=True):
            for index, evaluation in zip(chunk, part, strict=True):
                by_policy[index] = evaluation
        for index in range(len(self.policies)):
            part_eval = by_policy[index]
            merged.findings.extend(part_eval.findings)
            merged.errors.extend(e for e in part_eval.errors if e not in merged.errors)
        return merged

    def _run_serial(self, policies: Sequence[Policy], resources: Sequence[Resource],
                    known: Sequence[Resource]) -> Evaluation:
        result = Evaluation()
        for part in self._run_each(policies, resources, known):
            result.findings.extend(part.findings)
            result.errors.extend(e for e in part.errors if e not in result.errors)
        return result

    def _run_each(self, policies: Sequence[Policy], resources: Sequence[Resource],
                  known: Sequence[Resource]) -> list[Evaluation]:
        """One Evaluation per policy, in order."""
        namespaces = {r.name: r for r in known if is_namespace(r)}
        need_inventory = any(p.template.uses_inventory for p in policies)
        data_json = json.dumps(inventory(known)) if need_inventory else None
        reviews: dict[int, str] = {}
        out = []
        seen_errors: set[str] = set()
        for policy in policies:
            result = Evaluation()
            out.append(result)
            try:
                compiled = self._compile(policy.template, data_json)
            except PolicyError as err:
                if str(err) not in seen_errors:
                    seen_errors.add(str(err))
                    result.errors.append(str(err))
                    result.findings.append(Finding(
                        rule_id=RULE_INVALID_POLICY, category="policy", severity=Severity.ERROR,
                        message=str(err).split(": ", 1)[-1], location=policy.template.location,
                    ))
                continue
            params_json = json.dumps(policy.constraint.parameters, sort_keys=True)
            undecided: set[str] = set()
            for index, res in enumerate(resources):
                try:
                    if not matches(policy.constraint.match, res, namespaces):
                        continue
                except MatchError as err:
                    if res.namespace not in undecided:
                        undecided.add(res.namespace)
                        result.findings.append(self._undecided(policy, res, str(err)))
                    continue
                review_json = reviews.get(index)
                if review_json is None:
                    review_json = json.dumps(review(res, self.operation))
                    reviews[index] = review_json
                outcome = compiled.evaluate(
                    '{"review":' + review_json + ',"parameters":' + params_json + "}")
                result.findings.extend(self._findings(policy, res, outcome))
        return out

    @staticmethod
    def _undecided(policy: Policy, res: Resource, why: str) -> Finding:
        return Finding(
            rule_id=RULE_MATCH_UNDECIDED, category="policy", severity=Severity.NOTE,
            message=f"{policy.constraint.kind}/{policy.constraint.name} not evaluated for "
                    f"namespace {res.namespace!r}: {why}",
            location=res.location, resource=res.display, cluster=res.cluster,
        )

    @staticmethod
    def _findings(policy: Policy, res: Resource,
                  outcome: list[dict[str, Any]] | EvalError) -> list[Finding]:
        constraint = f"{policy.constraint.kind}/{policy.constraint.name}"
        if isinstance(outcome, EvalError):
            return [Finding(
                rule_id=RULE_EVAL_ERROR, category="policy", severity=Severity.ERROR,
                message=f"template {policy.template.name!r} (constraint {constraint}) failed "
                        f"on {res.display}: {outcome.message}",
                location=res.location, resource=res.display, cluster=res.cluster,
                pack=policy.rule.pack,
            )]
        out = []
        for violation in sorted(outcome, key=lambda v: json.dumps(v, sort_keys=True)):
            details = violation.get("details")
            details = details if isinstance(details, dict) else {}
            path = parse_field_path(details.get("path"))
            location: SourceLocation = res.locate(path)
            out.append(Finding(
                rule_id=policy.rule.id, category="policy", severity=policy.severity,
                message=str(violation.get("msg", "")), location=location,
                resource=res.display, field_path=path or (), controls=policy.rule.controls,
                pack=policy.rule.pack, cluster=res.cluster,
                details={"constraint": constraint,
                         "enforcementAction": policy.constraint.enforcement_action},
            ))
        return out
