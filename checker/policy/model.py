"""A policy ready to evaluate: template + constraint + the rule metadata reports show."""

from __future__ import annotations

from dataclasses import dataclass

from checker.model import Rule, Severity
from checker.policy.gatekeeper import Constraint, Template


@dataclass(frozen=True)
class Policy:
    """One constraint of one template, with its rule (id, title, controls, severity)."""

    template: Template
    constraint: Constraint
    rule: Rule
    severity: Severity
    source: str  # "pack:<name>" or "repository"
