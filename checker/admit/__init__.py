"""Admission as the cluster runs it, before validation: Gatekeeper mutation and expansion."""
