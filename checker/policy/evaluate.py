"""Evaluate policies against resources the way Gatekeeper's admission webhook would.

Each template is compiled once; each (constraint, matching resource) pair is one evaluation with
``input = {"review": <AdmissionRequest>, "parameters": <constraint parameters>}``. The review
JSON of a resource is built once and reused for every policy; referential data
(``data.inventory``) is built from the scanned resources and loaded only into templates that
read it, with the kinds they declare (``checker.policy.referential``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from checker.errors import PolicyError
from checker.model import FieldPath, Finding, ObjectRef, Resource, Severity, SourceLocation
from checker.parallel import (
    DEFAULT_LIMITS,
    Failure,
    Guard,
    Limits,
    WorkerError,
    available_cpus,
    can_fork,
    no_cycle_collection,
    run_guarded,
    shares,
)
from checker.policy import cel, opa, semantics
from checker.policy.batch import BatchRunner, batchable, build_runners
from checker.policy.engine import CompiledPolicy, EvalError, PolicyEngine, describe
from checker.policy.gatekeeper import CI_POINTS, Template, gatekeeper_config
from checker.policy.match import Matcher, MatchIndex, is_namespace, stored_namespace
from checker.policy.model import Policy
from checker.policy.packs import is_shipped, shipped_digests
from checker.policy.referential import Inventory, union
from checker.policy.regorus_engine import default_engine

RULE_EVAL_ERROR = "policy.evaluation-error"
RULE_INVALID_POLICY = "policy.invalid"
RULE_MATCH_UNDECIDED = "policy.match-undecided"
RULE_TEMPLATE_NOTE = "policy.template-note"
RULE_NOT_EVALUATED = "policy.not-evaluated"
RULE_ENGINE_DIFFERENCE = "policy.engine-difference"
# input.review.namespaceObject when Gatekeeper passes no Namespace (a cluster-scoped object,
# gator): its Rego driver sets a nil map, which OPA's InterfaceToValue turns into {}
NO_NAMESPACE_OBJECT = "{}"
_INDEX = re.compile(r"\[(\d+)\]")


def admission_request(res: Resource, operation: str = "CREATE") -> dict[str, Any]:
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


def review(res: Resource, operation: str = "CREATE",
           namespace_object: dict[str, Any] | None = None) -> dict[str, Any]:
    """``input.review`` as Gatekeeper's Rego driver builds it: the AdmissionRequest plus
    ``namespaceObject`` (Gatekeeper 3.22+), the object's Namespace as stored, or ``{}``
    when none is passed (a cluster-scoped object; gator)."""
    out = admission_request(res, operation)
    out["namespaceObject"] = namespace_object if namespace_object is not None else {}
    return out


def _with_namespace_object(review_json: str, namespace_json: str) -> str:
    """A review's JSON (an object without ``namespaceObject``) with it added."""
    return review_json[:-1] + ',"namespaceObject":' + namespace_json + "}"


def _constraint_object(policy: Policy) -> dict[str, Any]:
    """The constraint as Gatekeeper's CEL driver binds it (``params``): its body, with the
    parameters defaulted from the template's schema."""
    body: dict[str, Any] = json.loads(json.dumps(policy.constraint.body, default=str))
    spec = body.get("spec")
    if not isinstance(spec, dict):
        spec = body["spec"] = {}
    if policy.constraint.parameters or "parameters" in spec:
        spec["parameters"] = policy.constraint.parameters
    return body


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


PARALLEL_THRESHOLD = 20_000  # (resource, policy) pairs below which one process is faster
LEAD = 1.0  # every share runs in a bounded worker (checker.parallel.run_guarded)
MAX_ROUNDS = 64  # re-runs of shares after a worker was stopped, before the run gives up
BATCH_FAILURES = 3  # stopped batched steps after which every object is evaluated plainly


def default_workers(pairs: int) -> int:
    """Worker processes for a run of ``pairs`` (resource, policy) pairs."""
    if pairs < PARALLEL_THRESHOLD or not can_fork():
        return 1
    return available_cpus()


@dataclass
class Evaluation:
    """Findings from policies, and policy problems that stop a policy from running."""

    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # the Rego engines that evaluated, as "name version (what ran on it)"
    engines: tuple[str, ...] = ()


@dataclass
class Isolation:
    """What earlier workers were stopped on, so that re-runs go around it.

    ``failed`` maps a policy to (resource index, reason, resource display): index -1 when
    compiling it was stopped.
    ``plain`` holds resources whose batched evaluation was stopped: they are evaluated one
    template at a time, so that the next stop names the template.
    """

    failed: dict[int, tuple[int, str, str]] = field(default_factory=dict)
    plain: set[int] = field(default_factory=set)
    batch_failures: int = 0
    no_batch: bool = False

    def blame(self, failure: Failure, resources: Sequence[Resource]) -> None:
        """Record the step a worker was stopped in (``resources``: all of the run's)."""
        resource, policy = failure.key
        if policy >= 0:
            display = resources[resource].display if resource >= 0 else ""
            self.failed[policy] = (resource, failure.reason, display)
            return
        self.batch_failures += 1
        if resource < 0 or self.batch_failures >= BATCH_FAILURES:
            self.no_batch = True
        else:
            self.plain.add(resource)


class Evaluator:
    """Evaluates a set of policies against a set of resources."""

    def __init__(self, policies: Sequence[Policy], engine: PolicyEngine | None = None,
                 operation: str = "CREATE", batch: bool = True,
                 prune_inventory: bool = True, cluster_view: bool = True,
                 limits: Limits = DEFAULT_LIMITS, prefer_cel: bool = True) -> None:
        self.policies = policies
        # a template with both CEL and Rego runs its CEL, as Gatekeeper's default driver order
        # (K8sNativeValidation first) does; False runs the Rego
        self.prefer_cel = prefer_cel
        self.limits = limits  # per evaluation step and per worker (checker.parallel)
        # True: review as the webhook and audit do (namespaceObject from the Namespace
        # manifests, a Gatekeeper Config's namespace exclusions); False: as gator does
        self.cluster_view = cluster_view
        self.batch = batch
        # each template sees the kinds it declares (referential.Inventory), or every object
        self.prune_inventory = prune_inventory
        # AdmissionRequests given as they are (gator's AdmissionReview objects), by id(resource)
        self.requests: dict[int, dict[str, Any]] = {}
        self.engine = engine or default_engine()
        # Templates that are not shipped ones run on real OPA when it is installed, which gives
        # Gatekeeper's semantics exactly; an engine chosen by the caller runs everything.
        self.exact: PolicyEngine | None = opa.exact_engine() if engine is None else None
        self.operation = operation
        # what constraints' match.source sees: Original (objects as applied) or Generated
        # (objects Gatekeeper's expansion creates; checker.admit.stage sets it)
        self.source = "Original"
        # the Gatekeeper Configs whose namespace exclusions apply (None: those among the known
        # objects); a pull-request run passes the base ref's (checker.trust)
        self.gatekeeper_configs: Sequence[Resource] | None = None
        self._compiled: dict[str, CompiledPolicy | PolicyError] = {}

    def runs_cel(self, template: Template) -> bool:
        """Whether ``template`` is evaluated by its CEL code (K8sNativeValidation)."""
        return template.runs_cel(self.prefer_cel)

    def engine_for(self, template: Template) -> PolicyEngine:
        """The Rego engine that evaluates ``template`` (when it runs Rego)."""
        if self.exact is not None and not is_shipped(template):
            return self.exact
        return self.engine

    def may_compile(self, template: Template) -> bool:
        """Whether ``template`` may run on the engine's ahead-of-time compiled program: only a
        shipped template, whose results there are proven equal to the interpreter's and OPA's
        in CI (checker.policy.rvm)."""
        return is_shipped(template)

    def engines(self, templates: Sequence[Template]) -> tuple[str, ...]:
        """Which engine evaluates which of ``templates``, for reports."""
        out = []
        if any(self.runs_cel(t) for t in templates):
            out.append(f"{cel.ENGINE_INSTANCE.version} (K8sNativeValidation CEL templates)")
        templates = [t for t in templates if not self.runs_cel(t)]
        shipped = sum(1 for t in templates if is_shipped(t))
        users = len(templates) - shipped
        if shipped and self.engine.name == "regorus" and self.batch:
            out.append(f"{describe(self.engine)} (shipped templates, compiled RVM)")
        elif shipped:
            out.append(f"{describe(self.engine)} (shipped templates)")
        if users:
            chosen = self.exact or self.engine
            out.append(f"{describe(chosen)} (repository templates)")
        return tuple(out)

    def _compile(self, template: Template, data_json: str | None,
                 data_key: str = "") -> CompiledPolicy:
        """The template compiled alone; ``data_key`` identifies ``data_json`` (its hash)."""
        key = f"{template.name}@{template.location}"
        if self.runs_cel(template):
            key += "#cel"
            found = self._compiled.get(key)
            if found is None:
                try:
                    found = cel.ENGINE_INSTANCE.compile_template(
                        template.cel or cel.CelSource(()),
                        f"ConstraintTemplate {template.name!r}")
                except PolicyError as err:
                    found = PolicyError(f"{template.location}: ConstraintTemplate "
                                        f"{template.name!r}: {err}")
                self._compiled[key] = found
            if isinstance(found, PolicyError):
                raise found
            return found
        if template.uses_inventory:  # referential data is compiled in: one engine per data set
            key += f"#{data_key}"
        cached = self._compiled.get(key)
        if cached is None:
            modules = [(f"{template.name}.rego", template.rego)]
            modules += [(f"{template.name}.lib{i}.rego", lib)
                        for i, lib in enumerate(template.libs)]
            try:
                cached = self.engine_for(template).compile(
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
        gator's suites pass their inventory objects instead). Large runs split the resources
        over forked worker processes (``workers``, default: the CPUs available); the result is
        the same as a serial run, in the same order.

        Every share runs in a forked worker bounded by ``self.limits``: a step (compiling a
        template, one object against its batch, one template on one object) that runs too
        long, takes too much memory or crashes stops that worker; the share is run again
        around it and the template gives a ``policy.evaluation-error`` on every object it
        matches, plus an error (exit code 2), as Gatekeeper fails closed.
        """
        known = resources if known is None else known
        notes = self._unenforced(resources[0].cluster if resources else "")
        synced = known  # what data.inventory holds
        if self.cluster_view:
            resources, synced, excluded = self._exclude(resources, known)
            notes += excluded
        if workers is None:
            workers = default_workers(len(resources) * len(self.policies))
        workers = max(1, min(workers, len(resources)))
        # Go's runtime, once started in this process, is not usable in a forked child (it
        # hangs there): templates on OPA are then evaluated here, in one share, without the
        # workers' bounds. A process that has not loaded OPA (the CLI) forks as usual and each
        # worker starts its own Go runtime.
        in_process = opa.loaded() and any(self.engine_for(p.template).name == opa.NAME
                                          and not self.runs_cel(p.template)
                                          for p in self.policies)
        if in_process:
            workers = 1
        with no_cycle_collection():
            data = Inventory(synced, self.prune_inventory)
            readers = [p.template.sync for p in self.policies if p.template.uses_inventory]
            if self.batch:
                shipped_digests()  # read once here, not once per worker
            for policy in self.policies:  # caches filled here serve every run's workers
                if self.batch:
                    batchable(policy.template)  # a text scan, safe on untrusted Rego
                if ((is_shipped(policy.template)  # trusted Rego may compile here; never
                        and self.engine_for(policy.template).name != opa.NAME)  # OPA: see below
                        or self.runs_cel(policy.template)):  # CEL compiles once, here: no I/O
                    with contextlib.suppress(PolicyError):
                        self._compile(policy.template, None)
            if readers:  # built before forking, so that no worker builds it again
                data.json(union(readers))
                for sync in set(readers):
                    data.json(sync)
            bounds = (shares(self._weights(resources), workers, LEAD) if workers > 1
                      else [(0, len(resources))])
            isolation = Isolation()

            def share(span: tuple[int, int], guard: Guard) -> list[Evaluation]:
                return self._run_each(self.policies, resources[span[0]:span[1]], known, data,
                                      guard, isolation, span[0])

            done: dict[int, list[Evaluation]] = {}
            for _ in range(MAX_ROUNDS):
                pending = [i for i in range(len(bounds)) if i not in done]
                if not pending:
                    break
                outs = ([share(bounds[i], Guard()) for i in pending] if in_process else
                        run_guarded(share, [bounds[i] for i in pending], self.limits, quiet=True))
                for i, out in zip(pending, outs, strict=True):
                    if isinstance(out, Failure):
                        isolation.blame(out, resources)
                    else:
                        done[i] = out
            else:
                raise WorkerError(f"policy evaluation was stopped more than {MAX_ROUNDS} times")
            parts = [done[i] for i in range(len(bounds))]
        merged = Evaluation(findings=notes,
                            engines=self.engines([p.template for p in self.policies]))
        for index in range(len(self.policies)):
            seen: set[str] = set()
            for part in parts:
                for finding in part[index].findings:
                    if finding.rule_id in (RULE_MATCH_UNDECIDED, RULE_INVALID_POLICY,
                                           RULE_TEMPLATE_NOTE, RULE_NOT_EVALUATED,
                                           RULE_ENGINE_DIFFERENCE):
                        if finding.message in seen:
                            continue
                        seen.add(finding.message)
                    merged.findings.append(finding)
                merged.errors.extend(e for e in part[index].errors if e not in merged.errors)
        for index, (where, reason, display) in sorted(isolation.failed.items()):
            policy = self.policies[index]
            what = "compiling it" if where < 0 else f"evaluating it on {display}"
            merged.errors.append(
                f"{policy.template.location}: ConstraintTemplate {policy.template.name!r} "
                f"(constraint {policy.constraint.kind}/{policy.constraint.name}): {what} "
                f"{reason}; every object it matches is reported as not evaluated")
        return merged

    def _exclude(self, resources: Sequence[Resource], known: Sequence[Resource],
                 ) -> tuple[list[Resource], list[Resource], list[Finding]]:
        """Apply the namespace exclusions of a Gatekeeper Config among ``known``.

        CI stands for the webhook (at apply) and audit (after): an object is left out only when
        both ignore its namespace; one that only one of them ignores is still evaluated, as
        the other still reports it. Objects the ``sync`` process ignores are left out of
        ``data.inventory`` (Namespaces are still looked up, as the webhook reads them from
        the API). Returns the objects to evaluate, those synced, and the notes.
        """
        config, problems = gatekeeper_config(
            known if self.gatekeeper_configs is None else self.gatekeeper_configs)
        cluster = known[0].cluster if known else ""  # the cluster whose Gatekeeper it is
        notes = [Finding(rule_id=RULE_NOT_EVALUATED, category="policy", severity=Severity.NOTE,
                         message=message, location=location, cluster=cluster)
                 for location, message in problems]
        if config is None:
            return list(resources), list(known), notes
        kept: list[Resource] = []
        left: dict[tuple[str, str], int] = {}
        for res in resources:
            if config.excluded("webhook", res) and config.excluded("audit", res):
                key = (res.cluster, res.name if is_namespace(res) else res.namespace)
                left[key] = left.get(key, 0) + 1
            else:
                kept.append(res)
        for (cluster, ns), count in sorted(left.items()):
            where = f"namespace {ns!r}" if ns else "cluster-scoped objects"
            notes.append(Finding(
                rule_id=RULE_NOT_EVALUATED, category="policy", severity=Severity.NOTE,
                message=f"{count} object(s) of {where} not evaluated: Gatekeeper Config "
                        f"{config.config} excludes {'it' if ns else 'them'} from the webhook "
                        "and audit processes",
                location=config.location, cluster=cluster,
            ))
        return kept, [r for r in known if not config.excluded("sync", r)], notes

    def _unenforced(self, cluster: str) -> list[Finding]:
        """A note for each constraint whose scoped enforcement actions skip CI's points."""
        out = []
        for policy in self.policies:
            c = policy.constraint
            if not c.enforced:
                out.append(Finding(
                    rule_id=RULE_NOT_EVALUATED, category="policy", severity=Severity.NOTE,
                    message=f"constraint {c.kind}/{c.name} not evaluated: its "
                            f"scopedEnforcementActions apply at {', '.join(c.scoped_points)}, "
                            f"not at {', '.join(CI_POINTS)}, the point CI reviews as (gator's)",
                    location=c.location, cluster=cluster,
                ))
        return list(dict.fromkeys(out))

    def _weights(self, resources: Sequence[Resource]) -> list[int]:
        """Work per resource, estimated as 1 + the constraints whose kinds admit it."""
        index = MatchIndex({i: Matcher(p.constraint.match) for i, p in enumerate(self.policies)},
                           {})
        return [1 + len(index.candidates(res.group, res.kind)) for res in resources]

    def _run_each(self, policies: Sequence[Policy], resources: Sequence[Resource],
                  known: Sequence[Resource], data: Inventory, guard: Guard | None = None,
                  isolation: Isolation | None = None, offset: int = 0) -> list[Evaluation]:
        """One Evaluation per policy, in policy order; within each, resource order.

        ``data`` is ``data.inventory`` built from ``known``. Each step is announced to
        ``guard`` by (index of the resource, counted from ``offset``, or -1 while compiling;
        index of the policy, or -1 for a batch); ``isolation`` says which steps to go around.
        """
        guard = guard or Guard()
        isolation = isolation or Isolation()
        namespaces = {r.name: r for r in known if is_namespace(r)}
        referential: dict[int, tuple[str | None, str]] = {}  # policy -> (data JSON, its hash)

        def data_of(index: int) -> tuple[str | None, str]:
            if not policies[index].template.uses_inventory:
                return None, ""
            if index not in referential:
                text = '{"inventory":' + data.json(policies[index].template.sync) + "}"
                referential[index] = (text, hashlib.sha256(text.encode()).hexdigest())
            return referential[index]

        out = [Evaluation() for _ in policies]
        compiled: dict[int, CompiledPolicy] = {}
        seen_errors: set[str] = set()
        noted: set[tuple[SourceLocation, str]] = set()
        for index, policy in enumerate(policies):
            for note in policy.template.notes:
                if (policy.template.location, note) not in noted:
                    noted.add((policy.template.location, note))
                    out[index].findings.append(Finding(
                        rule_id=RULE_TEMPLATE_NOTE, category="policy", severity=Severity.NOTE,
                        message=f"ConstraintTemplate {policy.template.name!r}: {note}",
                        location=policy.template.location,
                    ))
            if index in isolation.failed:
                continue
            for problem in self._differences(policy.template):
                if (policy.template.location, problem) not in noted:
                    noted.add((policy.template.location, problem))
                    out[index].findings.append(Finding(
                        rule_id=RULE_ENGINE_DIFFERENCE, category="policy",
                        severity=Severity.WARNING,
                        message=f"ConstraintTemplate {policy.template.name!r}: {problem}",
                        location=policy.template.location,
                    ))
            try:
                # Validate without referential data (cheap); the data goes in on first use.
                guard.begin(-1, index)
                compiled[index] = self._compile(policy.template, None)
                guard.end()
            except PolicyError as err:
                guard.end()
                if str(err) not in seen_errors:
                    seen_errors.add(str(err))
                    out[index].errors.append(str(err))
                    out[index].findings.append(Finding(
                        rule_id=RULE_INVALID_POLICY, category="policy", severity=Severity.ERROR,
                        message=str(err).split(": ", 1)[-1], location=policy.template.location,
                    ))
        for index in [i for i in compiled if not policies[i].constraint.enforced]:
            del compiled[index]  # gator skips a constraint not enforced at its point
        if self.batch and not isolation.no_batch:
            guard.begin(-1, -1)
            on_main = [i for i in sorted(compiled)
                       if self.engine_for(policies[i].template) is self.engine
                       and not self.runs_cel(policies[i].template)]
            runners, alone = build_runners(self.engine, policies, on_main, data,
                                           self.may_compile)
            alone = sorted({*alone, *(i for i in compiled if i not in on_main)})
            guard.end()
        else:
            runners, alone = [], sorted(compiled)
        params = {i: json.dumps(policies[i].constraint.parameters, sort_keys=True)
                  for i in compiled}
        # CEL templates bind the whole constraint as params
        constraints = {i: _constraint_object(policies[i]) for i in compiled
                       if self.runs_cel(policies[i].template)}
        undecided: set[tuple[int, str]] = set()
        shared: dict[int, dict[str, str]] = {}
        splits: dict[tuple[int, ...], tuple[list[tuple[BatchRunner, tuple[int, ...]]],
                                            list[int]]] = {}
        stopped = sorted(isolation.failed)
        index_of = MatchIndex({i: Matcher(policies[i].constraint.match)
                               for i in sorted([*compiled, *stopped])},
                              namespaces, stored=self.cluster_view, source=self.source)
        reads_ns = {i for i in compiled if policies[i].template.uses_namespace_object}
        ns_json: dict[str, str | None] = {}  # namespace -> namespaceObject JSON (None: absent)
        for number, res in enumerate(resources, offset):
            matching, problems = index_of(res)
            namespace_json = NO_NAMESPACE_OBJECT
            if self.cluster_view and res.namespace and not is_namespace(res):
                if res.namespace not in ns_json:
                    ns = namespaces.get(res.namespace)
                    ns_json[res.namespace] = (None if ns is None else
                                              json.dumps(stored_namespace(ns)))
                found = ns_json[res.namespace]
                if found is None:
                    if reads_ns.intersection(matching):
                        why = (f"the template reads input.review.namespaceObject and Namespace "
                               f"{res.namespace!r} is not in the scanned manifests")
                        problems = (*problems, *((i, why) for i in matching if i in reads_ns))
                        matching = tuple(i for i in matching if i not in reads_ns)
                else:
                    namespace_json = found
            for index, why in problems:
                if (index, res.namespace) not in undecided:
                    undecided.add((index, res.namespace))
                    out[index].findings.append(self._undecided(policies[index], res, why))
            if not matching:
                continue
            request = self.requests.get(id(res))
            if request is None:
                request = admission_request(res, self.operation)
            elif "namespaceObject" in request:  # the driver sets it, whatever the request says
                request = {k: v for k, v in request.items() if k != "namespaceObject"}
            review_json = _with_namespace_object(json.dumps(request), namespace_json)
            plain = number in isolation.plain
            split = splits.get(matching) if not plain else ([], [i for i in sorted(compiled)
                                                                 if i in matching])
            if split is None:  # which batch evaluates which matching constraint
                chosen = set(matching)
                split = ([(r, m) for r in runners
                          if (m := tuple(i for i in r.members if i in chosen))],
                         [i for i in alone if i in chosen])
                splits[matching] = split
            outcomes: dict[int, list[dict[str, Any]] | EvalError] = {}
            if split[0]:
                guard.begin(number, -1)
                for runner, members in split[0]:
                    outcomes.update(runner.evaluate(review_json, members))
                guard.end()
            again = [i for i, outcome in outcomes.items() if isinstance(outcome, EvalError)]
            review_data: dict[str, Any] | None = None  # parsed once for the CEL templates
            for index in [*again, *split[1]]:  # errors re-run plainly: they name the template
                guard.begin(number, index)
                program = self._compile(policies[index].template, *data_of(index))
                if index in constraints:
                    if review_data is None:
                        review_data = json.loads(review_json)
                    assert isinstance(program, cel.CompiledTemplate)
                    outcomes[index] = program.review(review_data, constraints[index])
                else:
                    outcomes[index] = program.evaluate(
                        '{"review":' + review_json + ',"parameters":' + params[index] + "}")
                guard.end()
            for index in stopped:
                if index in matching:
                    outcomes[index] = EvalError(self._stopped(isolation.failed[index], number))
            display, ref = res.display, res.ref  # one of each per object, shared
            for index in sorted(outcomes):
                if outcomes[index]:
                    if index not in shared:
                        shared[index] = self._shared(policies[index])
                    out[index].findings.extend(self._findings(policies[index], res, display, ref,
                                                              shared[index],
                                                              outcomes[index]))
        return out

    def _differences(self, template: Template) -> list[str]:
        """Known differences from OPA that affect ``template`` on the engine that runs it."""
        if (self.engine_for(template).name != "regorus" or is_shipped(template)
                or self.runs_cel(template)):
            return []  # OPA itself, or a shipped template (proven against OPA in CI)
        out = []
        for module in (template.rego, *template.libs):
            try:
                found = semantics.hazards(module, template.rego_v1)
            except PolicyError:
                continue  # reported as policy.invalid when it is compiled
            why = (f"{opa.SWITCH}=0 is set" if opa.available() else
                   "opa-golib-python-bindings is not installed")
            out += [f"evaluated by regorus (OPA not enabled: {why}); at line {h.line} of its "
                    f"Rego, `{h.text}` fails in Gatekeeper (OPA) when an operand is undefined "
                    "but succeeds here, so verdicts on objects without that field may differ "
                    "from the cluster's (for exact verdicts run with OPA: the container image "
                    "has it)" for h in found]
        return out

    @staticmethod
    def _stopped(failure: tuple[int, str, str], number: int) -> str:
        """Why a template stopped earlier is not evaluated on resource ``number``."""
        where, reason, display = failure
        if where == number:
            return f"the evaluation {reason}"
        if where < 0:
            return f"not evaluated: compiling the template {reason}"
        return f"not evaluated: its evaluation {reason} on {display}"

    @staticmethod
    def _undecided(policy: Policy, res: Resource, why: str) -> Finding:
        return Finding(
            rule_id=RULE_MATCH_UNDECIDED, category="policy", severity=Severity.NOTE,
            message=f"{policy.constraint.kind}/{policy.constraint.name} not evaluated for "
                    f"namespace {res.namespace!r}: {why}",
            location=res.location, resource=res.display, cluster=res.cluster, ref=res.ref,
        )

    @staticmethod
    def _shared(policy: Policy) -> dict[str, str]:
        """The details every finding of ``policy`` carries: one object, shared (read-only)."""
        return {"constraint": f"{policy.constraint.kind}/{policy.constraint.name}",
                "enforcementAction": policy.constraint.enforcement_action}

    @staticmethod
    def _findings(policy: Policy, res: Resource, display: str, ref: ObjectRef,
                  shared: dict[str, str],
                  outcome: list[dict[str, Any]] | EvalError) -> list[Finding]:
        constraint = shared["constraint"]
        if isinstance(outcome, EvalError):
            return [Finding(
                rule_id=RULE_EVAL_ERROR, category="policy", severity=Severity.ERROR,
                message=f"template {policy.template.name!r} (constraint {constraint}) failed "
                        f"on {res.display}: {outcome.message}",
                location=res.location, resource=display, cluster=res.cluster,
                pack=policy.rule.pack, ref=ref,
            )]
        out = []
        rule, severity, controls, pack = (policy.rule.id, policy.severity, policy.rule.controls,
                                          policy.rule.pack)
        if len(outcome) > 1:
            outcome = sorted(outcome, key=lambda v: json.dumps(v, sort_keys=True))
        for violation in outcome:
            details = violation.get("details")
            details = details if isinstance(details, dict) else {}
            path = parse_field_path(details.get("path"))
            location: SourceLocation = res.locate(path)
            out.append(Finding(
                rule_id=rule, category="policy", severity=severity,
                message=str(violation.get("msg", "")), location=location, resource=display,
                field_path=path or (), controls=controls, pack=pack, cluster=res.cluster,
                details=shared, ref=ref,
            ))
        return out
