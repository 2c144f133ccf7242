"""checker.policy.semantics finds exactly the negations that OPA and regorus read differently.

Each case is a rule body with one ``not`` expression over an operand that is undefined in the
input; OPA (the oracle) and regorus evaluate it, and the detector must flag the case exactly
when the two differ. The shipped packs must have no such expression at all.
"""

from __future__ import annotations

import json

import pytest
import regorus

from checker.policy import opa
from checker.policy.packs import load_catalog, template_of
from checker.policy.semantics import hazards

CASES = {
    "call": 'not startswith(input.missing, "x")',
    "nested_call": 'not startswith(lower(input.missing), "x")',
    "eq": 'not input.missing == "x"',
    "neq": 'not input.missing != "x"',
    "member": 'not "a" in input.missing',
    "member_value": 'not input.missing in ["a"]',
    "ref": "not input.missing",
    "ref_field": "not input.missing.x",
    "dynamic_index": "not input.arr[input.missing]",
    "eq_dynamic_index": "not input.arr[input.missing] == 1",
    "eq_call": 'not lower(input.missing) == "x"',
    "eq_array": "not input.missing == [1]",
    "user_function": "not f(input.missing)",
    "count": "not count(input.missing) > 0",
    "greater": "not input.missing > 1",
    "arith": "not input.missing + 1 == 2",
    "object_get": 'not object.get(input, ["a", "b"], "") in {"x"}',
    "undefined_rule_arg": 'not startswith(undefined_rule, "x")',
    "undefined_rule_eq": "not undefined_rule == 1",
    "constant_rule": 'not "x" in constant',
    "local": 'x := "k"; not input.obj[x] == 1',
    "comprehension": 'not {"a"} == {x | x := input.missing[_]}',
    "defined_call": 'not startswith(input.s, "x")',
    "is_object_missing": "not is_object(input.missing)",
    "is_object_get": "not is_object(object.get(input, \"missing\", null))",
}
HEAD = ('package t\n\nimport rego.v1\n\nf(x) if x == 1\n\nundefined_rule := input.missing\n\n'
        'constant := {"a"}\n\n')
INPUT = {"arr": [1], "s": "abc", "obj": {}}


def _module() -> str:
    return HEAD + "".join(f"r_{name} if {{ {body} }}\n\n" for name, body in CASES.items())


def _regorus(name: str) -> bool:
    engine = regorus.Engine()
    engine.add_policy("t.rego", _module())
    engine.set_input_json(json.dumps(INPUT))
    return json.loads(engine.eval_rule_as_json(f"data.t.r_{name}") or "null") is True


def _opa(name: str) -> bool:
    from opa_bindings import OpaEngine, OpaUndefinedError

    engine = OpaEngine()
    engine.add_policy("t.rego", _module())
    try:
        return engine.eval_document(f"t.r_{name}", INPUT) is True
    except OpaUndefinedError:
        return False


@pytest.mark.skipif(not opa.available(), reason="the OPA binding is not installed")
def test_detector_flags_exactly_the_differences() -> None:
    """No difference is missed; the only extra flag is the conservative one.

    The detector cannot know that a reference is defined in the data (``input.s`` is), so a
    negated call over any reference is flagged.
    """
    source = _module()
    flagged = {h.text for h in hazards(source, True)}
    missed, extra = [], []
    differing = 0
    for name, body in CASES.items():
        differs = _opa(name) != _regorus(name)
        differing += differs
        negation = body.split("; ")[-1]
        if differs and negation not in flagged:
            missed.append(name)
        if not differs and negation in flagged:
            extra.append(name)
    assert missed == []
    assert extra == ["defined_call"]
    assert differing >= 12  # the grid does exercise the difference


def test_detector_reads_v0_and_reports_lines() -> None:
    source = ('package t\n\nimport future.keywords.in\n\nviolation[{"msg": "m"}] {\n  c := input.review.object\n'
              '  not "ALL" in c.drop\n}\n')
    assert [(h.line, h.text) for h in hazards(source, False)] == [(7, 'not "ALL" in c.drop')]


def test_shipped_packs_have_no_negation_that_opa_reads_differently() -> None:
    found = []
    for pid, pdef in sorted(load_catalog().policies.items()):
        template = template_of(pdef)
        for module in (template.rego, *template.libs):
            found += [f"{pid}:{h.line}: {h.text}" for h in hazards(module, template.rego_v1)]
    assert found == []
