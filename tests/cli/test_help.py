"""Every command has help, answers ``--help``, and is documented in docs/cli.md.

The command tree is walked from ``loopml.cli.main.cli`` and ``COMMANDS``, so adding a
command or an option without help text or docs fails here (sqlite-utils'
``test_commands_are_documented`` and ``test_commands_have_help``).
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from cli_runner import run_cli
from loopml.cli.main import COMMANDS, cli

CLI_DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def walk() -> list[tuple[str, click.Command]]:
    """``("runs show", command)`` for every command and subcommand, depth first."""
    found: list[tuple[str, click.Command]] = []

    def visit(prefix: str, group: click.Group) -> None:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None, f"`loopml {prefix}{name}` is listed but cannot be loaded"
            path = f"{prefix}{name}"
            found.append((path, command))
            if isinstance(command, click.Group):
                visit(path + " ", command)

    visit("", cli)
    return found


COMMAND_PATHS = [path for path, _ in walk()]


def headings() -> dict[str, str]:
    """``{"runs show": section}`` per ``## loopml …``/``### loopml …`` heading.

    A section runs to the next heading of the same or a higher level, so a group's
    section includes its subcommands' sections.
    """
    text = CLI_DOC.read_text(encoding="utf-8")
    sections: dict[str, str] = {}
    marks = list(re.finditer(r"^(#{1,4}) (.*?)\s*$", text, flags=re.M))
    for i, mark in enumerate(marks):
        name = re.fullmatch(r"loopml ([a-z][a-z\- ]*)", mark.group(2))
        if not name:
            continue
        level = len(mark.group(1))
        end = next((m.start() for m in marks[i + 1 :] if len(m.group(1)) <= level), len(text))
        sections[name.group(1)] = text[mark.end() : end]
    return sections


def test_tree_matches_commands() -> None:
    top = [path for path in COMMAND_PATHS if " " not in path]
    assert top == sorted(COMMANDS)
    assert {
        "runs show",
        "runs compare",
        "artifacts list",
        "artifacts show",
        "artifacts get",
    } <= set(COMMAND_PATHS)


@pytest.mark.parametrize("path", COMMAND_PATHS)
def test_command_has_help(path: str) -> None:
    command = dict(walk())[path]
    assert (command.help or "").strip(), f"`loopml {path}` has no help text (its docstring)"
    if " " not in path:
        assert COMMANDS[path][2].strip(), f"COMMANDS[{path!r}] has no one-line help"


@pytest.mark.parametrize(
    "path",
    [p for p in COMMAND_PATHS],
)
def test_options_have_help(path: str) -> None:
    command = dict(walk())[path]
    bare = [
        "/".join(param.opts)
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()
    ]
    assert not bare, f"`loopml {path}` options without help text: {bare}"


@pytest.mark.parametrize("path", ["", *COMMAND_PATHS])
def test_help_exits_zero(path: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli(*path.split(), "--help", cwd=empty)
    assert result.returncode == 0, result.stderr
    assert f"Usage: loopml {path}".rstrip() in result.stdout
    assert not result.stderr
    assert not any(empty.iterdir()), "`--help` must not create files"


@pytest.mark.parametrize("path", COMMAND_PATHS)
def test_command_is_documented(path: str) -> None:
    sections = headings()
    assert path in sections, (
        f"docs/cli.md needs a section `## loopml {path}` (or ###) with an example"
    )
    section = sections[path]
    assert f"$ loopml {path}" in section, (
        f"docs/cli.md section `loopml {path}` needs a `$ loopml {path} …` example"
    )
    command = dict(walk())[path]
    for param in command.params:
        if isinstance(param, click.Option) and "--help" not in param.opts:
            assert any(opt in section for opt in param.opts), (
                f"docs/cli.md section `loopml {path}` does not mention option {'/'.join(param.opts)}"
            )


def test_docs_document_only_real_commands() -> None:
    unknown = sorted(set(headings()) - set(COMMAND_PATHS))
    assert not unknown, f"docs/cli.md documents commands that do not exist: {unknown}"


def test_command_table_matches_commands() -> None:
    expected = "\n".join(
        f"| [`loopml {name}`](#loopml-{name}) | {COMMANDS[name][2]} |" for name in sorted(COMMANDS)
    )
    assert expected in CLI_DOC.read_text(encoding="utf-8"), (
        f"The command table in docs/cli.md is out of date; it should read:\n{expected}"
    )
