"""The GitHub Action: :mod:`~checker.action.inputs` (``INPUT_*`` -> options),
:mod:`~checker.action.outputs` (annotations, outputs, summary, files) and
:mod:`~checker.action.entrypoint` (runs the checks; the ``gitops-checker-action`` command).
"""

from checker.action.entrypoint import main

__all__ = ["main"]
