"""Rules built into the checker itself (input problems, policy problems)."""

from __future__ import annotations

from checker.load.objects import (
    RULE_EMPTY,
    RULE_KUSTOMIZE,
    RULE_MISSING_PATH,
    RULE_NOT_OBJECT,
    RULE_PARSE,
)
from checker.model import Rule, Severity
from checker.policy.evaluate import RULE_EVAL_ERROR, RULE_INVALID_POLICY, RULE_MATCH_UNDECIDED

BUILTIN_RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(RULE_PARSE, "File cannot be parsed", Severity.ERROR,
             "The file is not valid UTF-8 YAML, has duplicate keys, or exceeds the size, "
             "nesting or alias-expansion limits. Nothing in it was checked.",
             "Fix the YAML at the reported line."),
        Rule(RULE_NOT_OBJECT, "Document is not a Kubernetes object", Severity.WARNING,
             "A document in a manifest file has no apiVersion and kind, so it is not applied.",
             "Add apiVersion and kind, or move the document out of the manifests."),
        Rule(RULE_EMPTY, "Empty manifest file", Severity.WARNING,
             "The file holds no YAML documents.", "Delete the file or add manifests."),
        Rule(RULE_KUSTOMIZE, "Kustomize build failed", Severity.ERROR,
             "A folder with a kustomization file could not be rendered; its objects were not "
             "checked.", "Run the same kustomize build locally and fix the error it reports."),
        Rule(RULE_MISSING_PATH, "Path does not exist", Severity.ERROR,
             "A path given on the command line or in the configuration does not exist.",
             "Correct the path."),
        Rule(RULE_EVAL_ERROR, "Policy evaluation failed", Severity.ERROR,
             "A ConstraintTemplate raised an error while evaluating an object. Gatekeeper would "
             "fail the admission review for it.", "Fix the template's Rego."),
        Rule(RULE_INVALID_POLICY, "Invalid policy", Severity.ERROR,
             "A ConstraintTemplate or Constraint is invalid and was not evaluated.",
             "Fix the template or constraint as the message says."),
        Rule(RULE_MATCH_UNDECIDED, "Constraint match undecided", Severity.NOTE,
             "A constraint's namespaceSelector needs a Namespace that is not among the scanned "
             "manifests, so the constraint was not evaluated for that namespace.",
             "Add the Namespace manifest to the scanned paths."),
    )
}

from checker.drift.rules import DRIFT_RULES  # noqa: E402

BUILTIN_RULES.update(DRIFT_RULES)
