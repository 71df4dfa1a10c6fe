"""The README and every page of docs/ are true: each `p402 ...` line names a command and options
that exist, every link leads somewhere, the configuration example loads, the error tree is the
one errors.py draws, the Makefile has the targets the pages name, and the README's tour runs as
written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from p402 import errors
from p402.cli import cli
from p402.config import load_config
from tests.test_cli import run

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXT = {page: page.read_text(encoding="utf-8") for page in PAGES}
README = TEXT[ROOT / "README.md"]


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def _commands(text: str) -> list[str]:
    return [
        line.split("  #")[0].strip()
        for block in _blocks(text, "sh")
        for line in block.splitlines()
        if line.strip().startswith("p402 ")
    ]


COMMANDS = [(_name(page), line) for page in PAGES for line in _commands(TEXT[page])]


def test_the_readme_is_short_and_every_page_has_commands_or_a_table() -> None:
    assert len(README.splitlines()) <= 120
    assert len(_commands(README)) >= 5
    assert {_name(p) for p in PAGES} >= {
        "docs/architecture.md", "docs/configuration.md", "docs/formats.md", "docs/bundle.md",
        "docs/live-ledger.md", "docs/operations.md",
    }  # fmt: skip


@pytest.mark.parametrize(("page", "line"), COMMANDS)
def test_each_command_exists_with_its_options(page: str, line: str) -> None:
    words = shlex.split(line)[1:]
    command: click.Command = cli
    while isinstance(command, click.Group) and words and words[0] in command.commands:
        command = command.commands[words.pop(0)]
    assert not isinstance(command, click.Group), f"{page}: {line}: no such command"
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    used = {word for word in words if word.startswith("--")}
    assert used <= known, f"{page}: {line}: unknown options {used - known}"


def test_every_command_of_the_cli_is_in_the_reference() -> None:
    reference = TEXT[ROOT / "docs" / "commands.md"]
    for name, command in cli.commands.items():
        assert f"`p402 {name}" in reference, f"p402 {name} is missing from docs/commands.md"
        if isinstance(command, click.Group):
            for sub in command.commands:
                assert re.search(rf"{name} {sub}\b", reference), f"p402 {name} {sub}"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", TEXT[page]):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{_name(page)}: broken link {target}"


def test_the_anchors_linked_to_exist() -> None:
    for page in PAGES:
        for target, anchor in re.findall(r"\]\(([^)#]+\.md)#([^)]+)\)", TEXT[page]):
            headings = re.findall(r"^#+ (.+)$", (page.parent / target).read_text(), flags=re.M)
            slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{_name(page)}: {target}#{anchor}"


def test_the_configuration_example_loads(tmp_path: Path) -> None:
    (example,) = _blocks(TEXT[ROOT / "docs" / "configuration.md"], "toml")
    path = tmp_path / "p402.toml"
    path.write_text(example, encoding="utf-8")
    config = load_config(path)
    assert config.tenant is not None and config.tenant.id == "acme"
    assert config.rules and config.prices and config.invoices and config.budgets
    assert config.journal.cost_centers["Customer Support"] == "CC-410"


def test_the_architecture_draws_the_real_error_tree() -> None:
    assert errors.__doc__ is not None
    drawn = "\n".join(line.removeprefix("    ") for line in errors.__doc__.splitlines()
                      if re.match(r"^    [│├└ ]*(── )?\w+.* \d{3} \w+$", line))  # fmt: skip
    (tree,) = [
        block
        for block in _blocks(TEXT[ROOT / "docs" / "architecture.md"], "")
        if "P402Error" in block
    ]
    assert tree.strip() == drawn.strip()


def test_makefile_has_the_targets_the_pages_name() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    named = {
        target for text in TEXT.values() for target in re.findall(r"\bmake ([a-z][a-z-]+)", text)
    }
    assert {"audit", "test", "test-fast"} <= named
    for target in named:
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), f"make {target}"


@pytest.mark.slow
def test_the_tour_runs_as_written(tmp_path: Path) -> None:
    """The README's tour, line by line, in an empty folder: every command succeeds."""
    (tour,) = [block for block in _blocks(README, "sh") if "p402 verify-receipt" in block]
    for line in tour.splitlines():
        words = shlex.split(line.split("  #")[0])
        if not words:
            continue
        assert words[0] == "p402"
        done = run(*words[1:], cwd=tmp_path)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "receipt.json").exists()
