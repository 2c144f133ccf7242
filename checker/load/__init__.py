"""Load the desired state: YAML files, ``kind: List`` objects and Kustomize directories."""

from checker.load.loader import load_paths
from checker.load.objects import LoadResult

__all__ = ["LoadResult", "load_paths"]
