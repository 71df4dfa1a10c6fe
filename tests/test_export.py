"""``p402 export``: every format reads back to the stored events, exactly, for one tenant only."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import p402.cli.export  # registers `export` on the group (p402/cli/__init__.py imports it too)
from p402.cli import main
from p402.ingest import demo
from p402.ingest.importer import import_files
from p402.ledger.events import FIELDS, Event
from p402.ledger.export import FOCUS_COLUMNS, ExportError, export_ledger
from p402.ledger.store import Ledger
from p402.money import MAX_EVENT_COST, from_units, round_cents, to_units
from p402.period import parse_period
from tests.conftest import PERIOD, TENANT, small_events

del p402.cli.export
ROOT = Path(__file__).resolve().parent.parent
OTHER = "globex"
FOCUS_MANDATORY = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
    "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
    "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
)  # fmt: skip
FOCUS_1_2 = (
    *FOCUS_MANDATORY, "ChargeFrequency", "CommitmentDiscountStatus", "ConsumedQuantity", "ConsumedUnit",
    "InvoiceId", "ServiceSubcategory", "SkuId", "SkuPriceId", "Tags",
)  # fmt: skip
"""The FOCUS 1.2 columns p402 fills; any other column must be a custom x_ one."""
NOVEMBER = Event(
    event_id="evt-november",
    tenant=TENANT,
    occurred_at=datetime(2026, 11, 30, 23, 59, 59, 678901, tzinfo=UTC),
    provider="bedrock",
    model="us.anthropic.claude-3-5-haiku-20241022-v1:0",
    operation="chat",
    requests=3,
    input_tokens=10,
    cache_write_tokens=7,
    output_tokens=5,
    reasoning_tokens=2,
    cost=Decimal("0.000000000001"),
    cost_source="provider",
    price_ref='list "bedrock", 2026-11',
    list_cost=Decimal("123.456789012345"),
    department="Finance",
    tags=(("cost_center", "7200"), ("department", "overridden")),
    batch=True,
    service_tier="flex",
    policy='cap, "soft"',
    retention_until=datetime(2033, 1, 1, tzinfo=UTC),
)


def _fill(ledger: Ledger) -> list[Event]:
    """The small ledger and a November event for TENANT, and another tenant with the same ids;
    returns TENANT's events in the ledger's order."""
    mine = [*small_events(TENANT), NOVEMBER]
    ledger.add([*mine, *small_events(OTHER), dataclasses.replace(NOVEMBER, tenant=OTHER)])
    return sorted(mine, key=lambda item: (item.occurred_at, item.event_id))


def _units(events: list[Event]) -> int:
    return sum(to_units(item.cost) for item in events if item.cost is not None)


def test_jsonl_is_exactly_to_json_per_line(ledger: Ledger, tmp_path: Path) -> None:
    expected = _fill(ledger)
    out = tmp_path / "all.jsonl"
    summary = export_ledger(ledger, tenant=TENANT, period=None, fmt="jsonl", out=out)
    lines = out.read_bytes().splitlines()
    assert lines == [orjson.dumps(item.to_json()) for item in expected]
    assert [json.loads(line) for line in lines] == [item.to_json() for item in expected]
    assert (summary.count, summary.unpriced, summary.path) == (len(expected), 1, out)
    assert summary.total == from_units(_units(expected))


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_canonical_files_import_back_to_the_same_events(
    sqlite_ledger: Ledger, tmp_path: Path, suffix: str
) -> None:
    expected = _fill(sqlite_ledger)
    out = tmp_path / f"all.{suffix}"
    export_ledger(sqlite_ledger, tenant=TENANT, period=None, fmt=suffix, out=out)
    again = Ledger.open(str(tmp_path / "again.db"))
    try:
        import_files(again, [out], tenant=TENANT)
        back = list(again.stream(TENANT))
    finally:
        again.close()
    # The import prices reported costs against the price table too: the only field it adds.
    assert [item.list_cost for item in back if item.cost_source == "provider"] != []
    assert [
        item.evolve(list_cost=old.list_cost) for item, old in zip(back, expected, strict=True)
    ] == expected
    assert back[-1].list_cost == NOVEMBER.list_cost


def test_csv_has_the_canonical_columns_and_exact_money(
    sqlite_ledger: Ledger, tmp_path: Path
) -> None:
    expected = _fill(sqlite_ledger)
    out = tmp_path / "all.csv"
    export_ledger(sqlite_ledger, tenant=TENANT, period=None, fmt="csv", out=out)
    assert out.read_bytes().count(b"\r\n") == len(expected) + 1  # RFC 4180 line ends
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert tuple(frame.columns) == FIELDS
    assert list(frame["event_id"]) == [item.event_id for item in expected]
    wanted = [item.to_json() for item in expected]
    assert list(frame["cost"]) == [row["cost"] or "" for row in wanted]
    assert list(frame["policy"]) == [row["policy"] or "" for row in wanted]
    assert [json.loads(tags) for tags in frame["tags"]] == [row["tags"] for row in wanted]
    total = sum((Decimal(cost) for cost in frame["cost"] if cost), Decimal(0))
    assert total == from_units(_units(expected))


def test_parquet_is_typed_and_exact(ledger: Ledger, tmp_path: Path) -> None:
    expected = _fill(ledger)
    out = tmp_path / "all.parquet"
    summary = export_ledger(ledger, tenant=TENANT, period=None, fmt="parquet", out=out, batch=10)
    parquet = pq.ParquetFile(out)
    assert parquet.metadata.num_row_groups == 3  # 25 events, 10 a row group: streamed
    table = parquet.read()
    assert tuple(table.column_names) == FIELDS
    assert table.schema.field("cost").type == pa.decimal128(38, 12)
    assert table.schema.field("occurred_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("input_tokens").type == pa.int64()
    assert table.column("cost").to_pylist() == [item.cost for item in expected]
    assert table.column("list_cost").to_pylist() == [item.list_cost for item in expected]
    assert table.column("occurred_at").to_pylist() == [item.occurred_at for item in expected]
    assert table.column("retention_until").to_pylist()[-1] == NOVEMBER.retention_until
    assert (
        table.column("tags").to_pylist()[-1] == '{"cost_center":"7200","department":"overridden"}'
    )
    costs = [cost for cost in table.column("cost").to_pylist() if cost is not None]
    assert sum(costs, Decimal(0)) == summary.total == from_units(_units(expected))


def test_totals_tie_out_to_the_ledger_to_the_cent(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    sqlite_ledger.add(demo.generate(tenant=TENANT, count=3_000))
    summary = export_ledger(
        sqlite_ledger, tenant=TENANT, period=PERIOD, fmt="focus", out=tmp_path / "f.csv"
    )
    ledger_units = sum(sqlite_ledger.provider_totals(TENANT, PERIOD).values())
    assert to_units(summary.total) == ledger_units
    with (tmp_path / "f.csv").open(encoding="utf-8", newline="") as handle:
        billed = sum((Decimal(row["BilledCost"]) for row in csv.DictReader(handle)), Decimal(0))
    assert billed == summary.total
    assert billed.quantize(Decimal("0.01")) == round_cents(ledger_units)


def test_focus_rows_carry_the_spec_columns(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    expected = _fill(sqlite_ledger)
    out = tmp_path / "focus.csv"
    export_ledger(sqlite_ledger, tenant=TENANT, period=None, fmt="focus", out=out)
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert set(FOCUS_MANDATORY) <= set(rows[0])
    assert [name for name in rows[0] if name not in FOCUS_1_2 and not name.startswith("x_")] == []
    assert [row["x_EventId"] for row in rows] == [item.event_id for item in expected]
    first = rows[0]
    assert first["ServiceCategory"] == "AI and Machine Learning"
    assert (first["ChargeCategory"], first["BillingCurrency"], first["ConsumedUnit"]) == (
        "Usage",
        "USD",
        "Tokens",
    )
    assert first["ChargePeriodStart"] == "2026-10-01T09:00:00Z"
    assert first["ChargePeriodEnd"] == "2026-10-01T09:00:01Z"
    assert (first["BillingPeriodStart"], first["BillingPeriodEnd"]) == (
        "2026-10-01T00:00:00Z",
        "2026-11-01T00:00:00Z",
    )
    assert first["ConsumedQuantity"] == first["PricingQuantity"] == "1050.0"  # 1000 in + 50 out
    assert json.loads(first["Tags"]) == {"department": "Engineering", "customer": "Globex",
                                         "owner": "owner@acme.example"}  # fmt: skip
    last = rows[-1]  # November, on Bedrock, resold by AWS, published by Anthropic
    assert (last["ProviderName"], last["InvoiceIssuerName"], last["PublisherName"]) == (
        "Amazon Web Services", "Amazon Web Services", "Anthropic",
    )  # fmt: skip
    assert (last["BillingPeriodStart"], last["BillingPeriodEnd"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    assert (last["ChargePeriodStart"], last["ChargePeriodEnd"]) == (
        "2026-11-30T23:59:59Z",
        "2026-12-01T00:00:00Z",
    )
    assert (last["BilledCost"], last["ListCost"]) == ("0.000000000001", "123.456789012345")
    assert last["ConsumedQuantity"] == "22.0"  # reasoning tokens are part of output, not added
    assert json.loads(last["Tags"]) == {"cost_center": "7200", "department": "Finance"}
    assert (last["x_Batch"], last["x_ServiceTier"], last["x_Policy"]) == (
        "true",
        "flex",
        'cap, "soft"',
    )
    unpriced = next(row for row in rows if row["x_EventId"] == "evt-unpriced")
    assert {
        unpriced[name] for name in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
    } == {"0.0"}
    assert (unpriced["x_Unpriced"], unpriced["x_CostSource"]) == ("true", "unpriced")


def test_focus_parquet_has_the_same_rows_typed(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    expected = _fill(sqlite_ledger)
    export_ledger(sqlite_ledger, tenant=TENANT, period=None, fmt="focus", out=tmp_path / "f.csv")
    export_ledger(
        sqlite_ledger, tenant=TENANT, period=None, fmt="focus", out=tmp_path / "f.parquet"
    )
    table = pq.read_table(tmp_path / "f.parquet")
    assert tuple(table.column_names) == tuple(name for name, _ in FOCUS_COLUMNS)
    assert table.schema.field("BilledCost").type == pa.decimal128(38, 12)
    assert table.schema.field("ChargePeriodStart").type == pa.timestamp("us", tz="UTC")
    assert table.column("BilledCost").to_pylist() == [item.cost or 0 for item in expected]
    frame = pd.read_csv(tmp_path / "f.csv", dtype=str, keep_default_na=False)
    assert list(frame["x_EventId"]) == table.column("x_EventId").to_pylist()


def test_a_period_exports_only_its_events(ledger: Ledger, tmp_path: Path) -> None:
    expected = _fill(ledger)
    out = tmp_path / "november.jsonl"
    november = parse_period("2026-11")
    summary = export_ledger(ledger, tenant=TENANT, period=november, fmt="jsonl", out=out)
    assert [json.loads(line)["event_id"] for line in out.read_text().splitlines()] == [
        "evt-november"
    ]
    assert summary.total == NOVEMBER.cost
    october = export_ledger(ledger, tenant=TENANT, period=PERIOD, fmt="csv", out=tmp_path / "o.csv")
    assert october.count == len(expected) - 1


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "focus"])
def test_another_tenants_events_never_appear(ledger: Ledger, tmp_path: Path, fmt: str) -> None:
    _fill(ledger)  # both tenants have the same event ids
    out = tmp_path / f"theirs.{'csv' if fmt == 'focus' else fmt}"
    summary = export_ledger(ledger, tenant=OTHER, period=None, fmt=fmt, out=out)
    assert summary.count == len(small_events()) + 1
    if fmt == "jsonl":
        tenants = [json.loads(line)["tenant"] for line in out.read_text().splitlines()]
    elif fmt == "parquet":
        tenants = pq.read_table(out).column("tenant").to_pylist()
    else:
        frame = pd.read_csv(out, dtype=str, keep_default_na=False)
        tenants = list(frame["tenant" if fmt == "csv" else "BillingAccountId"])
    assert tenants == [OTHER] * summary.count


@pytest.mark.parametrize("name", ["e.jsonl", "e.csv", "e.parquet", "f.csv", "f.parquet"])
def test_an_empty_ledger_gives_an_empty_file(
    sqlite_ledger: Ledger, tmp_path: Path, name: str
) -> None:
    fmt = {"e": name.split(".")[1], "f": "focus"}[name[0]]
    out = tmp_path / name
    summary = export_ledger(sqlite_ledger, tenant=TENANT, period=None, fmt=fmt, out=out)
    assert (summary.count, summary.total, summary.unpriced) == (0, Decimal(0), 0)
    if name.endswith(".parquet"):
        assert pq.read_table(out).num_rows == 0
        assert len(pq.read_table(out).column_names) > 20
    elif name.endswith(".csv"):
        assert len(out.read_text().splitlines()) == 1  # the header only
    else:
        assert out.read_bytes() == b""


def test_an_existing_file_is_never_replaced_unless_asked(
    sqlite_ledger: Ledger, tmp_path: Path
) -> None:
    _fill(sqlite_ledger)
    out = tmp_path / "kept.jsonl"
    out.write_text("precious\n")
    with pytest.raises(ExportError, match="already exists"):
        export_ledger(sqlite_ledger, tenant=TENANT, period=None, fmt="jsonl", out=out)
    assert out.read_text() == "precious\n"
    export_ledger(sqlite_ledger, tenant=TENANT, period=None, fmt="jsonl", out=out, overwrite=True)
    assert out.read_text().count("\n") == len(small_events()) + 1
    assert [path.name for path in tmp_path.iterdir() if path.name.endswith(".partial")] == []


def test_an_unknown_format_is_refused(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown export format 'xml'"):
        export_ledger(sqlite_ledger, tenant=TENANT, period=None, fmt="xml", out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.decimals(min_value=0, max_value=MAX_EVENT_COST, places=12), min_size=1, max_size=8)
)
def test_money_survives_every_format_to_the_last_digit(
    sqlite_ledger: Ledger, tmp_path_factory: pytest.TempPathFactory, costs: list[Decimal]
) -> None:
    folder = tmp_path_factory.mktemp("money")
    tenant = folder.name[-60:]  # a fresh tenant for each example
    base = small_events(tenant)[0]
    sqlite_ledger.add(
        dataclasses.replace(base, event_id=f"e{n}", cost=cost, list_cost=cost)
        for n, cost in enumerate(costs)
    )
    exact = sum(costs, Decimal(0))
    for fmt, name in (("parquet", "m.parquet"), ("focus", "f.parquet")):
        summary = export_ledger(
            sqlite_ledger, tenant=tenant, period=None, fmt=fmt, out=folder / name
        )
        column = "cost" if fmt == "parquet" else "BilledCost"
        assert sorted(pq.read_table(folder / name).column(column).to_pylist()) == sorted(costs)
        assert summary.total == exact
    export_ledger(sqlite_ledger, tenant=tenant, period=None, fmt="focus", out=folder / "f.csv")
    frame = pd.read_csv(folder / "f.csv", dtype=str, keep_default_na=False)
    assert sorted(Decimal(cost) for cost in frame["ListCost"]) == sorted(costs)
    assert all("E" not in cost and "e" not in cost for cost in frame["BilledCost"])


def _main(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI's entry point in-process: its errors are mapped exactly as for `p402`."""
    argv, code = sys.argv, 0
    sys.argv = ["p402", *args]
    try:
        main()  # returns on success, exits on an error
    except SystemExit as exited:
        code = int(exited.code or 0)
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_exports_and_says_what_it_wrote(
    sqlite_ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _fill(sqlite_ledger)
    db = str(tmp_path / "ledger.db")
    out = tmp_path / "out" / "acme.parquet"
    code, stdout, _ = _main("export", "--format", "parquet", "--out", str(out), "--db", db,
                            "--tenant", TENANT, capsys=capsys)  # fmt: skip
    total = round_cents(_units(expected))
    assert code == 0
    unpriced = sum(1 for item in expected if item.cost is None)
    more = f", {unpriced:,} unpriced" if unpriced else ""
    assert stdout == f"Exported {len(expected)} events (total ${total:,}{more}) to {out}\n"
    assert pq.read_table(out).num_rows == len(expected)
    code, _, stderr = _main("export", "--format", "parquet", "--out", str(out), "--db", db,
                            "--tenant", TENANT, capsys=capsys)  # fmt: skip
    assert code == 2
    assert stderr == f"error: {out} already exists (give --force to replace it)\n"
    code, stdout, _ = _main("export", "--format", "focus", "--out", str(out), "--db", db, "--tenant", TENANT,
                            "--period", "2026-11", "--force", "--json", capsys=capsys)  # fmt: skip
    assert code == 0
    assert json.loads(stdout)["events"] == 1
    assert pq.read_table(out).column("x_EventId").to_pylist() == ["evt-november"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "xml"), "error: unknown export format 'xml' (use one of: jsonl, csv, parquet, focus, journal, "
                              "journal-intacct, journal-xero)"),
        (("--period", "2026-13"), "error: period '2026-13': month must be 01 to 12"),
        (("--period", "2026-10", "--from", "2026-10-01"), "error: give --period or --from/--to, not both"),
    ],
)  # fmt: skip
def test_cli_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "x.out"
    code, stdout, stderr = _main("export", "--out", str(out), "--db", str(tmp_path / "l.db"), *args,
                                 capsys=capsys)  # fmt: skip
    assert (code, stdout, stderr) == (2, "", message + "\n")
    assert not out.exists()


@pytest.mark.skipif(
    os.environ.get("P402_FOCUS_VALIDATOR") != "1",
    reason="set P402_FOCUS_VALIDATOR=1 to run the FinOps focus-validator (Python 3.12, its own venv)",
)
@pytest.mark.parametrize("name", ["demo.csv", "demo.parquet"])
def test_focus_export_passes_the_finops_validator(
    sqlite_ledger: Ledger, tmp_path: Path, name: str
) -> None:
    sqlite_ledger.add(demo.generate(tenant=TENANT, count=5_000))
    sqlite_ledger.add(small_events())  # an unpriced event and a denied one among them
    out = tmp_path / name
    export_ledger(sqlite_ledger, tenant=TENANT, period=None, fmt="focus", out=out)
    checked = subprocess.run([str(ROOT / ".ci" / "focus-validate"), str(out)], capture_output=True,
                             text=True, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "passes every applicable FOCUS 1.2 rule" in checked.stdout
