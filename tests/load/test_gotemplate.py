"""ApplicationSet Go templates: ``checker.load.gotemplate`` against Go's own ``text/template``.

Every case without sprig functions is run through the real Go ``text/template``
(``tests/fixtures/gotemplate/oracle.go``, built with the Go toolchain that
``scripts/test.sh`` installs from Debian): our output must be Go's output byte for byte, and
where Go fails ours fails too. A case outside the subset must raise ``Unsupported`` (the
ApplicationSet is then reported as not checked), never give an output. Sprig's and Argo CD's
functions are checked against the results their documentation gives.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from checker.load import gotemplate
from tests.conftest import FIXTURES

ORACLE = FIXTURES / "gotemplate" / "oracle.go"
PARAMS: dict[str, Any] = {
    "name": "Guest Book", "cluster": "prod-eu", "replicas": 3, "ratio": 1.5, "big": 1e21,
    "small": 0.00001, "million": 100000000, "m2": 123456789, "m3": 1234567, "m4": 0.0001,
    "m5": 123456, "m6": -2.5e-7, "m7": 1e20, "on": True, "off": False, "empty": "",
    "none": None, "list": ["a", 2, True], "nothing": [],
    "path": {"path": "apps/web", "basename": "web", "segments": ["apps", "web"]},
    "values": {"env": "prod", "tier": {"name": "gold"}},
}
ERROR = ["missingkey=error"]

# (template, options); "unsupported" cases are listed separately
CASES: list[tuple[str, list[str]]] = [
    ("plain text", []),
    ("{{.name}}-{{ .cluster }}", []),
    ("{{.path.basename}} {{.path.path}}", []),
    ("{{index .path.segments 1}}", []),
    ("{{ index .values \"env\" }}", []),
    ("{{ index .values.tier \"name\" }}", []),
    ("{{.replicas}} {{.ratio}} {{.big}} {{.small}} {{.million}}", []),
    ("{{.on}} {{.off}} {{.empty}}|{{.none}} {{.list}} {{.nothing}} {{.values}}", []),
    ("{{.missing}}", []),
    ("{{.missing}}", ERROR),
    ("{{.values.missing}}", []),
    ("{{.values.missing}}", ERROR),
    ("{{.missing.deeper}}", []),
    ("{{.missing.deeper}}", ERROR),
    ("{{.none.deeper}}", []),
    ("{{index .values \"missing\"}} {{printf \"%v|%d\" .none .missing}}", []),
    ("{{.m2}} {{.m3}} {{.m4}} {{.m5}} {{.m6}} {{.m7}}", []),
    ("{{.name.deeper}}", []),
    ("{{.list.x}}", []),
    ("{{$.name}} {{ $.values.env }}", []),
    ("{{.}}", []),
    ("{{if .on}}yes{{end}}", []),
    ("{{if .off}}yes{{else}}no{{end}}", []),
    ("{{if .empty}}a{{else if .nothing}}b{{else if .list}}c{{else}}d{{end}}", []),
    ("{{if .missing}}a{{else}}b{{end}}", []),
    ("{{if .missing}}a{{else}}b{{end}}", ERROR),
    ("{{with .values}}{{.env}}{{end}}", []),
    ("{{with .values.tier}}{{.name}}{{else}}none{{end}}", []),
    ("{{with .empty}}x{{else}}{{.name}}{{end}}", []),
    ("{{if eq .cluster \"prod-eu\"}}prod{{else}}other{{end}}", []),
    ("{{if eq .cluster \"a\" \"b\" \"prod-eu\"}}one of{{end}}", []),
    ("{{if ne .values.env \"dev\"}}not dev{{end}}", []),
    ("{{eq .replicas 3}}", []),
    ("{{eq .replicas 3.0}}", []),
    ("{{gt .replicas 2.5}} {{lt .ratio 2.0}} {{le 1 2}} {{ge \"b\" \"a\"}}", []),
    ("{{eq .on true}} {{eq .name 3}}", []),
    ("{{and .on .name}} {{and .off .name}} {{or .empty .cluster}} {{or .off .empty}}", []),
    ("{{not .on}} {{not .empty}} {{not .list}}", []),
    ("{{len .name}} {{len .list}} {{len .values}}", []),
    ("{{len .replicas}}", []),
    ("{{print .name 1 2 \"x\" true}}", []),
    ("{{printf \"%s-%s\" .name .cluster}}", []),
    ("{{printf \"%v/%v\" .replicas .list}}", []),
    ("{{printf \"%s\" .missing}}", []),
    ("{{.cluster | printf \"%s-app\"}}", []),
    ("{{ printf \"%s\" (index .path.segments 0) }}", []),
    ("{{ \"quoted \\\"x\\\"\" }} {{ `raw \\n` }} {{ 42 }} {{ -1.5 }} {{ true }}", []),
    ("a  {{- .name -}}  b", []),
    ("a {{- /* a comment */ -}} b", []),
    ("{{/* only a comment */}}", []),
    ("line\n  {{- if .on }}\n  on\n  {{- end }}\n", []),
    ("{{if .on}}unclosed", []),
    ("{{end}}", []),
    ("{{.name | .cluster}}", []),
    ("{{index .list 5}}", []),
    ("{{index .path.segments .replicas}}", []),
    ("{{ (.name) }}", []),
    ("{{ .name) }}", []),
]
UNSUPPORTED: list[str] = [
    "{{range .list}}{{.}}{{end}}",
    "{{$x := .name}}{{$x}}",
    "{{template \"t\"}}",
    "{{ toJson .values }}",
    "{{ slugify .name }}",
    "{{ printf \"%05d\" 3 }}",
    "{{ html .name }}",
    "{{if .on}}" * 60 + "x" + "{{end}}" * 60,
    "{{ " + "(" * 60 + ".name" + ")" * 60 + " }}",
]
SPRIG: list[tuple[str, dict[str, Any], list[str], str]] = [
    # sprig's documented examples, and Argo CD's documentation for its ApplicationSets
    ("{{ .empty | default \"foo\" }}", PARAMS, [], "foo"),
    ("{{ .name | default \"foo\" }}", PARAMS, [], "Guest Book"),
    ("{{ default \"x\" .missing }}", PARAMS, [], "x"),
    ("{{ lower \"HELLO\" }} {{ upper \"hello\" }}", {}, [], "hello HELLO"),
    ("{{ trim \"   hello    \" }}", {}, [], "hello"),
    ("{{ trimPrefix \"-\" \"-hello\" }} {{ trimSuffix \"-\" \"hello-\" }}", {}, [],
     "hello hello"),
    ("{{ \"I Am Henry VIII\" | replace \" \" \"-\" }}", {}, [], "I-Am-Henry-VIII"),
    ("{{ trunc 5 \"hello world\" }}|{{ trunc -5 \"hello world\" }}", {}, [], "hello|world"),
    ("{{ quote \"hello\" }} {{ squote \"hello\" }}", {}, [], "\"hello\" 'hello'"),
    ("{{ contains \"cat\" \"catch\" }} {{ hasPrefix \"cat\" \"catch\" }} "
     "{{ hasSuffix \"cat\" \"catch\" }}", {}, [], "true true false"),
    ("{{ splitList \"$\" \"foo$bar$baz\" | join \"-\" }}", {}, [], "foo-bar-baz"),
    ("{{ .cluster | upper | trunc 4 }}", PARAMS, [], "PROD"),
    ("{{ normalize .name }}", PARAMS, [], "guest-book"),
    ("{{ normalize \"--My_App.v2--\" }}", {}, [], "my-app.v2"),
    ("{{ .path.basename | normalize }}-{{ .values.env }}", PARAMS, ERROR, "web-prod"),
]


def _go() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/go-*/bin/go"))
    return candidates[-1] if candidates else None


@functools.lru_cache(maxsize=1)
def _oracle_binary(build: str) -> str:
    go = _go()
    assert go is not None
    out = Path(build) / "oracle"
    env = {**os.environ, "GOCACHE": str(Path(build) / "cache"), "GOFLAGS": "-mod=mod",
           "GOPATH": str(Path(build) / "gopath"), "GOPROXY": "off", "GO111MODULE": "off"}
    subprocess.run([go, "build", "-o", str(out), str(ORACLE)], check=True, env=env,
                   capture_output=True, timeout=600)
    return str(out)


@pytest.fixture(scope="module")
def go_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    if _go() is None:
        pytest.skip("no Go toolchain (scripts/test.sh installs Debian's golang-go)")
    binary = _oracle_binary(str(tmp_path_factory.mktemp("gotemplate")))
    payload = [{"template": t, "params": PARAMS, "options": o} for t, o in CASES]
    proc = subprocess.run([binary], input=json.dumps(payload), capture_output=True,
                          text=True, check=True, timeout=60)
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    assert len(results) == len(CASES)
    return results


def ours(template: str, params: dict[str, Any], options: list[str]) -> dict[str, Any]:
    try:
        return {"out": gotemplate.render(template, gotemplate.from_json(params), options)}
    except gotemplate.TemplateError:
        return {"error": True}


@pytest.mark.parametrize("number", range(len(CASES)), ids=[t for t, _ in CASES])
def test_same_as_go_text_template(number: int, go_results: list[dict[str, Any]]) -> None:
    template, options = CASES[number]
    assert gotemplate.builtins_only(template)
    assert ours(template, PARAMS, options) == go_results[number]


def test_the_cases_cover_outputs_and_errors(go_results: list[dict[str, Any]]) -> None:
    errors = sum(1 for r in go_results if r.get("error"))
    assert errors >= 10 and len(go_results) - errors >= 35


@pytest.mark.parametrize("template", UNSUPPORTED)
def test_outside_the_subset_is_unsupported_never_an_output(template: str) -> None:
    with pytest.raises(gotemplate.Unsupported):
        gotemplate.render(template, gotemplate.from_json(PARAMS))


@pytest.mark.parametrize(("template", "params", "options", "expected"), SPRIG,
                         ids=[s[0] for s in SPRIG])
def test_sprig_and_argo_functions(template: str, params: dict[str, Any], options: list[str],
                                  expected: str) -> None:
    assert gotemplate.render(template, gotemplate.from_json(params), options) == expected


def test_missing_key_with_default_fails_under_missingkey_error() -> None:
    """Argo CD's docs: with missingkey=error a missing parameter fails even under default."""
    with pytest.raises(gotemplate.TemplateError):
        gotemplate.render("{{ .missing | default \"x\" }}", {}, ERROR)


def test_unknown_option_is_unsupported() -> None:
    with pytest.raises(gotemplate.Unsupported, match="missingkey=zero"):
        gotemplate.render("{{.a}}", {}, ["missingkey=zero"])


def test_hostile_strings_are_linear_and_bounded() -> None:
    import time

    start = time.process_time()
    with pytest.raises(gotemplate.TemplateError):
        gotemplate.render("{{" * 200_000, {})
    assert gotemplate.render("}}" * 200_000, {}) == "}}" * 200_000
    assert time.process_time() - start < 5
