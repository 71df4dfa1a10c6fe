"""`p402 serve` as an operator runs it: a real process (two uvicorn workers, configured through
the environment by the CLI), used over HTTP, then stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_cli import P402, run

pytestmark = pytest.mark.slow  # a real server, browser or fuzzing run: not in make test-fast


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_up(base: str) -> None:
    """Wait for a starting ``p402 serve`` at *base* to answer its health check (20 s at most)."""
    for _ in range(400):
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"p402 serve at {base} did not start")


def answer_json(handler: BaseHTTPRequestHandler, payload: dict[str, Any]) -> None:
    """Answer a stand-in upstream's request with *payload*, 200, as JSON."""
    body = json.dumps(payload).encode()
    handler.send_response(200)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def test_serve_runs_as_a_process_with_workers(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    assert run("tenant", "create", "acme", "--db", db).returncode == 0
    key = run("apikey", "create", "--tenant", "acme", "--db", db).stdout.strip()
    private = tmp_path / "keys" / "p402-signing.key"
    assert run("keys", "create", "--out", str(tmp_path / "keys")).returncode == 0
    port = _free_port()
    server = subprocess.Popen(
        [P402, "serve", "--port", str(port), "--workers", "2", "--db", db, "--key", str(private),
         "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "P402_DATABASE_URL": ""},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base)
        headers = {"Authorization": f"Bearer {key}"}
        events = [
            {"event_id": f"e{n}", "occurred_at": "2026-10-05T10:00:00Z", "provider": "openai",
             "model": "gpt-4o", "cost": "1.25", "department": "eng"}
            for n in range(40)
        ]  # fmt: skip
        # Posted one at a time, so both workers take some.
        statuses = [
            httpx.post(f"{base}/v1/events", json=event, headers=headers).json()["accepted"]
            for event in events
        ]
        assert statuses == [1] * 40
        summary = httpx.get(f"{base}/v1/summary?period=2026-10", headers=headers).json()
        assert summary["total"] == {
            "cost": "50",
            "cost_rounded": "50.00",
            "events": 40,
            "unpriced_events": 0,
        }
        assert (
            httpx.get(f"{base}/v1/summary", headers={"X-P402-Key": "p402_nope"}).status_code == 401
        )
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr


def test_serve_refuses_a_bad_configuration_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "p402.toml").write_text('[[budgets]]\nname = "x"\nscope = "planet"\n')
    refused = subprocess.run(
        [P402, "serve", "--db", str(tmp_path / "l.db"), "--config", str(tmp_path / "p402.toml")],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "p402.toml" in refused.stderr
