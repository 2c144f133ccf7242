"""Drift: compare the desired state in Git with a live cluster snapshot."""
