"""Drift: compare the desired state in Git with a live cluster snapshot.

The drift stage of the pipeline (``checker.drift.run``); run it with ``checker.pipeline.drift``
(or ``checker.pipeline.run`` with ``Stages(drift=...)``, as the Action's ``mode: both`` does).
"""
