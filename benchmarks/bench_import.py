"""Benchmark importing: p402 against the floor, on SQLite and PostgreSQL, and re-attribution.

For N canonical events (the demo organisation written as JSON Lines) and N OpenAI Usage API
results (pages of daily buckets, one page a line):

- floor: a bare ``sqlite3`` executemany of the very rows p402 stores, into the same table
  with the same indexes, in this run;
- ``import`` into SQLite, read in one process (``--jobs 1``) and in parts by one worker
  process per CPU (the default): parse, validate, price, attribute, store;
- ``import events`` into PostgreSQL (COPY), when ``--postgres URL`` is given;
- ``attribute`` over the stored events with a few rules;
- the cost of the control records (``--controls``): the same import with and without them,
  alternated three times, medians compared (target: at most 5 %).

    .venv/bin/python benchmarks/bench_import.py [--count 1000000] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import orjson


class _Memory:
    """The largest resident memory of this process plus its worker processes, sampled every
    50 ms while the block runs (``ru_maxrss`` would count the floor's rows held earlier)."""

    def __enter__(self) -> _Memory:
        self.peak, self._done = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(0.05):
            self.peak = max(self.peak, sum(_rss(pid) for pid in (os.getpid(), *_children())))


def _children() -> list[int]:
    found = []
    for task in Path("/proc/self/task").iterdir():
        with suppress(OSError):
            found += [int(pid) for pid in (task / "children").read_text().split()]
    return found


def _rss(pid: int) -> int:
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _line(label: str, count: int, seconds: float, note: str = "", memory: int = 0) -> None:
    peak = f"{memory / 2**20:8,.0f} MB" if memory else " " * 11
    print(f"  {label:50} {seconds:8.2f} s {count / seconds:10,.0f} events/s {peak} {note}")


def _write_events(source: Path, count: int) -> None:
    from p402.ingest import demo

    with source.open("wb") as handle:
        for item in demo.generate(count=count, tenant="bench"):
            handle.write(orjson.dumps(item.to_json()) + b"\n")


def _floor(source: Path, scratch: Path, count: int, fmt: str, when: str) -> float:
    """Time the floor in a process of its own (the rows it holds would weigh on the imports'
    memory): the bare executemany, then the same with p402's import page cache."""
    from p402.ledger.store import BULK_CACHE_MIB

    with ProcessPoolExecutor(1, get_context("spawn")) as child:
        seconds, cached = child.submit(_floor_times, source, scratch, count, fmt).result()
    _line(f"floor {when}: bare sqlite3 executemany", count, seconds)
    _line(f"  the same with p402's {BULK_CACHE_MIB} MiB import page cache", count, cached)
    return seconds


def _floor_times(source: Path, scratch: Path, count: int, fmt: str) -> tuple[float, float]:
    """A bare sqlite3 executemany of the very rows p402 stores, into the same table and indexes;
    and the same with the import's page cache."""
    from p402.ingest import importer
    from p402.ingest.importer import Pipeline
    from p402.ledger.store import BULK_CACHE_MIB

    importer._start_worker(fmt, Pipeline(tenant="bench", source=f"import:{fmt}"))
    rows = [row for span in importer.spans(source) for row in importer._read_part(source, span)[0]]
    assert len(rows) == count
    database = scratch / f"floor-{fmt}.db"
    bare = _executemany(database, rows, cache_mib=None)
    return bare, _executemany(database, rows, cache_mib=BULK_CACHE_MIB)


def _executemany(database: Path, rows: list[tuple[object, ...]], *, cache_mib: int | None) -> float:
    from p402.ledger.schema import EVENT_COLUMNS
    from p402.ledger.store import Ledger

    Ledger.open(str(database)).close()  # creates the schema
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    if cache_mib is not None:
        connection.execute(f"PRAGMA cache_size = -{cache_mib * 1024}")
    marks = ", ".join("?" * len(EVENT_COLUMNS))
    start = time.perf_counter()
    insert = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({marks})"  # noqa: S608 (our columns)
    with connection:
        connection.executemany(insert, rows)
    seconds = time.perf_counter() - start
    connection.close()
    for leftover in database.parent.glob(f"{database.name}*"):
        leftover.unlink()
    return seconds


def _import(source: Path, database: Path, *, count: int, fmt: str, jobs: int | None) -> float:
    from p402.ingest.importer import default_jobs, import_files
    from p402.ledger.store import Ledger

    ledger = Ledger.open(str(database))
    with _Memory() as memory:
        start = time.perf_counter()
        summary = import_files(ledger, [source], tenant="bench", fmt=fmt, jobs=jobs)
        seconds = time.perf_counter() - start
    ledger.close()
    assert summary.new == count
    how = "1 process" if jobs == 1 else f"{default_jobs()} workers"
    _line(f"p402 import {fmt} -> SQLite, {how}", count, seconds, memory=memory.peak)
    return seconds


def _without_controls() -> contextlib.ExitStack[bool | None]:
    """The importer with its control records taken out: batches inserted as they come, no
    per-file record. Only for measuring what the records cost."""
    from unittest import mock

    from p402.ingest import importer

    def store(self: importer._Run, connection: Any, rows: list[tuple[Any, ...]]) -> None:
        assert self.ledger is not None
        self.ledger.insert_rows(connection, rows)

    def start(self: importer._Run, path: Path, connection: Any) -> None:
        self.flush(connection, final=True)

    def end(self: importer._Run, connection: Any) -> None:
        if not self.refused:
            self.flush(connection, final=True)

    stack = contextlib.ExitStack()
    for name, value in (("store", store), ("start_file", start), ("end_file", end)):
        stack.enter_context(mock.patch.object(importer._Run, name, value))
    return stack


def _controls(source: Path, scratch: Path, count: int) -> None:
    """The same import, one process, with and without control records, alternated."""
    from p402.ingest.importer import import_files
    from p402.ledger.store import Ledger

    timings: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(3):
        for controls in (False, True):
            database = scratch / f"controls-{controls}.db"
            ledger = Ledger.open(str(database))
            with contextlib.nullcontext() if controls else _without_controls():
                start = time.perf_counter()
                import_files(ledger, [source], tenant="bench", jobs=1)
                timings[controls].append(time.perf_counter() - start)
            ledger.close()
            for leftover in scratch.glob(f"{database.name}*"):
                leftover.unlink()
    without, with_ = (sorted(timings[flag])[1] for flag in (False, True))
    _line("import events, 1 process, without control records", count, without)
    _line("import events, 1 process, with control records", count, with_)
    print(f"  control records cost {100 * (with_ - without) / without:+.1f} % (medians of 3)")


def _attribute(database: Path, count: int) -> None:
    from p402.config import Rule
    from p402.ingest.reattribute import reattribute
    from p402.ledger.store import Ledger

    rules = (
        Rule(
            "support keys",
            (("api_key_id", "key_0*"),),
            (("department", "Customer Support"),),
            override=True,
        ),
        Rule("prod", (("tag.env", "prod"),), (("project", "production"),)),
    )
    ledger = Ledger.open(str(database))
    start = time.perf_counter()
    outcome = reattribute(ledger, tenant="bench", rules=rules)
    _line(f"p402 attribute ({outcome.changed:,} changed)", count, time.perf_counter() - start)
    ledger.close()


def main() -> None:
    """Write the files, then time the floors, the imports and re-attribution."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--skip-one-process", action="store_true", help="only the default --jobs")
    parser.add_argument(
        "--controls", action="store_true", help="only what the control records cost"
    )
    args = parser.parse_args()
    if args.controls:
        with tempfile.TemporaryDirectory() as folder:
            source = Path(folder) / "events.jsonl"
            _write_events(source, args.count)
            print(
                f"\n{args.count:,} events rows ({source.stat().st_size / 1e6:,.0f} MB of JSON Lines)"
            )
            _controls(source, Path(folder), args.count)
        return
    jobs: list[int | None] = [None] if args.skip_one_process else [1, None]
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        source = scratch / "events.jsonl"
        _write_events(source, args.count)
        usage = scratch / "usage.jsonl"
        _openai_usage(usage, args.count)
        for path, fmt in ((source, "events"), (usage, "openai-usage")):
            size = path.stat().st_size / 1e6
            print(f"\n{args.count:,} {fmt} rows ({size:,.0f} MB of JSON Lines)")
            # This machine's speed drifts from minute to minute: the floor is measured before
            # and after the imports, and each ratio is to the mean of the two.
            before = _floor(path, scratch, args.count, fmt, "before")
            took = {}
            for each in jobs:
                database = scratch / f"{fmt}-{each}.db"
                took[each] = _import(path, database, count=args.count, fmt=fmt, jobs=each)
                if fmt == "events" and each is None:
                    _attribute(database, args.count)
                for leftover in scratch.glob(f"{database.name}*"):
                    leftover.unlink()
            floor = (before + _floor(path, scratch, args.count, fmt, "after")) / 2
            for each, seconds in took.items():
                how = "1 process" if each == 1 else "workers"
                print(f"  import {fmt}, {how}: {seconds / floor:.2f}x the floor (mean of the two)")
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

    from p402.ingest.importer import import_files
    from p402.ledger.store import Ledger

    schema = f"p402_bench_{time.time_ns()}"
    admin = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        ledger = Ledger.open(f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}")
        with _Memory() as memory:
            start = time.perf_counter()
            summary = import_files(ledger, [source], tenant="bench")
            seconds = time.perf_counter() - start
        assert summary.new == count
        _line("p402 import events -> PostgreSQL (COPY)", count, seconds, memory=memory.peak)
        ledger.close()
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
