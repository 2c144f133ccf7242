"""The sticky pull-request comment, against a local server that plays GitHub's REST API.

The server records every request, so the tests assert the calls themselves: list the pull
request's comments, then create one (first run) or update ours in place (later runs).
"""

from __future__ import annotations

import io
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from checker.action import comment
from checker.model import Finding, Report, Severity, SourceLocation


class FakeGitHub:
    """Issue comments of one pull request, as GitHub's API serves them (paginated by 100)."""

    def __init__(self) -> None:
        self.comments: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, dict[str, Any] | None, dict[str, str]]] = []
        self.status = 200
        self.next_id = 1000
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, code: int, value: Any) -> None:
                raw = json.dumps(value).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _record(self) -> dict[str, Any] | None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length)) if length else None
                fake.requests.append((self.command, self.path, payload,
                                      {k.lower(): v for k, v in self.headers.items()}))
                return payload

            def do_GET(self) -> None:
                self._record()
                if fake.status != 200:
                    self._answer(fake.status, {"message": "Resource not accessible"})
                    return
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                page = int(query.get("page", ["1"])[0])
                self._answer(200, fake.comments[(page - 1) * 100:page * 100])

            def do_POST(self) -> None:
                payload = self._record() or {}
                fake.next_id += 1
                made = {"id": fake.next_id, "body": payload["body"],
                        "user": {"login": "github-actions[bot]", "type": "Bot"}}
                fake.comments.append(made)
                self._answer(201, made)

            def do_PATCH(self) -> None:
                payload = self._record() or {}
                number = int(self.path.rsplit("/", 1)[1])
                for item in fake.comments:
                    if item["id"] == number:
                        item["body"] = payload["body"]
                        self._answer(200, item)
                        return
                self._answer(404, {"message": "Not Found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    yield fake
    fake.server.shutdown()


def environ(github: FakeGitHub, tmp_path: Path, event: str = "pull_request") -> dict[str, str]:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": "abc"}}}))
    return {"GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(path),
            "GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": "acme/fleet"}


def report(message: str = "container app must not be privileged", n: int = 1) -> Report:
    findings = tuple(
        Finding("pss-privileged", "policy", Severity.ERROR, message,
                SourceLocation(f"apps/p{i}.yaml", 9), resource=f"Pod apps/p{i}")
        for i in range(n))
    return Report(findings=findings, rules={}, resources_checked=n, files_checked=n)


def test_first_run_creates_the_comment_later_runs_update_it(github: FakeGitHub,
                                                            tmp_path: Path) -> None:
    env = environ(github, tmp_path)
    log = io.StringIO()
    comment.post(report(), env, "ghs_token", "gitops-checker", log)
    comment.post(report("fixed?"), env, "ghs_token", "gitops-checker", log)
    calls = [(method, path.split("?")[0]) for method, path, _payload, _h in github.requests]
    assert calls == [("GET", "/repos/acme/fleet/issues/7/comments"),
                     ("POST", "/repos/acme/fleet/issues/7/comments"),
                     ("GET", "/repos/acme/fleet/issues/7/comments"),
                     ("PATCH", "/repos/acme/fleet/issues/comments/1001")]
    assert len(github.comments) == 1 and "fixed?" in github.comments[0]["body"]
    assert github.comments[0]["body"].startswith("<!-- gitops-checker-comment:gitops-checker -->")
    headers = github.requests[1][3]
    assert headers["authorization"] == "Bearer ghs_token"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert log.getvalue().splitlines() == ["gitops-checker: pull-request comment created (id 1001)",
                                           "gitops-checker: pull-request comment updated (id 1001)"]
    assert "ghs_token" not in log.getvalue()


def test_ours_is_found_on_a_later_page_and_a_users_copy_is_not_edited(
        github: FakeGitHub, tmp_path: Path) -> None:
    mark = comment.marker("gitops-checker")
    github.comments = [{"id": i, "body": "lgtm", "user": {"type": "User"}} for i in range(150)]
    github.comments.insert(20, {"id": 500, "body": mark + " forged", "user": {"type": "User"}})
    github.comments.append({"id": 900, "body": mark + "\nold", "user": {"type": "Bot"}})
    comment.post(report(), environ(github, tmp_path), "t", "gitops-checker", io.StringIO())
    methods = [(m, p) for m, p, _pl, _h in github.requests]
    assert methods[-1] == ("PATCH", "/repos/acme/fleet/issues/comments/900")
    assert [p.rsplit("page=", 1)[1] for m, p in methods if m == "GET"] == ["1", "2"]
    assert next(c for c in github.comments if c["id"] == 500)["body"] == mark + " forged"


def test_each_sarif_category_keeps_its_own_comment(github: FakeGitHub, tmp_path: Path) -> None:
    env = environ(github, tmp_path)
    comment.post(report(), env, "t", "prod", io.StringIO())
    comment.post(report(), env, "t", "staging", io.StringIO())
    assert [c["body"].splitlines()[0] for c in github.comments] == [
        comment.marker("prod"), comment.marker("staging")]


def test_repository_text_cannot_mention_link_or_inject_markup(github: FakeGitHub,
                                                               tmp_path: Path) -> None:
    hostile = "@acme/admins see #12 </table><img src=x onerror=alert(1)> **bold** | [x](y)"
    comment.post(report(hostile), environ(github, tmp_path), "t", "gitops-checker",
                 io.StringIO())
    text = github.comments[0]["body"]
    assert "@acme" not in text and "@\u2060acme" in text
    assert "#12" not in text and "<img" not in text and "</table>" not in text
    assert "&lt;img" in text and "\\*\\*bold\\*\\*" in text and "\\| \\[x\\](y)" in text


def test_the_body_stays_within_githubs_limit_and_says_what_did_not_fit() -> None:
    body = comment.body(report("x" * 3000, n=400), "gitops-checker")
    assert len(body) <= comment.MAX_BODY
    rows = [line for line in body.splitlines() if line.startswith("| 🔴")]
    assert 0 < len(rows) <= comment.MAX_ROWS
    assert f"and {400 - len(rows)} more" in body


def test_a_missing_permission_is_a_warning_not_a_failure(github: FakeGitHub,
                                                         tmp_path: Path) -> None:
    github.status = 403
    line = comment.post(report(), environ(github, tmp_path), "t", "gitops-checker",
                        io.StringIO())
    assert line.startswith("::warning") and "HTTP 403" in line
    assert "pull-requests: write" in line and github.comments == []


@pytest.mark.parametrize(("event", "token", "why"), [
    ("push", "t", "not a pull_request event"), ("pull_request", "", "no github-token")])
def test_nothing_is_sent_outside_a_pull_request_or_without_a_token(
        github: FakeGitHub, tmp_path: Path, event: str, token: str, why: str) -> None:
    line = comment.post(report(), environ(github, tmp_path, event), token, "gitops-checker",
                        io.StringIO())
    assert why in line and github.requests == []


def test_an_api_url_that_is_not_https_is_refused(tmp_path: Path) -> None:
    env = {**environ(FakeGitHub(), tmp_path), "GITHUB_API_URL": "http://evil.example"}
    assert comment.target(env) == "GITHUB_REPOSITORY or GITHUB_API_URL is not usable"


def test_the_action_posts_its_comment_when_asked(github: FakeGitHub, tmp_path: Path) -> None:
    """End to end: the entrypoint with ``comment: true`` creates one comment whose counts are
    the run's outputs; without the input nothing is sent."""
    from tests.action.test_entrypoint import run_action, workspace

    ws = workspace(tmp_path)
    event = {k: v for k, v in environ(github, tmp_path).items() if k != "GITHUB_REPOSITORY"}
    run = run_action(ws, {"comment": "true", "github-token": "ghs_e2e", "fail-on": "never",
                          "acceptance-base": "none"},
                     event)
    assert run.code == 0, run.stdout + run.stderr
    (made,) = github.comments
    assert f"{run.outputs['error-count']} error" in made["body"]
    # each finding links to its line at the commit the run checked
    assert "](https://github.com/acme/platform/blob/0123456789abcdef" in made["body"]
    assert "ghs_e2e" not in run.stdout + run.stderr
    sent = len(github.requests)
    run_action(workspace(tmp_path / "again"), {"fail-on": "never", "acceptance-base": "none"},
               event)
    assert len(github.requests) == sent
