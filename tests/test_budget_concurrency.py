"""A hard budget holds under concurrency: 48 chat calls at once through ``p402 serve`` with 1, 2
and 4 worker processes, on SQLite and PostgreSQL, against an upstream slow enough that every
call is in flight before the first one ends. Before calls in flight counted, all 40 of such a
burst were admitted: 17 times the limit.

Each test prints the overshoot it saw (spend minus limit); the bound it checks is the one the
README states: while calls name their ``max_tokens``, a window ends below its limit plus the
cost of one call, whatever the number of workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_cli import P402, run
from tests.test_serve_process import _free_port, answer_json, wait_until_up

pytestmark = pytest.mark.slow  # real servers with several workers: not in make test-fast

LIMIT = Decimal("0.02")
CALLS = 48
MAX_TOKENS = 1_000
# gpt-4o: $2.50 per million input tokens, $10 per million output tokens.
PER_CALL_MOST = (
    Decimal(MAX_TOKENS) * Decimal("10") / 10**6 + Decimal(4_000) * Decimal("2.5") / 10**6
)


class _Slow(BaseHTTPRequestHandler):
    """An OpenAI-compatible upstream that answers after 0.4 s with usage within the request's
    own bounds: input no more than a token per 4 bytes of the body, output its max_tokens."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        asked = json.loads(body)
        time.sleep(0.4)
        answer_json(self, {
            "id": "chatcmpl-same", "object": "chat.completion", "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                         "finish_reason": "length"}],
            "usage": {"prompt_tokens": len(body) // 4, "completion_tokens": asked["max_tokens"],
                      "total_tokens": len(body) // 4 + asked["max_tokens"]},
        })  # fmt: skip

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_a_hard_budget_holds_with_calls_in_flight(
    tmp_path: Path, database: str, workers: int
) -> None:
    db, store = database, "sqlite" if database.endswith(".db") else "postgresql"
    tenant = f"burst-{uuid.uuid4().hex[:10]}"
    assert run("tenant", "create", tenant, "--db", db).returncode == 0
    key = run("apikey", "create", "--tenant", tenant, "--db", db).stdout.strip()
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    config = tmp_path / "p402.toml"
    config.write_text(
        f'[[budgets]]\nname = "capped daily"\nscope = "department"\nvalue = "Capped"\n'
        f'window = "day"\nlimit = "{LIMIT}"\n\n'
        f'[upstreams]\nopenai = {{ base_url = "http://127.0.0.1:{upstream.server_port}/v1" }}\n'
    )
    port = _free_port()
    server = subprocess.Popen(
        [P402, "serve", "--port", str(port), "--workers", str(workers), "--db", db,
         "--config", str(config), "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "P402_DATABASE_URL": ""},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}", "X-P402-Department": "Capped"}
    body = {"model": "gpt-4o", "max_tokens": MAX_TOKENS,
            "messages": [{"role": "user", "content": "Summarise the quarter."}]}  # fmt: skip
    try:
        wait_until_up(base)
        with httpx.Client(timeout=60) as client:
            # Every worker up and connected before the burst (one call each would already spend).
            for _ in range(workers * 4):
                client.get(f"{base}/healthz")
            with ThreadPoolExecutor(CALLS) as pool:
                statuses = list(pool.map(
                    lambda _: client.post(f"{base}/v1/chat/completions", json=body,
                                          headers=headers).status_code,
                    range(CALLS),
                ))  # fmt: skip
            period = datetime.now(UTC).strftime("%Y-%m")
            summary: dict[str, Any] = {}
            for _ in range(100):  # the last events are stored after their answers
                summary = client.get(f"{base}/v1/summary?period={period}", headers=headers).json()
                if summary["total"]["events"] == CALLS:
                    break
                time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
        upstream.shutdown()
        upstream.server_close()
    admitted, refused = statuses.count(200), statuses.count(429)
    assert admitted + refused == CALLS, statuses
    assert summary["total"]["events"] == CALLS  # refused calls are recorded too, at no cost
    spent = Decimal(summary["total"]["cost"])
    overshoot = spent - LIMIT
    print(f"\n{store}, {workers} worker(s): {admitted} of {CALLS} admitted, {spent} USD spent "
          f"against {LIMIT} USD: overshoot {overshoot} USD")  # fmt: skip
    assert admitted >= 1
    assert spent < LIMIT + PER_CALL_MOST, (spent, admitted)
    # One worker: uvicorn ends by raising the SIGTERM it handled again, after a graceful stop.
    assert server.returncode in ((0, -signal.SIGTERM) if workers == 1 else (0,)), stderr.decode()
    assert b"Traceback" not in stderr
