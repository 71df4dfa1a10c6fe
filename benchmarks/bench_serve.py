"""Benchmark ``p402 serve``: meter throughput, single-event latency and the proxy's overhead.

Everything runs as real processes on this machine: ``p402 serve --workers N`` against a fresh
PostgreSQL database (created here, dropped afterwards), load generators in processes of their
own (asyncio + httpx), a fake OpenAI upstream (a bare ASGI app under uvicorn) and, unless
skipped, the LiteLLM proxy in its own venv (``benchmarks/.venv-litellm``, made on first use).

1. meter: batches of 1,000 events for ``--seconds``; then COUNT(*) and SUM(cost_units) in the
   database must equal what the server acknowledged (every event carries an explicit cost);
2. latency: single-event POSTs from 50 concurrent clients, p50/p95/p99;
3. proxy: sequential chat completions, plain and streamed, interleaved request by request
   through direct → upstream, p402 → upstream and LiteLLM → upstream; the added latency is
   proxy minus direct.

    .venv/bin/python benchmarks/bench_serve.py [--seconds 60] [--skip-litellm]

No figure here is asserted anywhere: misses are marked in the closing table, the exit code is 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
LITELLM_VENV = HERE / ".venv-litellm"
# Pinned: newer releases need a ``litellm-proxy`` distribution the registry does not carry,
# and 1.107.0 was a compromised release; this one predates it.
LITELLM = "litellm[proxy]==1.106.12"
MODEL = "gpt-4o-mini"
UPSTREAM_KEY = "sk-bench-upstream"
LITELLM_KEY = f"sk-{secrets.token_hex(32)}"
TARGETS = {"meter": 20_000.0, "p99": 50.0, "added_median": 2.0, "added_p99": 10.0}

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


# --- the fake upstream: a bare ASGI app answering chat completions -----------------------------


def _completion(serial: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-bench{os.getpid()}x{serial}", "object": "chat.completion",
        "created": 1_790_000_000, "model": MODEL, "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": "Hello! How can I help?"}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19,
                  "prompt_tokens_details": {"cached_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0}},
    }  # fmt: skip


def _chunks(serial: int, include_usage: bool) -> Iterator[bytes]:
    base = {"id": f"chatcmpl-bench{os.getpid()}x{serial}", "object": "chat.completion.chunk",
            "created": 1_790_000_000, "model": MODEL, "system_fingerprint": "fp_bench"}  # fmt: skip
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": word} for word in ("Hello", "! How", " can I", " help?")]
    for delta in deltas:
        choice = {"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}
        yield b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n"
    last = {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}
    yield b"data: " + orjson.dumps({**base, "choices": [last]}) + b"\n\n"
    if include_usage:
        usage = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
        yield b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
    yield b"data: [DONE]\n\n"


class _Upstream:
    """What the upstream process serves: a fixed completion, or a stream of a few chunks."""

    def __init__(self) -> None:
        self.serial = 0

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        request = orjson.loads(body) if body.strip() else {}
        self.serial += 1
        if not request.get("stream"):
            answer = orjson.dumps(_completion(self.serial))
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})  # fmt: skip
            await send({"type": "http.response.body", "body": answer})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"),
                                (b"cache-control", b"no-cache")]})  # fmt: skip
        options = request.get("stream_options") or {}
        for chunk in _chunks(self.serial, options.get("include_usage") is True):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def _serve_upstream(port: int) -> None:
    import uvicorn

    uvicorn.run(_Upstream(), host="127.0.0.1", port=port, log_level="warning",
                access_log=False, lifespan="off")  # fmt: skip


# --- load generators (child processes) ---------------------------------------------------------


def _event(prefix: str, serial: int) -> tuple[dict[str, Any], int]:
    """One canonical event and its cost in storage units (10**-12 USD)."""
    micros = serial % 9_973 + 1  # a cost of 1 to 9,973 millionths of a dollar, exactly
    return {
        "event_id": f"{prefix}-{serial}", "provider": "openai", "model": MODEL,
        "occurred_at": f"2026-10-{1 + serial % 28:02d}T{serial % 24:02d}:{serial % 60:02d}:00Z",
        "input_tokens": 1_000 + serial % 500, "output_tokens": 200 + serial % 100,
        "cost": f"0.{micros:06d}", "department": f"dept-{serial % 7}",
        "customer": f"cust-{serial % 101}", "workflow": f"flow-{serial % 13}",
    }, micros * 10**6  # fmt: skip


@dataclass
class _Tally:
    """What one load generator sent and what the server acknowledged."""

    sent: int = 0
    acked: int = 0
    acked_units: int = 0
    errors: int = 0
    cpu: float = 0.0
    marks: list[tuple[float, int]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


async def _meter_worker(
    client: Any, spec: dict[str, Any], tally: _Tally, serials: Iterator[int]
) -> None:
    deadline = spec["start"] + spec["seconds"]
    while time.time() < deadline:
        events, units = [], 0
        for _ in range(spec["batch"]):
            item, cost = _event(spec["prefix"], next(serials))
            events.append(item)
            units += cost
        tally.sent += len(events)
        try:
            answer = await client.post("/v1/events", content=orjson.dumps(events))
            accepted = orjson.loads(answer.content)["accepted"] if answer.status_code == 200 else 0
        except Exception:  # a failed request is counted, never fatal: the count is the output
            accepted = 0
        if accepted == len(events):
            tally.acked += accepted
            tally.acked_units += units
            tally.marks.append((time.time(), accepted))
        else:
            tally.errors += 1


class _Connection:
    """One keep-alive HTTP/1.1 connection, by hand: a load generator that spends a tenth of
    httpx's CPU per request, so 50 clients measure the server rather than the client."""

    def __init__(self, url: str, key: str) -> None:
        self.host, _, port = url.removeprefix("http://").partition(":")
        self.port = int(port)
        self.head = (
            f"POST /v1/events HTTP/1.1\r\nHost: {self.host}\r\nX-P402-Key: {key}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


async def _single_worker(
    client: Any, spec: dict[str, Any], tally: _Tally, serials: Iterator[int]
) -> None:
    connection = _Connection(spec["url"], spec["key"])
    measured_from = spec["start"] + spec["warmup"]
    deadline = measured_from + spec["seconds"]
    while (now := time.time()) < deadline:
        item, cost = _event(spec["prefix"], next(serials))
        tally.sent += 1
        clock = time.perf_counter()
        try:
            status, content = await connection.post(orjson.dumps(item))
            ok = status == 200 and orjson.loads(content)["accepted"] == 1
        except Exception:  # a failed request is counted, never fatal: the count is the output
            ok = False
            connection = _Connection(spec["url"], spec["key"])
        elapsed = (time.perf_counter() - clock) * 1000
        if not ok:
            tally.errors += 1
            continue
        tally.acked += 1
        tally.acked_units += cost
        if now >= measured_from:
            tally.latencies.append(elapsed)


async def _generate(spec: dict[str, Any]) -> _Tally:
    import itertools

    import httpx

    tally = _Tally()
    serials = itertools.count()
    limits = httpx.Limits(
        max_connections=spec["concurrency"], max_keepalive_connections=spec["concurrency"]
    )
    headers = {"X-P402-Key": spec["key"], "Content-Type": "application/json"}
    async with httpx.AsyncClient(
        base_url=spec["url"], headers=headers, limits=limits, timeout=120
    ) as client:
        await asyncio.sleep(max(0.0, spec["start"] - time.time()))
        worker = _meter_worker if spec["role"] == "meter" else _single_worker
        await asyncio.gather(
            *(worker(client, spec, tally, serials) for _ in range(spec["concurrency"]))
        )
    return tally


def _run_generator(spec: dict[str, Any]) -> None:
    """Child process: run one load generator, write its tally as JSON to the file it is given
    (not stdout, which anything in the child could write to)."""
    tally = _generate_blocking(spec)
    tally.cpu = time.process_time()
    Path(spec["tally"]).write_text(json.dumps(tally.__dict__))


def _generate_blocking(spec: dict[str, Any]) -> _Tally:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    return asyncio.run(_generate(spec))


# --- processes, ports, the database ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_http(url: str, process: subprocess.Popen[bytes], seconds: float, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{url} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.25)
    sys.exit(f"{url} did not answer in {seconds:.0f} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def _process(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run *command* in a session of its own; stop that session (and only it) afterwards."""
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)  # fmt: skip
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def _database(admin_url: str) -> Iterator[str]:
    """A fresh database on the server at *admin_url*, dropped afterwards."""
    import psycopg

    name = f"p402_bench_serve_{time.time_ns()}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _stored(url: str, tenant: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT COUNT(*), COALESCE(SUM(cost_units), 0) FROM events WHERE tenant = %s", (tenant,)
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _sessions(url: str) -> int:
    """Connections ever opened to the benchmark's database (a pool that churns shows here)."""
    import psycopg

    time.sleep(1.0)  # backends report their statistics about once a second
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return 0 if row is None else int(row[0])


def _p402(*args: str) -> str:
    done = subprocess.run([str(BIN / "p402"), *args], check=True, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def _process_cpu() -> dict[int, tuple[int, str, float]]:
    """Every process's parent, name and CPU seconds, its own plus its reaped children's (a
    PostgreSQL backend that exits leaves its time in the postmaster's)."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                name, _, rest = (entry / "stat").read_text().partition(" (")[2].rpartition(")")
                fields = rest.split()
                used = sum(int(value) for value in fields[11:15]) / tick
                found[int(entry.name)] = (int(fields[1]), name, used)
    return found


def _cpu_seconds(root: int) -> tuple[float, float]:
    """CPU seconds used so far by process *root* with its descendants, and by PostgreSQL."""
    table = _process_cpu()
    tree = {root}
    for _ in range(4):  # p402 serve → uvicorn's workers → their helpers: a few levels are plenty
        tree |= {pid for pid, (parent, _name, _cpu) in table.items() if parent in tree}
    server = sum(table[pid][2] for pid in tree if pid in table)
    database = sum(cpu for _parent, name, cpu in table.values() if name == "postgres")
    return server, database


def _spawn_generators(specs: list[dict[str, Any]]) -> list[_Tally]:
    with tempfile.TemporaryDirectory(prefix="p402-bench-") as scratch:
        files = [Path(scratch) / f"tally-{n}.json" for n in range(len(specs))]
        children = [
            subprocess.Popen(
                [sys.executable, __file__, "--child", json.dumps({**spec, "tally": str(path)})]
            )
            for spec, path in zip(specs, files, strict=True)
        ]
        tallies = []
        for child, path in zip(children, files, strict=True):
            child.wait()
            if child.returncode or not path.exists():
                raise SystemExit(f"a load generator failed (exit {child.returncode})")
            found = json.loads(path.read_text())
            found["marks"] = [tuple(mark) for mark in found["marks"]]
            tallies.append(_Tally(**found))
    return tallies


# --- the three measurements --------------------------------------------------------------------


@dataclass
class _Run:
    """The running server and what the closing table will show."""

    args: argparse.Namespace
    db: str
    url: str
    keys: dict[str, str]
    server: subprocess.Popen[bytes]
    rows: list[tuple[str, str, str, bool | None]] = field(default_factory=list)

    def row(self, measure: str, result: str, target: str = "", ok: bool | None = None) -> None:
        self.rows.append((measure, result, target, ok))


def _spec(
    run: _Run, role: str, tenant: str, *, prefix: str, concurrency: int, start: float
) -> dict[str, Any]:
    args = run.args
    seconds = args.seconds if role == "meter" else args.latency_seconds
    return {"role": role, "url": run.url, "key": run.keys[tenant], "prefix": prefix,
            "batch": args.batch, "concurrency": concurrency, "start": start,
            "warmup": args.warmup, "seconds": args.warmup + seconds if role == "meter" else seconds}  # fmt: skip


def _loaded(run: _Run, specs: list[dict[str, Any]]) -> tuple[list[_Tally], float, float]:
    """Run the generators; their tallies, and the CPU seconds the server and PostgreSQL used."""
    server, database = _cpu_seconds(run.server.pid)
    tallies = _spawn_generators(specs)
    server_after, database_after = _cpu_seconds(run.server.pid)
    return tallies, server_after - server, database_after - database


def _check_stored(run: _Run, tenant: str, tallies: list[_Tally], label: str) -> None:
    acked = sum(t.acked for t in tallies)
    units = sum(t.acked_units for t in tallies)
    errors = sum(t.errors for t in tallies)
    count, total = _stored(run.db, tenant)
    ok = count == acked and total == units and errors == 0
    print(f"  database: {count:,} events, SUM(cost_units) {total:,}; acknowledged {acked:,}, "
          f"{units:,}; failed requests {errors:,} -> {'equal' if ok else 'MISMATCH'}")  # fmt: skip
    run.row(f"{label}: nothing lost (count, sum)", "equal" if ok else "MISMATCH", "equal", ok)


def _meter(run: _Run) -> None:
    args = run.args
    start = time.time() + 1.0
    print(f"\n1. meter: batches of {args.batch:,} for {args.seconds} s (+{args.warmup} s warm-up); "
          f"server --workers {args.workers}; {args.generators} generator process(es) x "
          f"{args.inflight} requests in flight")  # fmt: skip
    specs = [
        _spec(run, "meter", "bench-meter", prefix=f"m{n}", concurrency=args.inflight, start=start)
        for n in range(args.generators)
    ]
    tallies, server_cpu, database_cpu = _loaded(run, specs)
    measured_from = start + args.warmup
    marks = sorted(mark for tally in tallies for mark in tally.marks if mark[0] >= measured_from)
    if not marks:
        run.row("meter events/s", "no batch acknowledged", f">= {TARGETS['meter']:,.0f}", False)
        return
    seconds = marks[-1][0] - measured_from
    rate = sum(n for _, n in marks) / seconds
    windows = [sum(n for when, n in marks if first <= when - measured_from < first + 10) / 10
               for first in range(0, int(seconds) - 9, 10)]  # fmt: skip
    total = sum(t.acked for t in tallies)
    print(
        f"  {rate:,.0f} events/s over {seconds:.1f} s; per 10 s: "
        + ", ".join(f"{w:,.0f}" for w in windows)
    )
    client_cpu = sum(t.cpu for t in tallies)
    print(f"  CPU per 1,000 events: server {server_cpu / total * 1e6:.1f} ms, PostgreSQL "
          f"{database_cpu / total * 1e6:.1f} ms, load generators {client_cpu / total * 1e6:.1f} ms; "
          f"PostgreSQL sessions opened so far: {_sessions(run.db):,}")  # fmt: skip
    low = min(windows, default=rate)
    run.row(f"meter events/s ({args.seconds} s, batch {args.batch:,})", f"{rate:,.0f} (min 10 s: {low:,.0f})",
            f">= {TARGETS['meter']:,.0f}", rate >= TARGETS["meter"])  # fmt: skip
    _check_stored(run, "bench-meter", tallies, "meter")


def _latency(run: _Run) -> None:
    args = run.args
    per = -(-args.clients // args.client_procs)
    print(f"\n2. single-event POSTs: {args.clients} concurrent clients ({args.client_procs} process(es) "
          f"x {per}) for {args.latency_seconds} s after {args.warmup} s warm-up")  # fmt: skip
    start = time.time() + 1.0
    specs = [
        _spec(run, "single", "bench-single", prefix=f"s{n}", concurrency=per, start=start)
        for n in range(args.client_procs)
    ]
    tallies, server_cpu, database_cpu = _loaded(run, specs)
    latencies = sorted(x for tally in tallies for x in tally.latencies)
    if len(latencies) < 100:
        run.row("single-event p99 ms", "too few answers", f"<= {TARGETS['p99']:.0f}", False)
        return
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    p50, p95, p99 = statistics.median(latencies), cuts[94], cuts[98]
    print(f"  {len(latencies):,} requests ({len(latencies) / args.latency_seconds:,.0f}/s): "
          f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms")  # fmt: skip
    total = sum(t.acked for t in tallies)
    client_cpu = sum(t.cpu for t in tallies)
    print(f"  CPU per request: server {server_cpu / total * 1e3:.2f} ms, PostgreSQL "
          f"{database_cpu / total * 1e3:.2f} ms, clients {client_cpu / total * 1e3:.2f} ms; "
          f"PostgreSQL sessions opened so far: {_sessions(run.db):,}")  # fmt: skip
    run.row(f"single-event p50 / p95 ({args.clients} clients)", f"{p50:.1f} / {p95:.1f} ms")
    run.row(f"single-event p99 ({args.clients} clients)", f"{p99:.1f} ms", f"<= {TARGETS['p99']:.0f} ms",
            p99 <= TARGETS["p99"])  # fmt: skip
    _check_stored(run, "bench-single", tallies, "single")


# --- 3. the proxy's overhead -------------------------------------------------------------------


def _litellm_bin() -> Path:
    """The ``litellm`` command of the benchmark's own venv, made on first use (never p402's:
    LiteLLM's pins would fight ours)."""
    command = LITELLM_VENV / "bin" / "litellm"
    if not command.exists():
        print(f"creating {LITELLM_VENV} with {LITELLM} (once)")
        subprocess.run(["python3", "-m", "venv", str(LITELLM_VENV)], check=True)
        pip = [
            str(LITELLM_VENV / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ]
        subprocess.run([*pip, LITELLM], check=True)
    return command


def _litellm(scratch: Path, upstream: str) -> tuple[list[str], dict[str, str], int]:
    """The command, environment and port that run LiteLLM against the fake upstream; with a
    master key (LiteLLM refuses to start without one), as p402 needs its own key."""
    config = scratch / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {upstream}/v1\n"
        f"      api_key: {UPSTREAM_KEY}\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
    )
    port = _free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
           "LITELLM_TELEMETRY": "False"}  # fmt: skip
    command = [str(_litellm_bin()), "--config", str(config), "--host", "127.0.0.1",
               "--port", str(port), "--num_workers", "1"]  # fmt: skip
    return command, env, port


def _call(client: Any, stream: bool) -> float:
    """One chat completion, read to its last byte; milliseconds."""
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    clock = time.perf_counter()
    if stream:
        with client.stream("POST", "/v1/chat/completions", json=body) as answer:
            data = b"".join(answer.iter_bytes())
        ok = answer.status_code == 200 and b"[DONE]" in data
    else:
        answer = client.post("/v1/chat/completions", json=body)
        data = answer.content
        ok = answer.status_code == 200 and b'"usage"' in data
    elapsed = (time.perf_counter() - clock) * 1000
    if not ok:
        raise RuntimeError(f"{client.base_url} answered {answer.status_code}: {data[:300]!r}")
    return elapsed


def _proxy_paths(run: _Run, upstream: str, litellm: str | None) -> dict[str, Any]:
    import httpx

    bearer = {"Authorization": f"Bearer {UPSTREAM_KEY}"}
    bases = {
        "direct": (upstream, bearer),
        "p402": (run.url, {**bearer, "X-P402-Key": run.keys["bench-single"]}),
    }
    if litellm is not None:
        bases["litellm"] = (litellm, {"Authorization": f"Bearer {LITELLM_KEY}"})
    return {
        name: httpx.Client(base_url=base, headers=headers, timeout=30)
        for name, (base, headers) in bases.items()
    }


def _paused(groups: dict[str, int], running: str) -> None:
    """Let only the *running* proxy (and the upstream) use the CPU: the other proxy's process
    group is stopped, so its background work (LiteLLM keeps some) does not slow the one being
    measured on a 2-core machine."""
    for name, group in groups.items():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGCONT if name == running else signal.SIGSTOP)


_BLOCK = 100
"""Requests per path before the measurement switches to the other proxy."""


def _proxy(run: _Run, upstream: str, litellm: str | None, peer_group: int | None = None) -> None:
    args = run.args
    clients = _proxy_paths(run, upstream, litellm)
    groups = {"p402": run.server.pid}
    if peer_group is not None:
        groups["litellm"] = peer_group
    print(f"\n3. proxy overhead: {args.requests:,} sequential chat completions per path after "
          f"{args.proxy_warmup} warm-up; each proxy interleaved request by request with direct "
          f"calls, in blocks of {_BLOCK} with the other proxy's processes stopped")  # fmt: skip
    if litellm is not None:
        print(f"  peer: {LITELLM.replace('[proxy]', '')}, 1 worker, no database (p402 stores every "
              "call in PostgreSQL; LiteLLM without a database keeps no spend log)")  # fmt: skip
    try:
        for stream in (False, True):
            _measure(run, clients, groups, stream)
    finally:
        _paused(groups, "")
        for group in groups.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGCONT)
        for client in clients.values():
            client.close()


def _measure(run: _Run, clients: dict[str, Any], groups: dict[str, int], stream: bool) -> None:
    args = run.args
    kind = "streamed" if stream else "plain"
    proxies = [name for name in clients if name != "direct"]
    samples: dict[str, list[float]] = {name: [] for name in proxies}
    baseline: dict[str, list[float]] = {name: [] for name in proxies}
    total = args.proxy_warmup + args.requests
    for start in range(0, total, _BLOCK):
        for name in proxies:
            _paused(groups, name)
            for serial in range(start, min(start + _BLOCK, total)):
                plain_call = _call(clients["direct"], stream)
                through = _call(clients[name], stream)
                if serial >= args.proxy_warmup:
                    baseline[name].append(plain_call)
                    samples[name].append(through)
    for name in proxies:
        direct = _median_p99(baseline[name])
        median, p99 = _median_p99(samples[name])
        print(
            f"  {kind:8} direct   median {direct[0]:6.2f} ms  p99 {direct[1]:6.2f} ms  (beside {name})"
        )
        print(f"  {kind:8} {name:8} median {median:6.2f} ms  p99 {p99:6.2f} ms  "
              f"added: median {median - direct[0]:+.2f} ms, p99 {p99 - direct[1]:+.2f} ms")  # fmt: skip
    direct = _median_p99(baseline["p402"])
    median, p99 = _median_p99(samples["p402"])
    added_median, added_p99 = median - direct[0], p99 - direct[1]
    run.row(f"proxy {kind}: added median", f"{added_median:.2f} ms", f"<= {TARGETS['added_median']:.0f} ms",
            added_median <= TARGETS["added_median"])  # fmt: skip
    run.row(f"proxy {kind}: added p99", f"{added_p99:.2f} ms", f"<= {TARGETS['added_p99']:.0f} ms",
            added_p99 <= TARGETS["added_p99"])  # fmt: skip
    if "litellm" in samples:
        peer_base = _median_p99(baseline["litellm"])
        peer = _median_p99(samples["litellm"])
        peer_added = (peer[0] - peer_base[0], peer[1] - peer_base[1])
        ratio = added_median / max(peer_added[0], 1e-9)
        ratio_p99 = added_p99 / max(peer_added[1], 1e-9)
        print(f"  {kind:8} p402 / litellm: added median {ratio:.2f}x, added p99 {ratio_p99:.2f}x")
        run.row(
            f"proxy {kind}: litellm added median / p99",
            f"{peer_added[0]:.2f} / {peer_added[1]:.2f} ms",
        )
        run.row(f"proxy {kind}: p402 / litellm (added median)", f"{ratio:.2f}x")


def _median_p99(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), statistics.quantiles(values, n=100, method="inclusive")[98]


# --- the run -----------------------------------------------------------------------------------


def _table(rows: list[tuple[str, str, str, bool | None]]) -> None:
    print(f"\n  {'measure':46} {'result':28} {'target':12} ")
    for measure, result, target, ok in rows:
        mark = "" if ok is None else "ok" if ok else "MISS"
        print(f"  {measure:46} {result:28} {target:12} {mark}")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add = parser.add_argument
    add("--seconds", type=int, default=60, help="meter run, after the warm-up")
    add("--postgres", default="postgresql://postgres@127.0.0.1:5432/test",
        help="an existing database of the server to use; the benchmark creates its own beside it")  # fmt: skip
    add("--workers", type=int, default=2, help="p402 serve --workers")
    add("--generators", type=int, default=2, help="meter load generator processes")
    add("--inflight", type=int, default=8, help="meter requests in flight per generator")
    add("--batch", type=int, default=1_000)
    add("--warmup", type=int, default=3, help="seconds of load not measured, parts 1 and 2")
    add("--clients", type=int, default=50)
    add("--client-procs", type=int, default=2, help="processes the 50 clients are spread over")
    add("--latency-seconds", type=int, default=20)
    add("--requests", type=int, default=2_000, help="sequential proxy requests per path and kind")
    add("--proxy-warmup", type=int, default=200)
    add("--parts", default="1,2,3", help="which measurements to run, e.g. 3")
    add("--skip-litellm", action="store_true", help="measure the proxy without the LiteLLM peer")
    add("--child", default=None, help=argparse.SUPPRESS)
    add("--upstream", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def _start(
    run_dir: Path, db: str, upstream_port: int, args: argparse.Namespace
) -> tuple[list[str], dict[str, str], int]:
    """Two tenants with a key each; the ``p402 serve`` command; its port."""
    config = run_dir / "p402.toml"
    config.write_text(
        f'[upstreams]\nopenai = {{ base_url = "http://127.0.0.1:{upstream_port}/v1" }}\n'
    )
    keys = {}
    for tenant in ("bench-meter", "bench-single"):
        _p402("tenant", "create", tenant, "--db", db)
        keys[tenant] = _p402("apikey", "create", "--tenant", tenant, "--db", db)
    port = _free_port()
    command = [str(BIN / "p402"), "serve", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(args.workers), "--db", db, "--config", str(config),
               "--data-dir", str(run_dir / "data")]  # fmt: skip
    return command, keys, port


def main() -> None:
    """Start the upstream and the server, run the chosen measurements, print the table."""
    args = _parse()
    if args.child:
        _run_generator(json.loads(args.child))
        return
    if args.upstream:
        _serve_upstream(args.upstream)
        return
    parts = {int(part) for part in args.parts.split(",")}
    litellm_wanted = 3 in parts and not args.skip_litellm
    if litellm_wanted:
        _litellm_bin()  # install before anything is timed
    print(
        f"machine: {os.cpu_count()} cores; server p402 serve --workers {args.workers} on PostgreSQL"
    )
    with tempfile.TemporaryDirectory() as folder, _database(args.postgres) as db:
        scratch = Path(folder)
        upstream_port = _free_port()
        upstream = f"http://127.0.0.1:{upstream_port}"
        command, keys, port = _start(scratch, db, upstream_port, args)
        upstream_command = [sys.executable, __file__, "--upstream", str(upstream_port)]
        with _process(upstream_command, scratch / "upstream.log") as fake, \
                _process(command, scratch / "serve.log") as server:  # fmt: skip
            _wait_http(f"{upstream}/healthz", fake, 30, scratch / "upstream.log")
            _wait_http(f"http://127.0.0.1:{port}/healthz", server, 60, scratch / "serve.log")
            run = _Run(args, db, f"http://127.0.0.1:{port}", keys, server)
            if 1 in parts:
                _meter(run)
            if 2 in parts:
                _latency(run)
            if 3 in parts:
                _part3(run, scratch, upstream, litellm_wanted)
    _table(run.rows)


def _part3(run: _Run, scratch: Path, upstream: str, litellm_wanted: bool) -> None:
    if not litellm_wanted:
        _proxy(run, upstream, None)
        return
    command, env, port = _litellm(scratch, upstream)
    with _process(command, scratch / "litellm.log", env) as peer:
        _wait_http(f"http://127.0.0.1:{port}/health/liveliness", peer, 180, scratch / "litellm.log")
        _proxy(run, upstream, f"http://127.0.0.1:{port}", peer.pid)


if __name__ == "__main__":
    main()
