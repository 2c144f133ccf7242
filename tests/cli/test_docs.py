"""The docs are true to the command line: every command's ``--help`` renders, and README's
command table and the pages it links mention every command and every option.

README's ``## Commands`` table has one row per top-level command; its Docs column links the
pages that document it ("below" is README itself). A subcommand (``policies export``) is
documented on its group's pages. An option counts as documented when its long name appears in
README or one of those pages, as a whole word (``--json`` does not count for ``--json-x``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
from click.testing import CliRunner

from checker.cli import cli
from tests.conftest import ROOT

README = ROOT / "README.md"
NOT_CLICK = {"gitops-checker-action"}  # the Action's entry point: docs/github-action.md


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], click.Command]]:
    """Every command below ``command`` with the words that call it (the root has none)."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


def long_options(command: click.Command) -> list[str]:
    return [opt for param in command.params if isinstance(param, click.Option)
            for opt in (*param.opts, *param.secondary_opts) if opt.startswith("--")
            and opt != "--help"]


def command_table(readme: str) -> dict[str, list[str]]:
    """README's command table: first word of each command -> the pages its Docs column links."""
    start = readme.index("## Commands")
    section = readme[start:readme.index("\n## ", start + 1)]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = re.split(r"(?<!\\)\|", line)
        if len(cells) < 4 or not cells[1].strip().startswith("`"):
            continue
        name = cells[1].strip().strip("`").split()[0]
        rows[name] = [link.split("#")[0] for link in re.findall(r"\]\(([^)]+)\)", cells[-2])]
    return rows


def mentioned(option: str, text: str) -> bool:
    return re.search(re.escape(option) + r"(?![\w-])", text) is not None


def undocumented(root: click.Group, readme: str, read: dict[str, str]) -> list[str]:
    """What README's table and its pages leave out: commands, options, missing pages."""
    table = command_table(readme)
    problems = [f"{name}: in README's table, but no such command" for name in sorted(table)
                if name not in root.commands and name not in NOT_CLICK]
    for path, command in walk(root):
        if not path:
            problems += [f"gitops-checker {opt}: not mentioned in README"
                         for opt in long_options(command) if not mentioned(opt, readme)]
            continue
        words = " ".join(path)
        pages = table.get(path[0])
        if pages is None:
            problems.append(f"{words}: not in README's command table")
            continue
        texts = [readme]
        for page in pages:
            if page not in read:
                problems.append(f"{words}: README links {page}, which does not exist")
            else:
                texts.append(read[page])
        text = "\n".join(texts)
        if len(path) > 1 and not mentioned(words, text):
            problems.append(f"{words}: not mentioned in README or {', '.join(pages)}")
        problems += [f"{words} {opt}: not mentioned in README or {', '.join(pages) or 'below'}"
                     for opt in long_options(command) if not mentioned(opt, text)]
    return problems


def docs_pages() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
            for p in ROOT.glob("docs/**/*.md")}


def test_every_command_renders_its_help_with_its_options() -> None:
    runner = CliRunner()
    for path, command in walk(cli):
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert result.output.startswith("Usage: "), path
        for opt in long_options(command):
            assert opt in result.output, (path, opt)


def test_docs_mention_every_command_and_option() -> None:
    assert undocumented(cli, README.read_text(encoding="utf-8"), docs_pages()) == []


def test_a_new_command_or_option_without_docs_is_reported() -> None:
    """The check can fail: an option, a subcommand and a command nobody documented."""

    @click.group()
    def root() -> None:
        """A root."""

    @root.command()
    @click.option("--documented")
    @click.option("--hidden-flag/--no-hidden-flag")
    def run(documented: str, hidden_flag: bool) -> None:
        """Run."""

    @root.group()
    def pack() -> None:
        """Packs."""

    @pack.command(name="ship")
    def ship() -> None:
        """Ship."""

    @root.command()
    def orphan() -> None:
        """Nobody wrote it down."""

    readme = ("## Commands\n\n| Command | What | Docs |\n| --- | --- | --- |\n"
              "| `run` | runs | below |\n| `pack list\\|show` | packs | [p](docs/p.md), "
              "[q](docs/gone.md#x) |\n| `ghost` | nothing | below |\n\n## Next\n"
              "`run --documented` and `--hidden-flag-extra`\n")
    assert undocumented(root, readme, {"docs/p.md": "pack list"}) == [
        "ghost: in README's table, but no such command",
        "orphan: not in README's command table",
        "pack: README links docs/gone.md, which does not exist",
        "pack ship: README links docs/gone.md, which does not exist",
        "pack ship: not mentioned in README or docs/p.md, docs/gone.md",
        "run --hidden-flag: not mentioned in README or below",
        "run --no-hidden-flag: not mentioned in README or below",
    ]


def test_docs_name_the_policies_group_not_an_old_name() -> None:
    """The group is ``policies``; ``packs export`` is a name the CLI never had."""
    texts = {"README.md": README.read_text(encoding="utf-8"), **docs_pages()}
    stale = [name for name, text in texts.items()
             if re.search(r"\bpacks (list|show|export|docs)\b", text)]
    assert stale == []


def test_readme_table_pages_exist() -> None:
    for name, pages in command_table(README.read_text(encoding="utf-8")).items():
        for page in pages:
            assert (ROOT / page).is_file(), (name, page)
