"""The README's commands are real: every `p402 ...` line names a command and options that exist,
and the Makefile has the two targets it promises."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from p402.cli import cli

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
COMMANDS = [
    line.split("#")[0].strip()
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    for line in block.splitlines()
    if line.strip().startswith("p402 ")
]


def test_readme_has_commands() -> None:
    assert len(COMMANDS) >= 5


@pytest.mark.parametrize("line", COMMANDS)
def test_readme_command_exists_with_its_options(line: str) -> None:
    words = shlex.split(line)[1:]
    command: click.Command = cli
    while isinstance(command, click.Group) and words and words[0] in command.commands:
        command = command.commands[words.pop(0)]
    assert not isinstance(command, click.Group), f"{line}: no such command"
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    used = {word for word in words if word.startswith("--")}
    assert used <= known, f"{line}: unknown options {used - known}"


def test_makefile_has_the_two_readme_targets() -> None:
    makefile = (Path(__file__).parent.parent / "Makefile").read_text(encoding="utf-8")
    assert "make audit" in README and "make test" in README
    assert re.search(r"^audit:", makefile, flags=re.M) and re.search(
        r"^test:", makefile, flags=re.M
    )
