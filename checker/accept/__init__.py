"""Risk acceptances: justified, owned, expiring exceptions to a policy.

Two sources:

* acceptance files in the repository (``.gitops-checker/acceptances/*.yaml`` by default, so
  CODEOWNERS can guard them), validated with ``checker/schemas/risk-acceptance.schema.json``;
* annotations on the object, its pod template or its Namespace:
  ``securitytower.io/policy.exclusion.<lower-cased constraint kind>: "<reason>"`` (the form
  Syncier Security Tower users already have) and ``gitops-checker.io/accept.<policy>: "<reason>"``
  (``<policy>`` is a rule id or a lower-cased constraint kind), with optional
  ``gitops-checker.io/accept-owner`` and ``gitops-checker.io/accept-expires`` on the same object.

Acceptances only take findings out of the failing set; the findings stay in the report with a
``Suppression``. An expired acceptance suppresses nothing and fails the check naming its owner;
one expiring within the warning window warns; one that matches no finding is stale. The date
is passed in (``today``): nothing here reads the clock.

The package: ``model`` (acceptances and their rule ids), ``load`` (files and annotations),
``match`` (``apply``: which acceptance accepts which finding), ``approval`` (four eyes,
``BaseApproval``) and ``gatekeeper`` (export into Constraints). Every public name is
importable from ``checker.accept`` itself.
"""

from checker.accept.approval import BaseApproval
from checker.accept.gatekeeper import to_gatekeeper_exclusions
from checker.accept.load import acceptance_schema, inline_acceptances, load_acceptances
from checker.accept.match import apply, categories
from checker.accept.model import (
    ACCEPTABLE_CATEGORIES,
    NOT_ACCEPTABLE,
    OWN_EXPIRES,
    OWN_OWNER,
    OWN_PREFIX,
    RULE_EXPIRED,
    RULE_EXPIRING,
    RULE_INLINE_IGNORED,
    RULE_INVALID,
    RULE_PENDING,
    RULE_STALE,
    ST_PREFIX,
    Acceptance,
    Outcome,
    Selector,
)

__all__ = [
    "ACCEPTABLE_CATEGORIES", "NOT_ACCEPTABLE", "OWN_EXPIRES", "OWN_OWNER", "OWN_PREFIX",
    "RULE_EXPIRED", "RULE_EXPIRING", "RULE_INLINE_IGNORED", "RULE_INVALID", "RULE_PENDING",
    "RULE_STALE", "ST_PREFIX", "Acceptance", "BaseApproval", "Outcome", "Selector",
    "acceptance_schema", "apply", "categories", "inline_acceptances", "load_acceptances",
    "to_gatekeeper_exclusions",
]
