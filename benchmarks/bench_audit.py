"""Benchmark the demo audit end to end at 50,000 and 500,000 events.

Prints, for each stage: seconds, events per second, and the process's peak resident memory
after the stage (each size runs in a fresh process, so the peak belongs to that run). Run:

    .venv/bin/python benchmarks/bench_audit.py [--sizes 50000,500000] [--db URL]

No figure here is asserted anywhere; the closing notes of issues quote them.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(count: int, db: str | None) -> None:
    """One size, in this process: generate, store, audit (timed by stage), verify."""
    from p402.audit import run_audit
    from p402.bundles.signing import generate
    from p402.bundles.verify import verify_bundle
    from p402.ledger import demo
    from p402.ledger.store import Ledger
    from p402.period import parse_period

    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as scratch:
        ledger = Ledger.open(db or str(Path(scratch) / "bench.db"))
        clock = time.perf_counter()
        ledger.add(demo.generate(count=count, tenant=f"bench{count}"))
        rows.append(("generate + price + store", time.perf_counter() - clock, _peak_mb()))

        marks: list[tuple[str, float]] = []

        def step(stage: str, _done: int, _total: int) -> None:
            if not marks or marks[-1][0] != stage:
                marks.append((stage, time.perf_counter()))
                if len(marks) > 1:
                    rows.append((marks[-2][0], marks[-1][1] - marks[-2][1], _peak_mb()))

        key = generate()
        start = time.perf_counter()
        result = run_audit(ledger, tenant=f"bench{count}", period=parse_period(demo.DEMO_PERIOD), key=key,
                           out_dir=Path(scratch) / "out", step=step)  # fmt: skip
        end = time.perf_counter()
        rows.append((marks[-1][0] + " + zip", end - marks[-1][1], _peak_mb()))
        rows.append(("audit, all stages", end - start, _peak_mb()))
        clock = time.perf_counter()
        outcome = verify_bundle(result.bundle, key.public)
        rows.append(("verify", time.perf_counter() - clock, _peak_mb()))
        size = result.bundle.stat().st_size
        ledger.close()
    assert outcome.valid, outcome.problems
    print(f"\n{count:,} events  (bundle {size / 1e6:.1f} MB, total ${result.summary.total:,})")
    print(f"  {'stage':34} {'seconds':>9} {'events/s':>11} {'peak RSS MB':>12}")
    for stage, seconds, peak in rows:
        print(f"  {stage:34} {seconds:9.2f} {count / seconds:11,.0f} {peak:12,.0f}")


def main() -> None:
    """Run each size in its own process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,500000")
    parser.add_argument("--db", default=None, help="ledger URL (default: a fresh SQLite file)")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one, args.db)
        return
    for size in (int(s) for s in args.sizes.split(",")):
        command = [sys.executable, __file__, "--one", str(size)] + (
            ["--db", args.db] if args.db else []
        )
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
