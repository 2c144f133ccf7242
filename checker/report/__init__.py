"""Renderers: one module per format, each a pure ``render(report) -> str``."""

from collections.abc import Callable

from checker.model import Report
from checker.report import json_format, junit, markdown, sarif, text

Renderer = Callable[[Report], str]

RENDERERS: dict[str, Renderer] = {
    "text": text.render,
    "json": json_format.render,
    "sarif": sarif.render,
    "junit": junit.render,
    "markdown": markdown.render,
}



class Rendered:
    """The formats of one report, each rendered on first use and then reused."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self._done: dict[str, str] = {}

    def __getitem__(self, fmt: str) -> str:
        if fmt not in self._done:
            self._done[fmt] = RENDERERS[fmt](self.report)
        return self._done[fmt]


__all__ = ["RENDERERS", "Rendered", "Renderer"]
