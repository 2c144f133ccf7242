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

__all__ = ["RENDERERS", "Renderer"]
