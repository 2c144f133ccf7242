"""action.yml: valid action metadata, and in step with the entrypoint and the docs.

Two schemas check it. The SchemaStore ``github-action`` schema (the one editors use), as
vendored by the check-jsonschema package, says the file is valid action metadata at all;
``STRICT`` below adds this project's rules: a container action built from the Dockerfile,
every input documented with a default, every output documented, branding present.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from checker.action import inputs as action_inputs
from checker.action import outputs as action_outputs
from tests.conftest import ROOT

REPO = ROOT
DOC = REPO / "docs" / "github-action.md"

STRICT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["name", "description", "author", "branding", "inputs", "outputs", "runs"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string", "minLength": 20, "maxLength": 200},
        "author": {"type": "string", "minLength": 1},
        "branding": {
            "type": "object", "required": ["icon", "color"], "additionalProperties": False,
            "properties": {"icon": {"type": "string"}, "color": {"type": "string"}},
        },
        "inputs": {
            "type": "object", "minProperties": 1,
            "propertyNames": {"pattern": "^[a-z][a-z0-9-]*$"},
            "additionalProperties": {
                "type": "object", "required": ["description", "required", "default"],
                "additionalProperties": False,
                "properties": {
                    "description": {"type": "string", "minLength": 10},
                    "required": {"const": False},
                    "default": {"type": "string"},
                },
            },
        },
        "outputs": {
            "type": "object", "minProperties": 1,
            "propertyNames": {"pattern": "^[a-z][a-z0-9-]*$"},
            "additionalProperties": {
                "type": "object", "required": ["description"], "additionalProperties": False,
                "properties": {"description": {"type": "string", "minLength": 10}},
            },
        },
        "runs": {
            "type": "object", "required": ["using", "image"], "additionalProperties": False,
            "properties": {"using": {"const": "docker"}, "image": {"const": "Dockerfile"}},
        },
    },
}


def metadata() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def schemastore(name: str) -> dict[str, Any]:
    """A SchemaStore schema as vendored by check-jsonschema (no network)."""
    resource = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / name
    schema = json.loads(resource.read_text(encoding="utf-8"))
    assert isinstance(schema, dict)
    return schema


def errors(schema: dict[str, Any], data: Any) -> list[str]:
    cls = jsonschema.validators.validator_for(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in cls(schema).iter_errors(data)]


def test_action_yml_is_valid_schemastore_action_metadata() -> None:
    assert errors(schemastore("github-actions.json"), metadata()) == []


def test_action_yml_follows_the_strict_project_schema() -> None:
    assert errors(STRICT, metadata()) == []


@pytest.mark.parametrize("breakage", [
    lambda m: m["runs"].__setitem__("using", "dockr"),
    lambda m: m.__delitem__("description"),
    lambda m: m["inputs"]["paths"].__delitem__("description"),
])
def test_both_schemas_reject_broken_metadata(breakage: Any) -> None:
    broken = copy.deepcopy(metadata())
    breakage(broken)
    assert errors(schemastore("github-actions.json"), broken)
    assert errors(STRICT, broken)


def test_strict_schema_rejects_undocumented_outputs_and_inputs_without_default() -> None:
    broken = copy.deepcopy(metadata())
    broken["outputs"]["result"] = {}
    del broken["inputs"]["mode"]["default"]
    found = errors(STRICT, broken)
    assert any(e.startswith("outputs/result") for e in found)
    assert any(e.startswith("inputs/mode") for e in found)


def test_inputs_and_defaults_match_the_entrypoint() -> None:
    """The prebuilt-image path gets no defaults from action.yml: both must agree."""
    inputs = metadata()["inputs"]
    assert {name: spec["default"] for name, spec in inputs.items()} == action_inputs.DEFAULTS


def test_outputs_match_the_entrypoint() -> None:
    assert list(metadata()["outputs"]) == list(action_outputs.OUTPUTS)


def test_branding_uses_an_allowed_icon_and_color() -> None:
    branding = metadata()["branding"]
    schema = schemastore("github-actions.json")
    text = json.dumps(schema)
    assert f'"{branding["icon"]}"' in text
    assert branding["color"] in {"white", "black", "yellow", "blue", "green", "orange", "red",
                                 "purple", "gray-dark"}


def test_the_runner_variable_names_for_every_input() -> None:
    names = {action_inputs.input_variable(n) for n in metadata()["inputs"]}
    assert "INPUT_FAIL-ON" in names and "INPUT_WORKING-DIRECTORY" in names
    assert all(re.fullmatch(r"INPUT_[A-Z][A-Z0-9-]*", n) for n in names)


def test_no_input_is_interpolated_into_a_shell() -> None:
    """A container action without args/env/entrypoint overrides passes inputs as env only."""
    runs = metadata()["runs"]
    assert set(runs) == {"using", "image"}
    assert "${{" not in (REPO / "action.yml").read_text(encoding="utf-8")


# -- docs -------------------------------------------------------------------------------


def test_docs_document_every_input_and_output() -> None:
    text = DOC.read_text(encoding="utf-8")
    meta = metadata()
    for name, spec in meta["inputs"].items():
        default = f"`{spec['default']}`" if spec["default"] else "(empty)"
        assert re.search(rf"^\| `{re.escape(name)}` \| {re.escape(default)} \|", text, re.M), name
    for name in meta["outputs"]:
        assert re.search(rf"^\| `{re.escape(name)}` \|", text, re.M), name


@pytest.mark.parametrize("example", ["gitops-checker.yml", "gitops-drift.yml"])
def test_docs_quote_the_example_workflows_verbatim(example: str) -> None:
    """The workflow to copy in the docs is the linted file, byte for byte."""
    workflow = (REPO / "examples" / "workflows" / example).read_text(encoding="utf-8")
    blocks = re.findall(r"^```yaml\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.M | re.S)
    assert workflow in blocks


def test_report_inputs_and_outputs_follow_the_renderer_registry() -> None:
    """Each file format of ``checker.report.FORMATS`` is a ``<format>-file`` input with the
    registry's default and a ``<format>-file`` output; no other ``*-file`` input or output."""
    from checker.report import FILE_FORMATS, FORMATS

    data = metadata()
    file_inputs = {n: s["default"] for n, s in data["inputs"].items() if n.endswith("-file")}
    assert file_inputs == {f"{name}-file": FORMATS[name].action_file for name in FILE_FORMATS}
    file_outputs = [n for n in data["outputs"] if n.endswith("-file")]
    assert file_outputs == [f"{name}-file" for name in FILE_FORMATS]
    assert {name: f"{name}-file" for name in FILE_FORMATS} == action_inputs.FILE_INPUTS
