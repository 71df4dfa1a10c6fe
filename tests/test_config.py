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
    problems = [str(problem) for problem in caught.value.problems]
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
    assert "needs at least input and output" in str(caught.value.problems[0])


POLICY = """\
[[budgets]]
name = "support daily"
scope = "department"
value = "Support"
window = "day"
limit = "25.00"

[[budgets]]
name = "every customer"
scope = "customer"
value = "*"
window = "month"
limit = "500"
mode = "soft"

[models]
allow = ["gpt-4o*", "claude-*"]

[upstreams]
openai = { base_url = "http://127.0.0.1:9999/v1/", api_key_env = "MY_OPENAI_KEY" }
"""


def test_budgets_models_and_upstreams_load(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, POLICY))
    first, second = config.budgets
    assert (first.name, first.scope, first.value, first.window) == (
        "support daily", "department", "Support", "day",
    )  # fmt: skip
    assert (first.limit, first.mode) == (Decimal("25.00"), "hard")
    assert (second.scope, second.mode, second.limit) == ("customer", "soft", Decimal(500))
    assert config.allowed_models == ("gpt-4o*", "claude-*")
    openai = config.upstream("openai")
    assert (openai.base_url, openai.api_key_env) == ("http://127.0.0.1:9999/v1", "MY_OPENAI_KEY")
    anthropic = config.upstream("anthropic")
    assert (anthropic.base_url, anthropic.api_key_env) == (
        "https://api.anthropic.com", "ANTHROPIC_API_KEY",
    )  # fmt: skip


def test_no_policy_sections_mean_open_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, EXAMPLE))
    assert config.budgets == () and config.allowed_models is None
    assert config.upstream("openai").base_url == "https://api.openai.com"


def test_upstream_key_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(write(tmp_path, POLICY))
    monkeypatch.delenv("MY_OPENAI_KEY", raising=False)
    assert config.upstream("openai").api_key() is None
    monkeypatch.setenv("MY_OPENAI_KEY", "sk-from-env")
    assert config.upstream("openai").api_key() == "sk-from-env"


def test_policy_mistakes_are_named_with_their_line(tmp_path: Path) -> None:
    text = POLICY.replace('scope = "department"', 'scope = "team"')
    text = text.replace('limit = "500"', "limit = 500.0")
    text = text.replace('allow = ["gpt-4o*", "claude-*"]', "allow = []")
    text = text.replace('api_key_env = "MY_OPENAI_KEY"', 'api_key = "sk-secret"')
    text += '\n[upstreams.gemini]\nbase_url = "x"\n'
    with pytest.raises(ConfigProblems) as caught:
        load_config(write(tmp_path, text))
    problems = [str(problem) for problem in caught.value.problems]
    path = tmp_path / "p402.toml"
    joined = "\n".join(problems)
    assert (
        f"{path}:3: [[budgets]] #1: scope must be one of department, workflow, customer" in joined
    )
    assert any(p.startswith(f"{path}:13:") and "quoted decimal" in p for p in problems), problems
    assert any(p.startswith(f"{path}:17:") and "allow must be a list" in p for p in problems)
    assert any(p.startswith(f"{path}:20:") and "never written in the file" in p for p in problems)
    assert any("unknown key 'gemini' in [upstreams]" in p for p in problems), problems


JOURNAL = """\
[tenant]
id = "acme"

[journal]
expense_account = "6150 AI services"
liability_account = 2150
colour = "red"
cost_centers = { "Customer Support" = "CC-410", Engineering = "" }
"""


def test_the_journal_is_read_with_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p402.toml"
    path.write_text(JOURNAL.replace("2150", '"2150 Accrued"').replace('colour = "red"\n', "")
                    .replace('Engineering = ""', 'Engineering = "CC-200"'), encoding="utf-8")  # fmt: skip
    journal = load_config(path).journal
    # An account written "number name" (the older form) is read as its number and its name.
    assert (journal.expense_account, journal.expense_account_name) == ("6150", "AI services")
    assert (journal.liability_account, journal.liability_account_name) == ("2150", "Accrued")
    assert journal.default_cost_center == "SHARED"
    assert dict(journal.cost_centers) == {"Customer Support": "CC-410", "Engineering": "CC-200"}


def test_the_journal_settings_an_erp_import_needs(tmp_path: Path) -> None:
    path = tmp_path / "p402.toml"
    path.write_text(
        '[journal]\nexpense_account = "6150"\nexpense_account_name = "AI services"\n'
        'cogs_account = "5150"\ncost_center_tag = "cost_center"\nentity = "US01"\n'
        'currency = "EUR"\nsuspense_threshold = "25.00"\nreverse_accruals = true\n',
        encoding="utf-8",
    )
    journal = load_config(path).journal
    assert (journal.cogs_account, journal.cost_center_tag, journal.entity) == (
        "5150",
        "cost_center",
        "US01",
    )
    assert (journal.currency, journal.suspense_threshold, journal.reverse_accruals) == (
        "EUR", Decimal("25.00"), True,
    )  # fmt: skip
    path.write_text(
        '[journal]\ncost_center_tag = "a b"\ncurrency = "dollars"\nsuspense_threshold = 25.0\n'
        'reverse_accruals = "yes"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigProblems) as caught:
        load_config(path)
    problems = "\n".join(str(problem) for problem in caught.value.problems)
    for line, key in (
        (2, "cost_center_tag"),
        (3, "currency"),
        (4, "suspense_threshold"),
        (5, "reverse_accruals"),
    ):
        assert f"{path}:{line}: [journal]: {key}" in problems


def test_journal_mistakes_are_all_named_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "p402.toml"
    path.write_text(JOURNAL + '\n[[invoices]]\nprovider = "openai"\n', encoding="utf-8")
    with pytest.raises(ConfigProblems) as caught:
        load_config(path)
    problems = [str(problem) for problem in caught.value.problems]
    assert f"{path}:6: [journal]: liability_account must be a non-empty string" in problems
    assert any(p.startswith(f"{path}:7: unknown key 'colour' in [journal]") for p in problems)
    assert f"{path}:8: [journal]: cost_centers.Engineering must be a non-empty string" in problems
    assert any("[[invoices]] #1 needs period" in p for p in problems), problems  # with the rest
    assert all(problem.source == str(path) for problem in caught.value.problems)


def test_the_report_s_tag_breakdowns_are_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "p402.toml"
    path.write_text(
        '[report]\nbreakdowns = ["tag.env", "tag.cost_center", "tag.env"]\n', encoding="utf-8"
    )
    assert load_config(path).report.tag_breakdowns == ("env", "cost_center")
    path.write_text('[report]\nbreakdowns = ["department", "tag.a b"]\n', encoding="utf-8")
    with pytest.raises(ConfigProblems) as caught:
        load_config(path)
    problems = [str(problem) for problem in caught.value.problems]
    assert len(problems) == 2 and all(f"{path}:2: [report]: breakdowns:" in p for p in problems)


def test_credits_are_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "p402.toml"
    path.write_text(
        '[[credits]]\nname = "pre"\nprovider = "openrouter"\namount = "300.00"\nstart = 2026-09-01\n'
        'expiry = "2027-03-31"\n',
        encoding="utf-8",
    )
    (credit,) = load_config(path).credits
    assert (credit.kind, credit.amount, credit.start.isoformat(), str(credit.expiry)) == (
        "prepaid", Decimal("300.00"), "2026-09-01", "2027-03-31",
    )  # fmt: skip
    path.write_text(
        '[[credits]]\nname = "x"\nprovider = "openai"\namount = 3.5\nstart = "soon"\nkind = "loan"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigProblems) as caught:
        load_config(path)
    problems = "\n".join(str(problem) for problem in caught.value.problems)
    for key in ("amount", "start", "kind"):
        assert f"[[credits]] #1: {key}" in problems or f"[[credits]] #1: {key} " in problems, key
