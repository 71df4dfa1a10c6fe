"""``kill -9`` under load, twice, on SQLite and PostgreSQL: no acknowledged event is lost and
none is stored twice. Meter clients post batches while the server (two workers) is killed
with SIGKILL; every batch that was answered 200 must be in the ledger after a restart, and
sending every batch again (as a client that never heard back does) stores each event once."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from p402.ledger.store import Ledger
from tests.test_cli import P402, run
from tests.test_serve_process import _free_port, wait_until_up

pytestmark = pytest.mark.slow  # real servers killed and restarted: not in make test-fast

BATCHES, PER_BATCH = 120, 25


def _batch(number: int) -> list[dict[str, Any]]:
    return [
        {"event_id": f"b{number}-{n}", "occurred_at": "2026-10-05T10:00:00Z", "provider": "openai",
         "model": "gpt-4o", "cost": "0.01", "department": "eng"}
        for n in range(PER_BATCH)
    ]  # fmt: skip


class _Server:
    def __init__(self, tmp_path: Path, db: str) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [P402, "serve", "--port", str(self.port), "--workers", "2", "--db", db,
             "--data-dir", str(tmp_path / "data")],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "P402_DATABASE_URL": ""}, start_new_session=True,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until_up(self.url)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)  # the server and its workers, at once
        self.process.wait(timeout=30)


def _post_all(url: str, key: str, numbers: list[int], acknowledged: set[int]) -> None:
    """Post the batches from four threads until they are done or the server is gone."""

    def worker(mine: list[int]) -> None:
        with httpx.Client(timeout=10) as client:
            for number in mine:
                try:
                    answer = client.post(f"{url}/v1/events", json=_batch(number),
                                         headers={"X-P402-Key": key})  # fmt: skip
                except httpx.TransportError:
                    return
                if answer.status_code == 200:
                    acknowledged.add(number)

    threads = [threading.Thread(target=worker, args=(numbers[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _stored(db: str, tenant: str) -> tuple[int, set[str]]:
    ledger = Ledger.open(db)
    try:
        ids = [event.event_id for event in ledger.stream(tenant)]
        return len(ids), set(ids)
    finally:
        ledger.close()


def test_kill_9_twice_under_load_loses_and_repeats_nothing(tmp_path: Path, database: str) -> None:
    db = database
    tenant = f"crash-{uuid.uuid4().hex[:10]}"
    assert run("tenant", "create", tenant, "--db", db).returncode == 0
    key = run("apikey", "create", "--tenant", tenant, "--db", db).stdout.strip()
    every = list(range(BATCHES))
    acknowledged: set[int] = set()
    for _round in range(2):
        server = _Server(tmp_path, db)
        posting = threading.Thread(target=_post_all, args=(server.url, key, every, acknowledged))
        posting.start()
        time.sleep(1.0)
        server.kill()  # mid-load
        posting.join()
        count, ids = _stored(db, tenant)
        missing = {f"b{n}-{i}" for n in acknowledged for i in range(PER_BATCH)} - ids
        assert not missing, f"{len(missing)} acknowledged events lost"
        assert count == len(ids)  # none twice
    # A client that never heard back sends everything again: each event is stored once.
    server = _Server(tmp_path, db)
    try:
        done: set[int] = set()
        _post_all(server.url, key, every, done)
    finally:
        server.kill()
    count, ids = _stored(db, tenant)
    assert (count, len(ids)) == (BATCHES * PER_BATCH, BATCHES * PER_BATCH)
    assert acknowledged, "the server was killed before it answered anything: no test"
