"""The admit stage before validation: mutate each object, then expand workloads.

``admit`` takes one cluster's objects and returns them as Gatekeeper's mutating webhook
leaves them, the objects its expansion generates from them, and findings for everything that
changed an object or could not be reproduced. ``validate_generated`` evaluates the
generated objects with an Evaluator already used on the originals (its compiled templates are
reused) and reports their violations on the workloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from checker.admit import expand as expansion
from checker.admit import mutate as mutation
from checker.admit.location import render
from checker.admit.settings import AdmissionSettings
from checker.drift.scope import Scopes
from checker.drift.sources import KindRef
from checker.model import Coverage, Finding, Resource, Severity
from checker.policy.evaluate import (
    RULE_ENGINE_DIFFERENCE,
    RULE_INVALID_POLICY,
    RULE_NOT_EVALUATED,
    RULE_TEMPLATE_NOTE,
    Evaluation,
    Evaluator,
)
from checker.policy.gatekeeper import ACTIONS, gatekeeper_config
from checker.policy.match import is_namespace

RULE_MUTATED = "admission.mutated"
RULE_MUTATOR_INVALID = "admission.mutator-invalid"
RULE_MUTATOR_UNSUPPORTED = "admission.mutator-unsupported"
RULE_MUTATOR_CONFLICT = "admission.mutator-conflict"
RULE_MUTATION_ERROR = "admission.mutation-error"
RULE_MUTATION_UNDECIDED = "admission.mutation-undecided"
RULE_MUTATION_EXTERNAL = "admission.mutation-external-data"
RULE_EXPANSION_INVALID = "admission.expansion-invalid"
RULE_EXPANSION_ERROR = "admission.expansion-error"
_REMOVED = {"spec.parameters.assignIf": "it was removed from Gatekeeper in v3.10"}
_NOT_VERDICTS = (RULE_TEMPLATE_NOTE, RULE_NOT_EVALUATED, RULE_ENGINE_DIFFERENCE,
                 RULE_INVALID_POLICY)


@dataclass
class Admitted:
    """The objects as admission leaves them, what expansion generated, and findings."""

    resources: list[Resource]
    generated: list[expansion.Generated] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)


def _finding(rule: str, severity: Severity, message: str, res: Resource,
             details: dict[str, Any] | None = None, category: str = "policy") -> Finding:
    return Finding(rule_id=rule, category=category, severity=severity, message=message,
                   location=res.location, resource=res.display, cluster=res.cluster,
                   details=details or {}, ref=res.ref)


def _mutators(resources: Sequence[Resource]) -> tuple[list[mutation.Mutator], list[Finding]]:
    found: list[mutation.Mutator] = []
    origin: dict[int, Resource] = {}  # id(mutator) -> the object it was read from
    findings: list[Finding] = []
    for res in resources:
        if res.group == mutation.GROUP and res.kind not in mutation.KINDS:
            findings.append(_finding(
                RULE_MUTATOR_UNSUPPORTED, Severity.WARNING,
                f"{res.kind} {res.name!r} ({res.api_version}) is not a mutator kind this check "
                f"knows ({', '.join(mutation.KINDS)}): whatever it does in the cluster was not "
                "applied here", res))
            continue
        if not mutation.is_mutator(res):
            continue
        label = f"{res.kind}/{res.name}"
        try:
            m = mutation.parse_mutator(res)
        except (mutation.MutatorError, TypeError, AttributeError, KeyError) as err:
            findings.append(_finding(
                RULE_MUTATOR_INVALID, Severity.ERROR,
                f"mutator {label} is not accepted by Gatekeeper ({err}): it never mutates "
                "anything, and nothing was mutated by it here", res))
            continue
        for where in m.notes:
            why = _REMOVED.get(where, f"it is not part of Gatekeeper's {res.kind}")
            findings.append(_finding(
                RULE_MUTATOR_UNSUPPORTED, Severity.WARNING,
                f"mutator {label}: {where} is not supported ({why}); the API server drops "
                "or rejects an unknown field, so it was applied as if the field were absent",
                res))
        found.append(m)
        origin[id(m)] = res
    found.sort(key=lambda m: m.order)
    clash = mutation.conflicts(found)
    for i in sorted(clash):
        m = found[i]
        findings.append(_finding(
            RULE_MUTATOR_CONFLICT, Severity.WARNING,
            f"mutator {m.label} disagrees with another mutator about the schema of "
            f"the objects it mutates (location {render(m.path)}): "
            "Gatekeeper applies neither, and neither was applied here", origin[id(m)]))
    return [m for i, m in enumerate(found) if i not in clash], findings


def _templates(resources: Sequence[Resource]) -> tuple[list[expansion.Template],
                                                       list[Finding]]:
    found: list[expansion.Template] = []
    origin: dict[int, Resource] = {}  # id(template) -> the object it was read from
    findings: list[Finding] = []
    names: set[str] = set()
    for res in resources:
        if res.group == expansion.GROUP and res.kind != expansion.KIND:
            findings.append(_finding(
                RULE_EXPANSION_INVALID, Severity.ERROR,
                f"{res.kind} {res.name!r} ({res.api_version}) is not an ExpansionTemplate, the "
                "only kind of expansion.gatekeeper.sh this check knows: not used", res))
            continue
        if not expansion.is_expansion_template(res):
            continue
        try:
            template = expansion.parse_template(res)
        except (expansion.TemplateError, TypeError, AttributeError, KeyError) as err:
            findings.append(_finding(
                RULE_EXPANSION_INVALID, Severity.ERROR,
                f"ExpansionTemplate {res.name!r} is not accepted by Gatekeeper ({err}): "
                "nothing is expanded by it", res))
            continue
        if template.name in names:  # one cluster-scoped object per name; the last one wins
            found = [t for t in found if t.name != template.name]
        names.add(template.name)
        found.append(template)
        origin[id(template)] = res
    cycle = expansion.cyclic(found)
    for t in found:
        if t.name in cycle:
            findings.append(_finding(
                RULE_EXPANSION_INVALID, Severity.ERROR,
                f"ExpansionTemplate {t.name!r} forms an expansion cycle with other "
                "templates: Gatekeeper uses none of them, and none was used here",
                origin[id(t)]))
    found.sort(key=lambda t: t.name)
    return [t for t in found if t.name not in cycle], findings


def _report(res: Resource, outcome: mutation.Outcome, what: str) -> list[Finding]:
    out = []
    for label, why in outcome.undecided:
        out.append(_finding(
            RULE_MUTATION_UNDECIDED, Severity.WARNING,
            f"whether mutator {label} mutates {what} is undecided ({why}): it was "
            "validated without that mutation", res))
    for m in outcome.external:
        out.append(_finding(
            RULE_MUTATION_EXTERNAL, Severity.WARNING,
            f"mutator {m.label} assigns {render(m.path)} from external data "
            f"provider {m.external!r}, which CI does not call: {what} was validated "
            "without that mutation", res, category="input"))
    if outcome.changes:
        parts = []
        for label, paths in outcome.changes:
            shown = ", ".join(paths[:mutation.MAX_CHANGES_SHOWN])
            more = len(paths) - mutation.MAX_CHANGES_SHOWN
            parts.append(f"{label} ({shown}{f' and {more} more' if more > 0 else ''})")
        out.append(_finding(
            RULE_MUTATED, Severity.NOTE,
            f"{what} was validated as Gatekeeper's mutation leaves it: changed by "
            f"{'; '.join(parts)}", res,
            details={"mutators": [label for label, _ in outcome.changes]}))
    return out


def admit(resources: Sequence[Resource], settings: AdmissionSettings | None = None,
          operation: str = "CREATE", extra: Sequence[Resource] = ()) -> Admitted:
    """One cluster's objects as admission leaves them (mutated in Gatekeeper's order), the
    objects expansion generates from them, and findings. ``extra`` holds ExpansionTemplates
    from folders the config names."""
    settings = settings or AdmissionSettings()
    out = Admitted(resources=list(resources))
    # findings about this cluster's mutators and templates are this cluster's (a shared
    # template folder's problem is reported for each cluster whose admission it is part of)
    cluster = resources[0].cluster if resources else ""
    mutators: list[mutation.Mutator] = []
    if settings.mutation:
        mutators, problems = _mutators(resources)
        out.findings += [f.in_cluster(cluster) for f in problems]
    templates: list[expansion.Template] = []
    if settings.expansion:
        templates, problems = _templates([*resources, *extra])
        out.findings += [f.in_cluster(cluster) for f in problems]
    if not mutators and not templates:
        return out
    config, _ = gatekeeper_config(resources)
    namespaces = {r.name: r for r in resources if is_namespace(r)}
    scopes = Scopes.build(resources)
    budget = mutation.Budget()

    def namespaced(r: Resource) -> bool | None:
        return scopes.namespaced(KindRef(r.group, r.kind))

    if mutators:
        # Namespaces first: the others' namespaceSelectors see them as stored (mutated)
        order = sorted(range(len(resources)), key=lambda i: not is_namespace(resources[i]))
        for i in order:
            res = resources[i]
            if config is not None and config.excluded("mutation-webhook", res):
                continue
            outcome = mutation.mutate(res, mutators, namespaces, "Original", operation,
                                      namespaced(res), budget)
            if outcome.error:
                out.findings.append(_finding(RULE_MUTATION_ERROR, Severity.ERROR,
                                             outcome.error, res))
                continue
            out.findings += _report(res, outcome, res.display)
            if outcome.body is not None:
                res = replace(res, body=outcome.body)
                out.resources[i] = res
                if is_namespace(res):
                    namespaces[res.name] = res
    for res in out.resources if templates else ():
        if not any((res.group, res.version, res.kind) in t.applies for t in templates):
            continue
        try:
            generated, mutated = expansion.expand(res, templates, mutators, namespaces,
                                                  namespaced, budget)
        except expansion.ExpansionError as err:
            out.findings.append(_finding(
                RULE_EXPANSION_ERROR, Severity.ERROR,
                f"expanding {res.display} failed ({err}): the validating webhook rejects it",
                res))
            continue
        for child, outcome in mutated:
            out.findings += _report(child, outcome, f"{child.described} (generated by "
                                    f"ExpansionTemplate {child.template})")
        for child in generated:
            out.coverage.append(Coverage(
                "rendered", "expansion",
                f"{child.described} generated from {res.display} by ExpansionTemplate "
                f"{child.template}", child.location.path, child.location.line, "", 1))
        out.generated += generated
    return out


def validate_generated(evaluator: Evaluator, generated: Sequence[expansion.Generated],
                       known: Sequence[Resource]) -> Evaluation:
    """Evaluate generated objects as constraints see them (``source: Generated``), with
    ``known`` (the cluster's objects) as referential data; violations are the workload's,
    prefixed ``[Implied by <template>]``, at the enforcement action the template sets."""
    out = Evaluation()
    by_template: dict[tuple[str, tuple[str | int, ...]], list[expansion.Generated]] = {}
    for g in generated:  # one run per template and place in the workload (field paths)
        by_template.setdefault((g.template, g.prefix), []).append(g)
    previous = evaluator.source
    evaluator.source = "Generated"
    try:
        for (name, within), group in sorted(by_template.items(), key=lambda kv: (
                kv[0][0], [str(p) for p in kv[0][1]])):
            action = group[0].action
            result = evaluator.run(group, known=known)
            out.errors += [e for e in result.errors if e not in out.errors]
            prefix = expansion.PREFIX.format(name)
            for f in result.findings:
                if f.rule_id in _NOT_VERDICTS:
                    continue
                details = {**f.details, "expansionTemplate": name}
                severity = f.severity
                if action and f.category == "policy" and "constraint" in f.details:
                    severity = ACTIONS[action]
                    details["enforcementAction"] = action
                out.findings.append(replace(
                    f, message=f"{prefix} {f.message}", severity=severity, details=details,
                    field_path=within + f.field_path if f.field_path else ()))
    finally:
        evaluator.source = previous
    return out


def load_templates(settings: AdmissionSettings, root: Path,
                   ) -> tuple[list[Resource], list[Finding]]:
    """The ExpansionTemplates in the folders ``admission.expansionTemplates`` names (every
    other object there is ignored), and the problems reading them."""
    if not settings.expansion or not settings.templates:
        return [], []
    from checker.load import load_paths  # the loader is only needed with such folders

    loaded = load_paths(list(settings.templates), root)
    return ([r for r in loaded.resources if expansion.is_expansion_template(r)],
            list(loaded.findings))
