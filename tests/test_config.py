"""p402.toml: the documented example loads, and every mistake is named with its line."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from p402.config import ConfigProblems, load_config
from p402.errors import ConfigError

EXAMPLE = """\
[tenant]
id = "acme"
name = "Acme Corp"
retention_days = 400

[[rules]]
name = "support bot key"
match = { api_key_id = "key_support*" }
set = { department = "Customer Support", workflow = "ticket-triage", owner = "maria@acme.example" }

[[prices]]
provider = "openai"
model = "gpt-4o*"
input = "2.00"          # USD per 1M uncached input tokens
cache_read = "1.00"
output = "8.00"
effective_from = 2026-10-01

[[invoices]]
provider = "openai"
period = "2026-10"
amount = "1234.56"
currency = "USD"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p402.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_example_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, EXAMPLE))
    assert config.tenant is not None and (config.tenant.id, config.tenant.retention_days) == (
        "acme",
        400,
    )
    (rule,) = config.rules
    assert rule.match == (("api_key_id", "key_support*"),)
    assert dict(rule.set)["workflow"] == "ticket-triage"
    (price,) = config.prices
    assert dict(price.rates) == {
        "input": Decimal("2.00"),
        "cache_read": Decimal("1.00"),
        "output": Decimal("8.00"),
    }
    assert price.effective_from == date(2026, 10, 1)
    assert config.invoices[0].amount == Decimal("1234.56")
    assert len(config.rules_version) == 16


def test_no_file_means_no_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config().rules == ()
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "missing.toml")


def test_every_mistake_is_named_with_its_line(tmp_path: Path) -> None:
    text = EXAMPLE.replace(
        'match = { api_key_id = "key_support*" }', 'match = { api_kye_id = "key_support*" }'
    )
    text = text.replace('cache_read = "1.00"', "cache_read = 1.00")
    text += '\n[[rules]]\nname = "support bot key"\nset = { departmnet = "x" }\ncolour = "red"\n'
    with pytest.raises(ConfigProblems) as caught:
        load_config(write(tmp_path, text))
    problems = caught.value.problems
    path = tmp_path / "p402.toml"
    assert f"{path}:8: [[rules]] #1: match cannot use 'api_kye_id'" in "\n".join(problems)
    assert any(p.startswith(f"{path}:15:") and "quoted decimal" in p for p in problems), problems
    assert any("another rule is already called 'support bot key'" in p for p in problems)
    assert any("set cannot use 'departmnet'" in p for p in problems)
    assert any("unknown key 'colour'" in p and p.startswith(f"{path}:28:") for p in problems), (
        problems
    )
    assert any("[[rules]] #2: match must be a non-empty table" in p for p in problems)


def test_not_toml_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[tenant\nid = 1"))


def test_prices_need_input_and_output(tmp_path: Path) -> None:
    with pytest.raises(ConfigProblems, match="1 problem") as caught:
        load_config(
            write(tmp_path, '[[prices]]\nprovider = "openai"\nmodel = "gpt-4o"\ninput = "2"\n')
        )
    assert "needs at least input and output" in caught.value.problems[0]
