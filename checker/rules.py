"""Rules built into the checker itself (input problems, policy problems)."""

from __future__ import annotations

import re
from dataclasses import replace

from checker.accept import (
    RULE_EXPIRED,
    RULE_EXPIRING,
    RULE_INLINE_IGNORED,
    RULE_INVALID,
    RULE_PENDING,
    RULE_STALE,
)
from checker.load.helm import RULE_HELM
from checker.load.objects import (
    RULE_DUPLICATE_KEY,
    RULE_EMPTY,
    RULE_INVALID_TEXT,
    RULE_KUSTOMIZE,
    RULE_MISSING_PATH,
    RULE_NOT_CHECKED,
    RULE_NOT_OBJECT,
    RULE_PARSE,
    RULE_POLICY_SELECTION,
)
from checker.model import Rule, Severity
from checker.policy.evaluate import (
    RULE_ENGINE_DIFFERENCE,
    RULE_EVAL_ERROR,
    RULE_INVALID_POLICY,
    RULE_MATCH_UNDECIDED,
    RULE_NOT_EVALUATED,
    RULE_TEMPLATE_NOTE,
)
from checker.policy.vap import RULE_VAP_ERROR, RULE_VAP_INVALID, RULE_VAP_NOT_EVALUATED

RULE_NO_POLICIES = "input.no-policies"
RULE_NOTHING_CHECKED = "input.nothing-checked"
RULE_UNTRUSTED_HOST = "input.untrusted-host"
RULE_UNTRUSTED_CONFIG = "input.untrusted-config"
RULE_IMPACT_NOT_EVALUATED = "input.impact-not-evaluated"

BUILTIN_RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(RULE_PARSE, "File cannot be parsed", Severity.ERROR,
             "The file is not valid UTF-8 YAML or JSON, holds a value the Kubernetes decoder "
             "cannot convert to JSON (NaN, infinity, a null key), or exceeds the size, nesting "
             "or alias-expansion limits. The document (or, past a budget, the rest of the "
             "file) was not checked.",
             "Fix the YAML at the reported line."),
        Rule(RULE_NOT_OBJECT, "Document is not a Kubernetes object", Severity.WARNING,
             "A document in a manifest file has no apiVersion and kind, so it is not applied.",
             "Add apiVersion and kind, or move the document out of the manifests."),
        Rule(RULE_EMPTY, "Empty manifest file", Severity.WARNING,
             "The file holds no YAML documents.", "Delete the file or add manifests."),
        Rule(RULE_KUSTOMIZE, "Kustomize build failed", Severity.ERROR,
             "A folder with a kustomization file could not be rendered; its objects were not "
             "checked.", "Run the same kustomize build locally and fix the error it reports."),
        Rule(RULE_HELM, "Helm render failed", Severity.ERROR,
             "Helm could not render a HelmRelease's chart with its values (a template error, "
             "a values type the chart does not accept, a post-renderer that failed); Flux "
             "would fail the release too, and none of its objects were checked.",
             "Run helm template with the same values locally and fix what Helm reports."),
        Rule(RULE_NOT_CHECKED, "Input not checked", Severity.WARNING,
             "Something the GitOps controller will apply could not be rendered or followed "
             "here (a remote chart or source that is not allowed or not reachable, a source "
             "outside this repository, a plugin), so the objects it produces were not checked. "
             "The message says what and why.",
             "Make the input available to the check (allow its host in the trusted config, "
             "vendor it), or accept the gap explicitly."),
        Rule(RULE_UNTRUSTED_HOST, "Network host not yet trusted", Severity.WARNING,
             "With a base ref (--accept-base, the Action's default on pull requests), the "
             "hosts that repository content may make the job contact (helm.allowedHosts, "
             "kustomize.remoteHosts) are those the base ref's config already allows. A host "
             "the change itself adds is not contacted; what it serves is reported not checked.",
             "Add the host to the config on the default branch first, in a reviewed change."),
        Rule(RULE_UNTRUSTED_CONFIG, "Config change not yet trusted", Severity.WARNING,
             "With a base ref (--accept-base, the Action's default on pull requests), what the "
             "check does comes from the base ref's config: policy selection (packs, policy "
             "folders, overrides), acceptance settings, drift settings (ignore rules, field "
             "managers, field types), evaluation limits, "
             "the severity of not-checked inputs, allowed registries, guardrails and admission "
             "(mutation, expansion), and so do a Gatekeeper Config (its namespace exclusions) "
             "and ValidatingAdmissionPolicies and bindings among the manifests. A change to "
             "them in the pull request is reported here and takes effect once merged, so a "
             "change cannot switch off its own check. "
             "Changed cluster paths are checked as the change declares them, with a note.",
             "Make the config change in its own reviewed pull request first."),
        Rule(RULE_IMPACT_NOT_EVALUATED, "Policy-change impact not evaluated", Severity.WARNING,
             "The pull request changes policies, packs, overrides, acceptances or cluster "
             "config, and the what-if (the change's manifests under the change's own "
             "policies, to show which objects would newly fail or pass) could not run: the "
             "message says why (an invalid config or policy of the change, a snapshot that "
             "cannot be read). The check itself ran with the base ref's policies; the impact "
             "of the change is unknown, not empty.",
             "Fix what the message names; see docs/github-action.md (policy-change impact)."),
        Rule(RULE_NO_POLICIES, "Cluster has no policies", Severity.ERROR,
             "No policy applies to this cluster (its policies folder is empty, or no pack "
             "and no policies folder was selected), so nothing was evaluated: that is never "
             "a pass.",
             "Add policies to the cluster's folder, or select a pack."),
        Rule(RULE_NOTHING_CHECKED, "No resources checked", Severity.ERROR,
             "No Kubernetes object was found for this cluster in the given paths, so nothing "
             "was checked: that is never a pass.",
             "Check the paths (or the cluster's paths in the config); the coverage section "
             "lists what was rendered, followed and not checked."),
        Rule(RULE_DUPLICATE_KEY, "Duplicate key", Severity.WARNING,
             "A mapping repeats a key. The Kubernetes decoder keeps the last value, so the last "
             "value is what the cluster receives and what was checked; a reviewer reading the "
             "first one is misled.", "Remove all but one of the repeated keys."),
        Rule(RULE_INVALID_TEXT, "Text the API server receives differently", Severity.WARNING,
             "A JSON string holds a lone UTF-16 surrogate escape (\\ud800). The Kubernetes "
             "decoder replaces it with U+FFFD, and that is what was checked.",
             "Write the intended character, or a valid surrogate pair."),
        Rule(RULE_POLICY_SELECTION, "Policy selection made by the repository", Severity.NOTE,
             "The repository's own configuration (.gitops-checker.yaml packs: [none], or a "
             "Security Tower cluster file) switched the built-in packs off. That configuration "
             "may come from the pull request under check, so this is reported as a note when "
             "the repository's own policies ran instead (with none left, input.no-policies is "
             "an error).",
             "Keep the selection in the trusted configuration and pass --pack in the workflow; "
             "point Security Tower at a folder that holds the policies it enforces."),
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
             "A constraint's namespaceSelector, or a template that reads "
             "input.review.namespaceObject, needs a Namespace that is not among the scanned "
             "manifests, so the constraint was not evaluated for that namespace.",
             "Add the Namespace manifest to the scanned paths."),
        Rule(RULE_ENGINE_DIFFERENCE, "Template evaluated where OPA may differ", Severity.WARNING,
             "A repository ConstraintTemplate was evaluated by regorus because OPA (the engine "
             "Gatekeeper embeds) is not enabled, and its Rego has a negated expression whose "
             "operand can be undefined: OPA makes such a negation fail, regorus makes it "
             "succeed, so on objects without that field the verdict may differ from the "
             "cluster's. The message names the line.",
             "Run with OPA for exact verdicts: install opa-golib-python-bindings (the "
             "container image has it; it is used unless GITOPS_CHECKER_OPA=0), or give the "
             "operand a default (object.get) so both engines agree."),
        Rule(RULE_TEMPLATE_NOTE, "ConstraintTemplate note", Severity.NOTE,
             "A ConstraintTemplate has a problem that Gatekeeper tolerates: the template loads "
             "and is evaluated, but part of it (named in the message) is ignored, as it is in "
             "the cluster.", "Fix the template as the message says."),
        Rule(RULE_NOT_EVALUATED, "Not evaluated, as in Gatekeeper", Severity.NOTE,
             "Gatekeeper would not evaluate this here: a constraint whose "
             "scopedEnforcementActions do not apply at gator.gatekeeper.sh (the point CI "
             "reviews as), or objects in namespaces that the cluster's Gatekeeper Config "
             "excludes from both the webhook and audit. The message says which.",
             "Nothing to do if that is intended; otherwise scope the constraint to "
             "gator.gatekeeper.sh (or *) or narrow the Config's excludedNamespaces."),
        Rule(RULE_VAP_INVALID, "Invalid ValidatingAdmissionPolicy", Severity.ERROR,
             "A ValidatingAdmissionPolicy or ValidatingAdmissionPolicyBinding in the "
             "repository is invalid (a required field is missing, an expression does not "
             "compile, a selector is malformed) and was not evaluated.",
             "Fix the policy or binding as the message says."),
        Rule(RULE_VAP_NOT_EVALUATED, "ValidatingAdmissionPolicy not evaluated", Severity.WARNING,
             "Part of a ValidatingAdmissionPolicy could not be evaluated here: an expression "
             "calls the authorizer (the API server's, not there offline), its binding names a "
             "policy that is not in the repository, a policy has no binding, or a "
             "namespaceSelector needs a Namespace that is not among the scanned manifests. "
             "The message says which.",
             "Add the missing Namespace, policy or binding; authorizer checks are decided only "
             "in the cluster."),
        Rule(RULE_VAP_ERROR, "ValidatingAdmissionPolicy evaluation stopped", Severity.ERROR,
             "Evaluating a ValidatingAdmissionPolicy binding exceeded the evaluation time or "
             "memory bound (limits in .gitops-checker.yaml); the objects it matches are not "
             "checked.", "Simplify the expressions, or raise the limits."),
        Rule(RULE_EXPIRED, "Risk acceptance expired", Severity.ERROR,
             "A risk acceptance is past its expiry date. It no longer accepts anything: the "
             "findings it covered count again, and the check fails until its owner acts.",
             "Fix the findings, or renew the acceptance with a new expiry date and approval."),
        Rule(RULE_EXPIRING, "Risk acceptance expires soon", Severity.WARNING,
             "A risk acceptance expires within the warning window (acceptances.warnDays, "
             "14 days by default).",
             "Plan the fix, or have the acceptance renewed before it expires."),
        Rule(RULE_STALE, "Stale risk acceptance", Severity.WARNING,
             "A risk acceptance matches no finding: the risk is gone, or the acceptance names "
             "the wrong policy or resource. Stale acceptances hide future findings.",
             "Remove the acceptance, or correct its policy and resources."),
        Rule(RULE_INVALID, "Invalid risk acceptance", Severity.ERROR,
             "An acceptance file cannot be read or does not follow the acceptance schema; its "
             "acceptances were not applied.", "Fix the file at the reported line."),
        Rule(RULE_PENDING, "Risk acceptance pending approval", Severity.WARNING,
             "The acceptance (a file entry or an inline annotation) is new or changed in the "
             "change under review: it is not on the base branch as it is here. Its author "
             "cannot waive their own finding, so it accepts nothing until it has been "
             "reviewed and merged.",
             "Have the acceptance reviewed (CODEOWNERS on the acceptance files) and merged on "
             "its own, or fix the finding."),
        Rule(RULE_INLINE_IGNORED, "Inline acceptance ignored", Severity.WARNING,
             "The repository accepts risks only in acceptance files (acceptances: files-only), "
             "so this annotation accepts nothing.",
             "Move the acceptance into an acceptance file and remove the annotation."),
    )
}


IMAGE_RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("image.mutable-tag", "Image uses a mutable tag", Severity.WARNING,
             "The image has no tag (which means latest) or the tag latest, and no digest. "
             "What runs can change without a commit, and a rollback does not roll back.",
             "Use a versioned tag, or better a digest.", help_uri="docs/images.md"),
        Rule("image.not-pinned", "Image is not pinned by digest", Severity.NOTE,
             "A tag can be moved to another image in the registry; only a digest names "
             "exactly one image.", "Append @sha256:<digest> to the reference.",
             help_uri="docs/images.md"),
        Rule("image.disallowed-registry", "Image from a registry outside the allowlist",
             Severity.ERROR,
             "The image comes from a registry (or repository path) that is not on the "
             "allowlist given with --allowed-registry.",
             "Mirror the image into an allowed registry, or extend the allowlist.",
             help_uri="docs/images.md"),
        Rule("image.outdated", "Image is outdated", Severity.WARNING,
             "A newer version of the same image (same tag shape) is in the registry, or is "
             "used by another workload of the same environment.",
             "Update the tag to the newest version.", help_uri="docs/images.md"),
        Rule("image.behind", "Environment is behind another environment", Severity.WARNING,
             "The same image runs at a newer version in another environment; this stage "
             "has not been promoted yet.", "Promote the newer version to this environment.",
             help_uri="docs/images.md"),
        Rule("image.invalid-reference", "Invalid image reference", Severity.ERROR,
             "The image field is not a valid image reference (a template placeholder that "
             "was never filled, upper-case letters, a bad tag or digest).",
             "Fix the reference.", help_uri="docs/images.md"),
    )
}
BUILTIN_RULES.update(IMAGE_RULES)

from checker.admit import stage as _admit  # noqa: E402

BUILTIN_RULES.update({r.id: r for r in (
    Rule(_admit.RULE_MUTATED, "Object validated as mutated", Severity.NOTE,
         "Gatekeeper mutators in the repository change this object before the cluster "
         "validates it; its policies were evaluated on the mutated object. The message names "
         "each mutator and the fields it changed.",
         "Nothing to do if the mutation is intended; set admission.mutation: false to "
         "validate objects as written (as gator does)."),
    Rule(_admit.RULE_MUTATOR_INVALID, "Mutator not accepted by Gatekeeper", Severity.ERROR,
         "A mutator (Assign, AssignMetadata, ModifySet, AssignImage) is invalid as Gatekeeper "
         "validates it (location syntax, applyTo, pathTests, value): the cluster never runs "
         "it, and it was not applied here.", "Fix the mutator as the message says."),
    Rule(_admit.RULE_MUTATOR_UNSUPPORTED, "Mutator field not supported", Severity.WARNING,
         "A mutator has a field that is not part of Gatekeeper's API (assignIf was removed in "
         "v3.10): the API server drops or rejects it, so the mutator was applied without it.",
         "Remove the field; use pathTests for conditions."),
    Rule(_admit.RULE_MUTATOR_CONFLICT, "Mutators disagree about a schema", Severity.WARNING,
         "Two mutators treat the same field differently (an object and a list, lists keyed "
         "by different fields): Gatekeeper applies neither, and neither was applied here.",
         "Make the mutators' locations agree."),
    Rule(_admit.RULE_MUTATION_ERROR, "Mutation fails", Severity.ERROR,
         "Applying the mutators to this object fails (a location that does not fit the "
         "object, mutators that never converge): the mutating webhook rejects the object.",
         "Fix the mutator or the object."),
    Rule(_admit.RULE_MUTATION_UNDECIDED, "Mutation undecided", Severity.WARNING,
         "Whether a mutator applies to this object depends on a Namespace that is not among "
         "the scanned manifests; the object was validated without that mutation.",
         "Add the Namespace manifest to the scanned paths."),
    Rule(_admit.RULE_MUTATION_EXTERNAL, "Mutation from external data not reproduced",
         Severity.WARNING,
         "A mutator takes its value from an external data provider, which CI does not call: "
         "the object was validated without that mutation, so the cluster's verdict may "
         "differ.", "Check the object against the provider's answers by other means."),
    Rule(_admit.RULE_EXPANSION_INVALID, "ExpansionTemplate not accepted", Severity.ERROR,
         "An ExpansionTemplate is invalid as Gatekeeper validates it, or forms a cycle with "
         "others: the cluster does not use it, and nothing was expanded by it here.",
         "Fix the template as the message says."),
    Rule(_admit.RULE_EXPANSION_ERROR, "Expansion fails", Severity.ERROR,
         "Expanding this workload fails (its template source field is missing, a mutator "
         "fails on the generated object): the validating webhook rejects it.",
         "Fix the workload or the template."),
)})

from checker.drift.rules import DRIFT_RULES  # noqa: E402

BUILTIN_RULES.update(DRIFT_RULES)

# Every built-in rule links to its entry on the rules page (SARIF's helpUri), unless it has a
# page of its own; docs/rules.md is generated from these rules (scripts/gen_rule_docs.py).
RULES_PAGE = "docs/rules.md"
CATEGORY_PAGES = {
    "input": ("Input: what could not be read or checked", "README.md#scan"),
    "policy": ("Policy: templates and constraints that could not be run", "docs/packs.md"),
    "vap": ("ValidatingAdmissionPolicy", "docs/cel.md"),
    "admission": ("Admission: mutation and expansion before validation", "docs/admission.md"),
    "acceptance": ("Risk acceptances", "docs/acceptance.md"),
    "drift": ("Drift", "docs/drift.md"),
    "image": ("Image inventory", "docs/images.md"),
}


def anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lower case, punctuation dropped,
    spaces as hyphens (``### `input.parse-error` `` -> ``inputparse-error``)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


for _rid, _rule in list(BUILTIN_RULES.items()):
    if not _rule.help_uri:
        BUILTIN_RULES[_rid] = replace(_rule, help_uri=f"{RULES_PAGE}#{anchor(_rid)}")


def rules_page(rules: dict[str, Rule]) -> str:
    """docs/rules.md: every built-in rule by category, with severity, meaning and fix."""
    out = ["# Built-in rules", "",
           "Rules the checker itself reports, besides the policies of the packs "
           "([policies/](policies/README.md)) and your repository's own. Each SARIF rule links "
           "here (`helpUri`). Generated from `checker/rules.py` by `scripts/gen_rule_docs.py`; "
           "do not edit by hand.", ""]
    by_category: dict[str, list[Rule]] = {}
    for rule in rules.values():
        by_category.setdefault(rule.id.split(".", 1)[0], []).append(rule)
    unknown = sorted(set(by_category) - set(CATEGORY_PAGES))
    if unknown:
        raise ValueError(f"rule categories without a heading in CATEGORY_PAGES: {unknown}")
    for category, (title, page) in CATEGORY_PAGES.items():
        if category not in by_category:
            continue
        link = page.removeprefix("docs/") if page.startswith("docs/") else f"../{page}"
        out += [f"## {title}", "", f"See also [{page}]({link}).", ""]
        for rule in sorted(by_category[category], key=lambda r: r.id):
            out += [f"### `{rule.id}`", "", f"**{rule.title}** ({rule.severity.label})", ""]
            if rule.description:
                out += [rule.description, ""]
            if rule.help:
                out += [f"Fix: {rule.help}", ""]
    return "\n".join(out).rstrip("\n") + "\n"
