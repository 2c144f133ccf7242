"""The documented examples follow the shipped schemas (docs cannot drift from the code)."""

from __future__ import annotations

import re

import jsonschema
import yaml

from checker.accept import acceptance_schema
from checker.config import schema
from tests.conftest import ROOT

DOCS = ROOT / "docs"


def yaml_blocks(name: str) -> list[object]:
    text = (DOCS / name).read_text(encoding="utf-8")
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)]


def test_configuration_doc_example_is_valid() -> None:
    blocks = yaml_blocks("configuration.md")
    config = next(b for b in blocks if isinstance(b, dict) and "clusters" in b)
    jsonschema.validate(config, schema())
    assert [c["name"] for c in config["clusters"]] == ["staging", "production"]
    tower = next(b for b in blocks if isinstance(b, dict) and b.get("kind") == "Cluster")
    assert tower["apiVersion"] == "securitytower.io/v1alpha1"


def test_acceptance_doc_examples_are_valid() -> None:
    blocks = yaml_blocks("acceptance.md")
    entry_file = next(b for b in blocks if isinstance(b, dict)
                      and isinstance(b.get("acceptances"), list))
    jsonschema.validate(entry_file, acceptance_schema())
    shorthand = next(b for b in blocks if b == {"acceptances": "files-only"})
    jsonschema.validate(shorthand, schema())
