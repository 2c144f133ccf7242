"""Gatekeeper policies: templates, constraints, matching, the Rego engine and packs."""
