"""The README and every page of docs/ are true: each `p402 ...` line names a command and options
that exist, every link leads somewhere, the configuration example loads, the error tree is the
one errors.py draws, the Makefile has the targets the pages name, and the README's sections run
as written, one after the other in one shell (the proxy example against a stand-in provider)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
import pytest

from p402 import errors
from p402.cli import cli
from p402.config import load_config
from tests.test_cli import P402, run
from tests.test_serve_process import answer_json

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


class _Provider(BaseHTTPRequestHandler):
    """The provider behind the README's proxy example: one chat completion, with usage."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        answer_json(self, {
            "id": "chatcmpl-readme", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
        })  # fmt: skip

    def log_message(self, *_args: object) -> None:
        pass


def _object_with(text: str, key: str) -> dict[str, Any]:
    """The first JSON object in *text* that has *key* (commands print around it)."""
    decoder = json.JSONDecoder()
    for start in (i for i, char in enumerate(text) if char == "{"):
        try:
            found, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(found, dict) and key in found:
            return found
    raise AssertionError(f"no JSON object with {key!r} in {text!r}")


@pytest.mark.slow
def test_the_readme_runs_section_after_section_in_one_shell(tmp_path: Path) -> None:
    """`make audit`, then the tour, then the live ledger, word for word in one shell: each
    section works after the one before it, and the verify command `make audit` printed still
    says valid at the end (the tour used to overwrite its bundle with one of another key)."""
    made = run("audit", "--demo", "--out", "out", cwd=tmp_path)  # what `make audit` runs
    assert made.returncode == 0, made.stderr
    (printed,) = re.findall(r"^Verify with: (.+)$", made.stdout, flags=re.M)
    provider = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    (tmp_path / "provider.toml").write_text(
        f'[upstreams]\nopenai = {{ base_url = "http://127.0.0.1:{provider.server_port}/v1", '
        'api_key_env = "OPENAI_API_KEY" }\n'
    )
    sections = [block for block in _blocks(README, "sh") if not block.lstrip().startswith("make ")]
    assert len(sections) == 2  # the tour, the live ledger
    venv = Path(P402).parent
    env = {
        **os.environ, "PATH": f"{venv}{os.pathsep}{os.environ['PATH']}", "P402_DATABASE_URL": "",
        "OPENAI_API_KEY": "sk-readme", "P402_CONFIG": str(tmp_path / "provider.toml"),
    }  # fmt: skip
    try:
        shell = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", "\n".join(sections)], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    finally:
        provider.shutdown()
        provider.server_close()
    assert shell.returncode == 0, f"{shell.stdout}\n{shell.stderr}"
    summary = _object_with(shell.stdout, "total")  # what curl printed
    assert summary["total"]["events"] == 1
    assert summary["by_department"][0]["department"] == "Support"
    (event,) = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert (event["department"], event["input_tokens"], event["output_tokens"]) == (
        "Support",
        11,
        3,
    )
    again = subprocess.run(shlex.split(printed), cwd=tmp_path, env=env, capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert again.returncode == 0, f"{printed}\n{again.stdout}\n{again.stderr}"
