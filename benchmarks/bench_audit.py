"""Benchmark the demo audit end to end at 50,000 and 500,000 events.

Prints, for each stage: seconds, events per second, and the process's peak resident memory
after the stage (each size runs in a fresh process, so the peak belongs to that run); then the
bundle's size beside the ledger's, and one receipt extracted and verified, beside the targets
of a million events. Run:

    .venv/bin/python benchmarks/bench_audit.py [--sizes 50000,500000] [--db URL] [--keep DIR]

``--keep DIR`` leaves each bundle and its public key there, to profile the verifier on it.

No figure here is asserted anywhere; the closing notes of issues quote them.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _receipt_timings(bundle: Path, public: object, count: int) -> list[float]:
    """Seconds to extract and verify the receipt of events spread over the ledger, each read
    through the lookup members (so no extraction reads the others)."""
    import zipfile

    from p402.bundles.canonical import loads
    from p402.bundles.receipt import _block_lines, receipt_from_bundle, verify_receipt

    ids = []
    with bundle.open("rb") as handle, zipfile.ZipFile(handle) as archive:
        line_at = _block_lines(archive, handle, count)
        for index in (0, count // 3, count // 2, count - 1, count * 7 // 8):
            lines, first = line_at(index)
            ids.append(loads(lines[index - first])["event_id"])
    timings = []
    for event_id in ids:
        clock = time.perf_counter()
        _, event = verify_receipt(receipt_from_bundle(bundle, event_id), [public])  # type: ignore[list-item]
        timings.append(time.perf_counter() - clock)
        assert event["event_id"] == event_id
    return timings


def run_one(count: int, db: str | None, keep: Path | None = None) -> None:
    """One size, in this process: generate, store, audit (timed by stage), verify."""
    from p402.audit import run_audit
    from p402.bundles.signing import generate
    from p402.bundles.verify import verify_bundle
    from p402.ingest import demo
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
        with zipfile.ZipFile(result.bundle) as archive:
            packed = {info.filename: info.compress_size for info in archive.infolist()}
        receipts = _receipt_timings(result.bundle, key.public, count)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(result.bundle, keep / result.bundle.name)
            (keep / f"{result.bundle.stem}.pub").write_bytes(key.public.pem())
        ledger.close()
    assert outcome.valid, outcome.problems
    files = {entry["path"]: entry["size"] for entry in result.manifest["files"]}  # type: ignore[attr-defined]
    print(f"\n{count:,} events  (bundle {size / 1e6:.1f} MB, total ${result.summary.total:,})")
    print(f"  {'stage':34} {'seconds':>9} {'events/s':>11} {'peak RSS MB':>12}")
    for stage, seconds, peak in rows:
        print(f"  {stage:34} {seconds:9.2f} {count / seconds:11,.0f} {peak:12,.0f}")
    sealing = sum(seconds for stage, seconds, _ in rows if stage.startswith(("Sealing", "Signing")))
    scale = 1_000_000 / count
    print(
        f"  seal + sign + zip: {sealing:.2f} s (target at 1M: 30 s; {sealing * scale:.1f} s scaled)"
    )
    print(f"  peak RSS: {max(peak for _, _, peak in rows):,.0f} MB (target: 1,024 MB)")
    print(f"  verify: {rows[-1][1]:.2f} s (target at 1M: 20 s; {rows[-1][1] * scale:.1f} s scaled)")
    _print_sizes(size, files, packed)
    print(
        f"  one receipt extracted + verified: first {receipts[0] * 1e3:.1f} ms, median "
        f"{statistics.median(receipts) * 1e3:.1f} ms, worst {max(receipts) * 1e3:.1f} ms (target: 50 ms)"
    )


def _print_sizes(size: int, files: dict[str, int], sizes: dict[str, int]) -> None:
    """The bundle's size beside the ledger's, and what each member takes in the zip."""
    events = files["ledger/events.jsonl"]
    print(f"  bundle {size / 1e6:.1f} MB, ledger {events / 1e6:.1f} MB: {size / events:.3f}x")
    print("    lookup members: " + ", ".join(
        f"{name} {files[name] / 1e6:.1f} MB"
        for name in ("merkle/tree.bin", "receipts/index.bin", "ledger/blocks.bin", "receipts/receipts.jsonl")
    ))  # fmt: skip
    print(
        "    in the zip: "
        + ", ".join(f"{name} {packed / 1e6:.1f} MB" for name, packed in sizes.items())
    )
    print(
        f"  ledger deflated in blocks: {sizes['ledger/events.jsonl'] / 1e6:.1f} MB "
        f"({events / sizes['ledger/events.jsonl']:.1f}x)"
    )


def main() -> None:
    """Run each size in its own process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,500000")
    parser.add_argument("--db", default=None, help="ledger URL (default: a fresh SQLite file)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the bundles here")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one, args.db, args.keep)
        return
    for size in (int(s) for s in args.sizes.split(",")):
        command = (
            [sys.executable, __file__, "--one", str(size)]
            + (["--db", args.db] if args.db else [])
            + (["--keep", str(args.keep)] if args.keep else [])
        )
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
