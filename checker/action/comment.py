"""One sticky pull-request comment with the result, for repositories without code scanning.

Code scanning (SARIF upload, the "require code scanning results" rule) needs GitHub Advanced
Security on private repositories. Without it, reviewers still see the result in one comment on
the pull request: created on the first run, then updated in place on every later run (found
by a hidden marker that names the SARIF category, so several scans keep one comment each).

Only the runner's trusted environment decides where the request goes (``GITHUB_API_URL``,
``GITHUB_REPOSITORY``, the event file); the token is sent only in the ``Authorization`` header
of requests to that API, never logged, and redirects are not followed (a redirect could carry
the header elsewhere). Every text from the repository is escaped for Markdown and HTML and
cannot mention users or teams. A failure to post is a warning in the log, never a change of
the check's verdict.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from checker.model import Finding, ImpactEntry, Report
from checker.report import impact as impact_section
from checker.report.common import (
    coverage_summary,
    markdown_link,
    markdown_text,
    most_severe,
    severity_counts,
)

MAX_BODY = 65_536  # GitHub's limit for a comment body, in characters
BUDGET = 60_000    # what the table may use, leaving room for the head and the tail
MAX_ROWS = 50
IMPACT_ROWS = 30   # policy-change impact rows (the JSON report holds them all)
MAX_PAGES = 30     # comments read looking for ours: 3,000
TIMEOUT_SECONDS = 30
ICON = {"error": "🔴", "warning": "🟠", "note": "🔵"}


class CommentError(Exception):
    """The comment could not be read or written; the message says why (no secret in it)."""


def text(value: str) -> str:
    """``value`` as literal text in GitHub Markdown: no markup, no HTML, no link, no mention.

    The job summary's escape (:func:`checker.report.common.markdown_text`): Markdown
    punctuation backslash-escaped, ``<``, ``>`` and ``&`` as entities, line breaks as spaces,
    and a word joiner after ``@`` and ``#`` so ``@team`` notifies nobody and ``#12`` links no
    issue.
    """
    return markdown_text(value)


def marker(category: str) -> str:
    """The hidden line that identifies this scan's comment."""
    safe = "".join(c if c.isalnum() or c in "-_./" else "_" for c in category) or "default"
    return f"<!-- gitops-checker-comment:{safe} -->"


def _where(f: Finding, link_base: str) -> str:
    label = f"{f.location.path}:{f.location.line}"
    if not link_base:
        return text(label)
    return markdown_link(label, link_base, f.location.path, f.location.line)


def _where_entry(e: ImpactEntry, link_base: str) -> str:
    label = f"{e.location.path}:{e.location.line}"
    if not link_base:
        return text(label)
    return markdown_link(label, link_base, e.location.path, e.location.line)


def body(report: Report, category: str) -> str:
    """The comment: verdict, counts, the most severe findings, what did not fit."""
    counts = severity_counts(report.active)
    failing = bool(report.errors) or counts.get("error", 0) > 0
    head = [marker(category),
            f"### gitops-checker{': ' + text(category) if category else ''} "
            f"{'❌' if failing else '✅'}",
            "",
            f"{report.resources_checked} resources in {report.files_checked} files checked: "
            + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("error", "warning", "note"))
            + (f", {len(report.suppressed)} accepted" if report.suppressed else "")]
    impact = impact_section.markdown(report, text, lambda e: _where_entry(e, report.link_base),
                                     heading="####", rows=IMPACT_ROWS)
    if impact:  # the policy change's what-if leads: it is what the change does
        head += ["", *impact[:-1]]
    if report.coverage:
        head.append("")
        head.append(text(coverage_summary(report.coverage)))
    for problem in report.errors:
        head.append(f"- ⛔ {text(problem)}")
    active = list(report.active)
    rows: list[str] = []
    used = sum(len(line) + 1 for line in head)  # the impact is in the head: it counts too
    for f in most_severe(active, MAX_ROWS):
        row = (f"| {ICON.get(f.severity.label, '')} {f.severity.label} | {text(f.rule_id)} | "
               f"{text(f.resource or '')} | {text(f.message)} | {_where(f, report.link_base)} |")
        if used + len(row) > BUDGET:
            break
        rows.append(row)
        used += len(row) + 1
    lines = list(head)
    if rows:
        lines += ["", "| Severity | Rule | Resource | Message | Where |",
                  "| --- | --- | --- | --- | --- |", *rows]
    left = len(active) - len(rows)
    if left > 0:
        lines += ["", f"… and {left} more: see the job summary and the report files of this run."]
    out = "\n".join(lines) + "\n"
    return out if len(out) <= MAX_BODY else out[:MAX_BODY - 2] + "…\n"


@dataclass(frozen=True)
class Target:
    """Where the comment goes: the API, the repository and the pull request."""

    api: str
    repository: str
    number: int


def target(environ: Mapping[str, str]) -> Target | str:
    """The pull request of this run, or why there is none."""
    if environ.get("GITHUB_EVENT_NAME") not in ("pull_request", "pull_request_target"):
        return "not a pull_request event"
    try:
        with open(environ["GITHUB_EVENT_PATH"], encoding="utf-8") as handle:
            event = json.load(handle)
        number = int(event["pull_request"]["number"])
    except (KeyError, OSError, ValueError, TypeError):
        return "the event file names no pull request"
    api = environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    repository = environ.get("GITHUB_REPOSITORY", "")
    if repository.count("/") != 1 or not api.startswith(("https://", "http://127.0.0.1")):
        return "GITHUB_REPOSITORY or GITHUB_API_URL is not usable"
    return Target(api, repository, number)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an error: the token must not follow it elsewhere


class Client:
    """The three REST calls the comment needs, with the token in one header only."""

    def __init__(self, where: Target, token: str) -> None:
        self.where = where
        self._token = token
        self._opener = urllib.request.build_opener(_NoRedirect)

    def _call(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            self.where.api + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self._token}",
                     "Accept": "application/vnd.github+json",
                     "X-GitHub-Api-Version": "2022-11-28",
                     "User-Agent": "gitops-checker",
                     **({"Content-Type": "application/json"} if data else {})})
        try:
            with self._opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                raw = response.read(8 << 20)
        except urllib.error.HTTPError as err:
            hint = (" (the job needs permissions: pull-requests: write)"
                    if err.code in (401, 403, 404) else "")
            raise CommentError(f"{method} {path}: HTTP {err.code}{hint}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise CommentError(f"{method} {path}: {reason}") from None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise CommentError(f"{method} {path}: the answer is not JSON") from None

    def find(self, mark: str) -> int | None:
        """The id of the bot comment that carries ``mark``, if there is one."""
        base = f"/repos/{self.where.repository}/issues/{self.where.number}/comments"
        for page in range(1, MAX_PAGES + 1):
            items = self._call("GET", f"{base}?per_page=100&page={page}")
            if not isinstance(items, list):
                raise CommentError(f"GET {base}: the answer is not a list")
            for item in items:
                user = item.get("user") if isinstance(item, dict) else None
                if (isinstance(user, dict) and user.get("type") == "Bot"
                        and str(item.get("body", "")).startswith(mark)):
                    return int(item["id"])
            if len(items) < 100:
                return None
        return None

    def upsert(self, text_body: str, mark: str) -> tuple[str, int]:
        """Update the comment carrying ``mark`` or create it; ("updated"|"created", id)."""
        found = self.find(mark)
        repo = self.where.repository
        if found is not None:
            self._call("PATCH", f"/repos/{repo}/issues/comments/{found}", {"body": text_body})
            return "updated", found
        made = self._call("POST", f"/repos/{repo}/issues/{self.where.number}/comments",
                          {"body": text_body})
        return "created", int(made["id"]) if isinstance(made, dict) and "id" in made else 0


def post(report: Report, environ: Mapping[str, str], token: str, category: str,
         log: TextIO) -> str:
    """Create or update the pull request's comment; a line for the log says what happened."""
    from checker.action.outputs import command

    where = target(environ)
    if isinstance(where, str):
        line = command("notice", f"pull-request comment not posted: {where}",
                       title="gitops-checker")
    elif not token:
        line = command("warning", "pull-request comment not posted: no github-token",
                       title="gitops-checker")
    else:
        try:
            done, number = Client(where, token).upsert(body(report, category),
                                                       marker(category))
            line = f"gitops-checker: pull-request comment {done} (id {number})"
        except CommentError as err:
            line = command("warning", f"pull-request comment not posted: {err}",
                           title="gitops-checker")
    log.write(line + "\n")
    return line
