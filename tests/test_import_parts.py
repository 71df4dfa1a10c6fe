"""Reading big JSON Lines files in parts, in worker processes: the same rows, problems (with
their line numbers), costs and stored events as reading them whole, in one process."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p402.cli import cli
from p402.config import load_config
from p402.ingest import importer
from p402.ingest.demo import generate
from p402.ingest.formats import SourceRow, Span, all_formats, span_line_count
from p402.ingest.importer import ImportRejected, import_files, spans
from p402.ingest.pipeline import Pipeline
from p402.ledger.export import export_ledger
from p402.ledger.store import Ledger
from tests.conftest import PERIOD

FORMATS_DATA = Path(__file__).parent / "data" / "formats"


def _shifted(row: SourceRow, lines_before: int) -> SourceRow:
    line = None if row.line is None else row.line + lines_before
    return dataclasses.replace(row, line=line)


def _read_in_parts(fmt: Any, path: Path, size: int) -> list[SourceRow]:
    rows: list[SourceRow] = []
    lines_before = 0
    for span in spans(path, size):
        rows.extend(_shifted(row, lines_before) for row in fmt.parts.read(path, span))
        lines_before += span_line_count(path, span)
    return rows


def _split_fixtures() -> list[tuple[str, Path]]:
    """Every fixture file of every format that reads it in parts."""
    found = []
    for name, fmt in all_formats().items():
        if fmt.parts is None:
            continue
        for path in sorted(FORMATS_DATA.rglob("*")):
            if path.is_file() and fmt.parts.applies(path):
                found.append((name, path))
    return found


def test_formats_with_state_across_lines_are_never_split() -> None:
    # Gemini merges a stream's chunks across lines and OTel looks across a whole file for the
    # model calls of an agent's trace: a span boundary would change their events.
    formats = all_formats()
    assert formats["gemini"].parts is None
    assert formats["otel"].parts is None
    assert formats["openai-usage-csv"].parts is None
    assert formats["openai-usage"].parts is not None
    assert formats["events"].parts is not None


def test_only_plain_json_lines_files_are_split(tmp_path: Path) -> None:
    openai = all_formats()["openai-usage"].parts
    assert openai is not None
    assert not openai.applies(FORMATS_DATA / "openai" / "usage_page1.json")  # pretty-printed
    assert openai.applies(FORMATS_DATA / "openai" / "usage_ungrouped_and_embeddings.jsonl")
    bedrock = all_formats()["bedrock-logs"].parts
    assert bedrock is not None
    assert not bedrock.applies(FORMATS_DATA / "bedrock" / "invocations.json.gz")
    events = all_formats()["events"].parts
    assert events is not None
    assert not events.applies(tmp_path / "events.csv")


@pytest.mark.parametrize(("name", "path"), _split_fixtures(), ids=str)
@pytest.mark.parametrize("size", [1, 64, 1 << 20])
def test_fixtures_read_in_parts_give_what_reading_whole_gives(
    name: str, path: Path, size: int
) -> None:
    fmt = all_formats()[name]
    assert _read_in_parts(fmt, path, size) == list(fmt.read(path, None))


_LINES = st.one_of(
    st.just(""),
    st.just("   "),
    st.just("{not json"),
    st.just("[1, 2]"),
    st.builds(
        lambda n, tokens: json.dumps(
            {
                "event_id": f"e-{n}",
                "occurred_at": "2026-10-02T10:00:00Z",
                "provider": "openai",
                "model": "gpt-4o-mini",
                "input_tokens": tokens,
                "cost": "0.5",
            }
        ),
        st.integers(0, 30),
        st.integers(-3, 10_000),
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(_LINES, max_size=25),
    bom=st.booleans(),
    last_newline=st.booleans(),
    size=st.integers(1, 300),
)
def test_any_json_lines_read_in_parts_give_what_reading_whole_gives(
    tmp_path: Path, lines: list[str], bom: bool, last_newline: bool, size: int
) -> None:
    text = "\n".join(lines) + ("\n" if last_newline and lines else "")
    path = tmp_path / "events.jsonl"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    fmt = all_formats()["events"]
    assert _read_in_parts(fmt, path, size) == list(fmt.read(path, None))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400).map(lambda b: b.replace(b"\r", b"\n")), size=st.integers(1, 64))
def test_spans_cover_the_file_in_whole_lines(tmp_path: Path, data: bytes, size: int) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    cut = list(spans(path, size))
    assert b"".join(data[s.start : s.end] for s in cut) == data
    assert all(s.start < s.end for s in cut)
    assert all(data[s.end - 1 : s.end] == b"\n" for s in cut[:-1])
    assert sum(span_line_count(path, s) for s in cut) == len(data.splitlines())
    assert all(s.end - s.start >= size or s is cut[-1] for s in cut)


@pytest.fixture
def parts_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file read in parts, each a few lines long, so that a small file has many."""
    monkeypatch.setattr(importer, "_PARTS_FROM", 0)
    monkeypatch.setattr(importer, "_SPAN", 2_000)


def _demo_file(path: Path, count: int, extra: list[str] | None = None) -> Path:
    lines = [json.dumps(event.to_json()) for event in generate(count=count, tenant="acme")]
    for at, line in enumerate(extra or []):
        lines.insert(37 * (at + 1), line)
    lines.insert(5, lines[3])  # the same event twice: the first is kept, the second a duplicate
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _stored(ledger: Ledger) -> list[Any]:
    return list(ledger.stream("acme", PERIOD))


def _both(tmp_path: Path, files: list[Path], **options: Any) -> tuple[Any, Any]:
    """The import of *files* read whole in this process, and read in parts by two workers:
    each as (summary, stored events), or the ImportRejected it raised."""
    outcomes: list[tuple[Any, ...]] = []
    for jobs in (1, 2):
        ledger = Ledger.open(str(tmp_path / f"jobs{jobs}.db"))
        try:
            summary = import_files(ledger, files, tenant="acme", jobs=jobs, **options)
        except ImportRejected as rejected:
            outcomes.append(("rejected", rejected.problems, ledger.count("acme")))
        else:
            found = dataclasses.asdict(summary)
            for record in found["records"]:  # the run's own id and time differ, nothing else
                del record["import_id"], record["recorded_at"]
            outcomes.append((found, _stored(ledger)))
        ledger.close()
    return outcomes[0], outcomes[1]


@pytest.mark.usefixtures("parts_forced")
def test_import_in_parts_stores_what_one_process_stores(tmp_path: Path) -> None:
    path = _demo_file(tmp_path / "events.jsonl", 400)
    whole, parts = _both(tmp_path, [path])
    assert parts == whole
    assert whole[0]["new"] == 400 and whole[0]["duplicates"] == 1


@pytest.mark.usefixtures("parts_forced")
def test_import_in_parts_names_the_same_problems_on_the_same_lines(tmp_path: Path) -> None:
    bad = ['{"event_id": "x", "provider": "openai"}', "{broken", '{"input_tokens": -5}']
    path = _demo_file(tmp_path / "events.jsonl", 300, bad)
    whole, parts = _both(tmp_path, [path])
    assert whole[0] == "rejected" and whole[2] == 0
    assert parts == whole
    assert [problem.line for problem in whole[1]][:4] == [39, 39, 76, 113]
    skipped_whole, skipped_parts = _both(tmp_path, [path], skip_invalid=True)
    assert skipped_parts == skipped_whole
    assert skipped_whole[0]["skipped"] == 3 and skipped_whole[0]["new"] == 300


@pytest.mark.usefixtures("parts_forced")
def test_files_read_whole_and_in_parts_keep_their_order(tmp_path: Path) -> None:
    # A CSV file is always read whole; the first file holding an event id is the one kept.
    first = _demo_file(tmp_path / "a.jsonl", 120)
    second = tmp_path / "b.csv"
    ledger = Ledger.open(str(tmp_path / "source.db"))
    import_files(ledger, [_demo_file(tmp_path / "c.jsonl", 150)], tenant="acme", jobs=1)
    export_ledger(ledger, tenant="acme", period=None, fmt="csv", out=second)
    ledger.close()
    whole, parts = _both(tmp_path, [first, second, first])
    assert parts == whole


@pytest.mark.usefixtures("parts_forced")
def test_progress_counts_every_byte_once(tmp_path: Path) -> None:
    path = _demo_file(tmp_path / "events.jsonl", 200)
    seen: list[int] = []
    ledger = Ledger.open(str(tmp_path / "p.db"))
    import_files(ledger, [path], tenant="acme", jobs=2, progress=seen.append)
    ledger.close()
    assert sum(seen) == path.stat().st_size
    assert len(seen) > 10 and all(part >= 2_000 for part in seen[:-1])  # a span at a time


def test_small_files_and_one_job_start_no_workers(tmp_path: Path, sqlite_ledger: Ledger) -> None:
    path = _demo_file(tmp_path / "events.jsonl", 20)
    workers = importer._Workers(all_formats()["events"], Pipeline(tenant="acme", source="x"), 2)
    assert not workers.wanted(path)
    assert not importer._Workers(all_formats()["events"], workers.pipeline, 1).wanted(path)
    import_files(sqlite_ledger, [path], tenant="acme")
    assert workers.pool is None


def test_a_span_is_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n')
    assert list(spans(path, 3)) == [Span(0, 9), Span(9, 18)]


@pytest.mark.usefixtures("parts_forced")
def test_the_command_reads_in_parts_with_jobs(tmp_path: Path) -> None:
    path = _demo_file(tmp_path / "events.jsonl", 200)
    said = []
    for jobs in ("1", "2"):
        db = str(tmp_path / f"cli{jobs}.db")
        args = ["import", "events", str(path), "--db", db, "--tenant", "acme", "--jobs", jobs]
        result = CliRunner().invoke(cli, [*args, "--json"])
        assert result.exit_code == 0, result.output
        found = json.loads(result.output)
        for record in found["controls"]:  # the run's own id and time differ, nothing else
            del record["import_id"], record["recorded_at"]
        said.append(found)
    assert said[0] == said[1]
    assert said[0]["new"] == 200
    refused = CliRunner().invoke(cli, ["import", "events", str(path), "--jobs", "0"])
    assert refused.exit_code == 2 and "--jobs" in refused.output


@pytest.mark.usefixtures("parts_forced")
def test_workers_price_attribute_and_retain_by_the_configuration(tmp_path: Path) -> None:
    config_path = tmp_path / "p402.toml"
    config_path.write_text(
        '[tenant]\nid = "acme"\nretention_days = 30\n\n'
        '[[rules]]\nname = "keys"\nmatch = { api_key_id = "key_*" }\n'
        'set = { department = "Platform" }\noverride = true\n\n'
        '[[prices]]\nprovider = "openai"\nmodel = "gpt-4o*"\ninput = "2.00"\noutput = "8.00"\n',
        encoding="utf-8",
    )
    unpriced = [
        json.dumps({"event_id": f"u-{n}", "occurred_at": "2026-10-03T10:00:00Z",
                    "provider": "openai", "model": "gpt-4o-mini", "input_tokens": 1000 + n,
                    "output_tokens": 10, "api_key_id": f"key_{n}"})
        for n in range(40)
    ]  # fmt: skip
    path = _demo_file(tmp_path / "events.jsonl", 300, unpriced)
    whole, parts = _both(tmp_path, [path], config=load_config(config_path))
    assert parts == whole
    stored = whole[1]
    assert sum(event.cost_source == "override" for event in stored) == 40
    assert any(event.attribution_rule == "keys" for event in stored)
    assert all(event.retention_until is not None for event in stored)


def test_a_file_of_one_huge_line_is_read_whole(tmp_path: Path) -> None:
    # An array of API pages dumped on one line: cutting it gives one part anyway, so it is not
    # parsed once more just to decide; reading it whole gives every result.
    result = {"object": "organization.usage.completions.result", "input_tokens": 10,
              "output_tokens": 2, "num_model_requests": 1, "model": "gpt-4o-mini"}  # fmt: skip
    pages = [
        {"object": "page", "has_more": False, "data": [
            {"object": "bucket", "start_time": 1_759_276_800 + day * 86_400,
             "end_time": 1_759_363_200 + day * 86_400,
             "results": [{**result, "api_key_id": f"key_{n}"} for n in range(400)]}
        ]}
        for day in range(30)
    ]  # fmt: skip
    path = tmp_path / "usage.json"
    path.write_text(json.dumps(pages), encoding="utf-8")
    assert path.stat().st_size > 1 << 20
    fmt = all_formats()["openai-usage"]
    assert fmt.parts is not None and not fmt.parts.applies(path)
    assert len([row for row in fmt.read(path, None) if row.record]) == 30 * 400
