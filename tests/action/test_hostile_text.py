"""Hostile manifest text through every medium the Action writes.

A ConfigMap annotation that a repository policy quotes into its message, and a file name of
the pull request, carry Markdown, HTML, mentions, a javascript link, workflow commands, an XML
CDATA end and JSON quotes. Each medium must show them as text: the annotation reads back
whole as the runner parses it, the job summary and the pull-request comment render inert in
GitHub's cmark-gfm, and JUnit (junitparser) and SARIF (JSON) hold the message unchanged.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import junitparser

from tests.action.test_comment import FakeGitHub
from tests.action.test_entrypoint import INJECTION_POLICY, run_action
from tests.action.test_workflow_commands import runner_parse
from tests.report.test_markdown_escape import SUMMARY_TAGS, render

HOSTILE = ("</table><img src=x onerror=alert(1)> @acme/admins [x](javascript:alert(1)) "
           "https://evil.example #12 **b** | c ]]> \\\" %0A ::error file=evil.yaml::pwned")
FILE = "apps/<img src=x> @team [y](javascript:alert(1)) #12.yaml"
BASE = "https://github.com/acme/platform/blob/0123456789abcdef0123456789abcdef01234567/"


def test_hostile_text_is_inert_in_every_medium(tmp_path: Path) -> None:
    ws = tmp_path / "workspace"
    (ws / "policies").mkdir(parents=True)
    (ws / "policies/echo.yaml").write_text(INJECTION_POLICY, encoding="utf-8")
    (ws / "apps").mkdir()
    (ws / FILE).write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: \"@team\"\n"
        f"  annotations:\n    note: {json.dumps(HOSTILE)}\n", encoding="utf-8")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    github = FakeGitHub()
    try:
        run = run_action(ws, {"policies": "policies", "packs": "none", "json-file": "r.json",
                              "comment": "true", "github-token": "t",
                              "acceptance-base": "none"},
                         {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event),
                          "GITHUB_API_URL": github.url})
    finally:
        github.server.shutdown()
    assert run.code == 1, run.stdout[-3000:]
    message = f"note is {HOSTILE}"

    # workflow commands: one annotation, read back whole, and nothing else the runner obeys
    lines = [line for line in run.stdout.splitlines() if line.startswith("::")]
    stop = next(i for i, line in enumerate(lines) if line.startswith("::stop-commands::"))
    commands = [runner_parse(line) for line in lines[:stop]]
    assert len(commands) == 1 and commands[0] is not None
    name, props, data = commands[0]
    assert name == "error" and props["file"] == FILE
    assert data == f"{message} (ConfigMap @team/x)"

    # the job summary and the comment: only our elements, links only to the commit
    for markdown in (run.summary, github.comments[0]["body"]):
        parsed = render(markdown)
        tags = {tag for tag, _ in parsed.tags}
        assert tags <= SUMMARY_TAGS | {"!--"}, tags - SUMMARY_TAGS
        hrefs = [attrs.get("href") or "" for tag, attrs in parsed.tags if tag == "a"]
        assert all(h.startswith(BASE) for h in hrefs), hrefs
        plain = "".join(parsed.plain)
        assert "@acme" not in plain and "@team" not in plain and "#12" not in plain
        shown = "".join(parsed.text).replace("\u2060", "")
        assert "</table><img src=x onerror=alert(1)> @acme/admins [x](javascript:alert(1))" in shown

    # JUnit: the message as the failure's text, the XML well-formed
    junit = junitparser.JUnitXml.fromfile(str(ws / run.outputs["junit-file"]))
    texts = [str(result.message) + str(result.text or "") for suite in junit for case in suite
             for result in case.result]
    assert any(HOSTILE in text for text in texts), texts

    # SARIF and JSON: the message unchanged
    sarif = json.loads((ws / run.outputs["sarif-file"]).read_text(encoding="utf-8"))
    results = sarif["runs"][0]["results"]
    assert [r["message"]["text"] for r in results] == [f"{message} (ConfigMap @team/x)"]
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == FILE
    report = json.loads((ws / "r.json").read_text(encoding="utf-8"))
    assert [f["message"] for f in report["findings"]] == [message]
    shutil.rmtree(ws)
