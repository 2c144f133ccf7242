"""``admission`` in the repository config: what happens to objects before validation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AdmissionSettings:
    """Whether mutators run before validation (``mutation``), whether workloads are expanded
    (``expansion``), and folders of ExpansionTemplates kept outside the scanned paths."""

    mutation: bool = True
    expansion: bool = True
    templates: tuple[Path, ...] = ()
