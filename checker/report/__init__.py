"""Renderers: one module per format, each a pure ``render(report) -> str``."""

from collections.abc import Callable, Iterable, Sequence

from checker.model import Report
from checker.parallel import available_cpus, fork_map
from checker.report import json_format, junit, markdown, sarif, text

Renderer = Callable[[Report], str]

RENDERERS: dict[str, Renderer] = {
    "text": text.render,
    "json": json_format.render,
    "sarif": sarif.render,
    "junit": junit.render,
    "markdown": markdown.render,
}



# Relative cost of each format per finding (measured on 60,000 findings), to split the work.
COST = {"json": 8, "junit": 7, "sarif": 4, "markdown": 3, "text": 3}
PARALLEL_FINDINGS = 5_000  # below this, forking costs more than it saves


def split(formats: Sequence[str], parts: int) -> list[list[str]]:
    """``formats`` in at most ``parts`` groups of about equal cost (largest first)."""
    groups: list[list[str]] = [[] for _ in range(max(1, min(parts, len(formats))))]
    loads = [0] * len(groups)
    for fmt in sorted(formats, key=lambda f: (-COST.get(f, 1), f)):
        least = loads.index(min(loads))
        groups[least].append(fmt)
        loads[least] += COST.get(fmt, 1)
    return [g for g in groups if g]


class Rendered:
    """The formats of one report, each rendered on first use and then reused."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self._done: dict[str, str] = {}

    def __getitem__(self, fmt: str) -> str:
        if fmt not in self._done:
            self._done[fmt] = RENDERERS[fmt](self.report)
        return self._done[fmt]

    def prepare(self, formats: Iterable[str]) -> None:
        """Render ``formats`` now; large reports over several processes at once.

        Each renderer is pure, so rendering in a forked process gives the same text.
        """
        todo = sorted(set(formats) - set(self._done))
        parts = available_cpus() if len(self.report.findings) >= PARALLEL_FINDINGS else 1
        groups = split(todo, parts)
        if len(groups) <= 1:
            for fmt in todo:
                self[fmt]
            return

        def render(group: list[str]) -> dict[str, str]:
            return {fmt: RENDERERS[fmt](self.report) for fmt in group}

        for done in fork_map(render, groups):
            self._done.update(done)


__all__ = ["RENDERERS", "Rendered", "Renderer"]
