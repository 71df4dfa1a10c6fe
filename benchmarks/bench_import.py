"""Benchmark importing: p402 against the floor, on SQLite and PostgreSQL, and re-attribution.

For N canonical events (the demo organisation written as JSON Lines):

- floor: a bare ``sqlite3`` executemany of the very rows p402 stores, into the same table
  with the same indexes, in this run;
- ``import events`` into SQLite: parse, validate, price, attribute, store;
- ``import events`` into PostgreSQL (COPY), when ``--postgres URL`` is given;
- ``attribute`` over the stored events with a few rules.

    .venv/bin/python benchmarks/bench_import.py [--count 1000000] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

import orjson


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _line(label: str, count: int, seconds: float, note: str = "") -> None:
    print(
        f"  {label:38} {seconds:8.2f} s {count / seconds:12,.0f} events/s {_peak_mb():8,.0f} MB {note}"
    )


def _write_events(source: Path, count: int) -> None:
    from p402.ledger import demo

    with source.open("wb") as handle:
        for item in demo.generate(count=count, tenant="bench"):
            handle.write(orjson.dumps(item.to_json()) + b"\n")


def _floor(source: Path, scratch: Path, count: int) -> float:
    """A bare sqlite3 executemany of the very rows p402 stores, into the same table and indexes."""
    from p402.ledger.schema import EVENT_COLUMNS, event_row
    from p402.ledger.store import Ledger
    from p402.ledger.validation import validate

    rows = []
    with source.open("rb") as handle:
        for line in handle:
            checked = validate(orjson.loads(line), tenant="bench", source="import:events")
            assert checked.event is not None
            rows.append(event_row(checked.event))
    floor_db = scratch / "floor.db"
    Ledger.open(str(floor_db)).close()  # creates the schema
    connection = sqlite3.connect(floor_db)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    marks = ", ".join("?" * len(EVENT_COLUMNS))
    start = time.perf_counter()
    insert = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({marks})"  # noqa: S608 (our columns)
    with connection:
        connection.executemany(insert, rows)
    seconds = time.perf_counter() - start
    connection.close()
    _line("floor: bare sqlite3 executemany", count, seconds)
    return seconds


def _import_and_attribute(source: Path, scratch: Path, count: int, floor: float) -> None:
    from p402.config import Rule
    from p402.ledger.importer import import_files
    from p402.ledger.reattribute import reattribute
    from p402.ledger.store import Ledger

    ledger = Ledger.open(str(scratch / "p402.db"))
    start = time.perf_counter()
    import_files(ledger, [source], tenant="bench")
    seconds = time.perf_counter() - start
    _line("p402 import events -> SQLite", count, seconds, f"({seconds / floor:.1f}x the floor)")
    rules = (
        Rule(
            "support keys",
            (("api_key_id", "key_0*"),),
            (("department", "Customer Support"),),
            override=True,
        ),
        Rule("prod", (("tag.env", "prod"),), (("project", "production"),)),
    )
    start = time.perf_counter()
    outcome = reattribute(ledger, tenant="bench", rules=rules)
    _line(f"p402 attribute ({outcome.changed:,} changed)", count, time.perf_counter() - start)
    ledger.close()
    usage = scratch / "usage.jsonl"
    _openai_usage(usage, count)
    ledger = Ledger.open(str(scratch / "usage.db"))
    start = time.perf_counter()
    import_files(ledger, [usage], tenant="bench", fmt="openai-usage")
    _line("p402 import openai-usage -> SQLite", count, time.perf_counter() - start)
    ledger.close()


def main() -> None:
    """Write the file, then time the floor, the imports and re-attribution."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--postgres", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        source = scratch / "events.jsonl"
        _write_events(source, args.count)
        print(
            f"\n{args.count:,} canonical events ({source.stat().st_size / 1e6:,.0f} MB of JSON Lines)"
        )
        floor = _floor(source, scratch, args.count)
        _import_and_attribute(source, scratch, args.count, floor)
        if args.postgres:
            _postgres(args.postgres, source, args.count)


def _openai_usage(path: Path, results: int) -> None:
    """OpenAI Usage API pages (JSON Lines, one page a line) holding *results* results: daily
    buckets grouped by project, key and model, as an organisation's history export looks."""
    models = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3", "o4-mini"]
    per_bucket = 500
    with path.open("wb") as handle:
        for day in range(0, -(-results // per_bucket)):
            start = 1_759_276_800 + (day % 31) * 86_400 + (day // 31)  # October 2026, daily
            bucket = {"object": "bucket", "start_time": start, "end_time": start + 86_400, "results": [
                {"object": "organization.usage.completions.result", "input_tokens": 9_000 + n,
                 "output_tokens": 800 + n, "input_cached_tokens": 1_000, "num_model_requests": 3 + n % 7,
                 "project_id": f"proj_{n % 13}", "user_id": None, "api_key_id": f"key_{n}",
                 "model": models[n % len(models)], "batch": n % 10 == 0, "service_tier": None}
                for n in range(min(per_bucket, results - day * per_bucket))
            ]}  # fmt: skip
            handle.write(
                orjson.dumps({"object": "page", "data": [bucket], "has_more": False}) + b"\n"
            )


def _postgres(url: str, source: Path, count: int) -> None:
    """Import into a fresh schema of the server at *url*, dropped afterwards."""
    import sqlalchemy

    from p402.ledger.importer import import_files
    from p402.ledger.store import Ledger

    schema = f"p402_bench_{time.time_ns()}"
    admin = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        ledger = Ledger.open(f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}")
        start = time.perf_counter()
        import_files(ledger, [source], tenant="bench")
        _line("p402 import events -> PostgreSQL (COPY)", count, time.perf_counter() - start)
        ledger.close()
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
