"""What a cluster-wide inventory covers: a light module, so the CLI imports stay fast."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from checker.config import Cluster


@dataclass(frozen=True)
class Scope:
    """A cluster to inventory: its name, environment and manifest paths.

    ``cluster`` is the configured cluster, when there is one: it is then loaded the way
    ``scan`` loads it (Flux Kustomizations followed).
    """

    name: str
    environment: str
    paths: tuple[Path, ...]
    cluster: Cluster | None = None


__all__ = ["Scope"]
