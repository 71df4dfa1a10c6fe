"""The meter and the proxy count everything they receive, per tenant, channel and day, in the
transaction that stores the events; the counts tie, an audit carries them and ties to them,
and a loss planted on the way in shows up as a difference, never as a success."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from p402.audit import run_audit
from p402.bundles.canonical import loads
from p402.bundles.layout import IMPORTS, MANIFEST
from p402.bundles.signing import create_keys
from p402.cli import cli
from p402.ledger.captures import ledger_days, list_captures
from p402.ledger.store import Ledger
from p402.ledger.tenants import create_api_key, create_tenant
from p402.period import parse_period
from p402.serve.app import create_app
from p402.serve.service import Service
from tests.test_bundle_tamper import Good, bundle, invalid, joined, lines_of, read_members, resign
from tests.test_bundle_tamper import valid as problems_of

TODAY = datetime.now(UTC).strftime("%Y-%m-%d")
PERIOD = parse_period("2026-10")
CANARY = "PROMPT-CANARY-9d1e never store me"


def _event(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"c-{n}", "occurred_at": f"2026-10-{1 + n % 3:02d}T10:00:00Z",
        "provider": "openai", "model": "gpt-4o", "input_tokens": 1000 + n, "output_tokens": 100,
        **fields,
    }  # fmt: skip


class Site:
    def __init__(self, ledger: Ledger, tmp_path: Path) -> None:
        private, self.public, self.key = create_keys(tmp_path / "keys")
        self.ledger = ledger
        self.service = Service(ledger, data_dir=tmp_path / "data", signing_key=private)
        create_tenant(ledger, "acme")
        self.headers = {"Authorization": f"Bearer {create_api_key(ledger, 'acme')[1]}"}
        self.client = TestClient(create_app(self.service))

    def post(self, body: Any, **kwargs: Any) -> Any:
        return self.client.post("/v1/events", json=body, headers=self.headers, **kwargs)


@pytest.fixture
def site(ledger: Ledger, tmp_path: Path) -> Iterator[Site]:
    served = Site(ledger, tmp_path)
    with served.client:
        yield served


def _day(ledger: Ledger, channel: str = "meter") -> dict[str, Any]:
    (record,) = [r for r in list_captures(ledger, "acme") if r["format"] == channel]
    return record


def test_the_meter_counts_every_item_it_receives(site: Site) -> None:
    assert site.post(_event(1)).status_code == 200
    mixed = [_event(1), _event(2, prompt=CANARY), _event(2), {"event_id": "c-9"}, 7, _event(3)]
    answer = site.post(mixed)
    assert [r["status"] for r in answer.json()["results"]] == [
        "duplicate", "accepted", "duplicate", "rejected", "rejected", "accepted",
    ]  # fmt: skip
    broken = site.client.post(
        "/v1/events", content=b"{not json", headers={**site.headers, "content-type": "application/json"}
    )  # fmt: skip
    assert broken.status_code == 400
    site.service.writer.close()  # type: ignore[union-attr]  # the refused request's count lands
    record = _day(site.ledger)
    assert record["day"] == TODAY and record["kind"] == "capture"
    figures = {name: record[name] for name in (
        "received", "accepted", "duplicates", "rejected", "requests_refused",
        "content_fields_dropped",
    )}  # fmt: skip
    assert figures == {
        "received": 7, "accepted": 3, "duplicates": 2, "rejected": 2, "requests_refused": 1,
        "content_fields_dropped": 1,
    }  # fmt: skip
    assert record["ties"] is True and record["findings"] == []
    # The accepted events by the day of their own time, as the ledger holds them.
    assert {day: cell["events"] for day, cell in record["days"].items()} == {
        "2026-10-02": 1, "2026-10-03": 1, "2026-10-01": 1,
    }  # fmt: skip
    held = ledger_days(site.ledger, "acme")
    assert {day: n for (_, day), (n, _) in held.items()} == {
        day: cell["events"] for day, cell in record["days"].items()
    }
    assert sum(units for _, units in held.values()) > 0
    assert CANARY not in repr(list_captures(site.ledger, "acme"))


def test_the_proxy_path_counts_what_it_hands_over_without_waiting(site: Site) -> None:
    service = site.service
    assert service.record_nowait("acme", _event(1), source="proxy") is None
    rejected = service.record_nowait("acme", {"event_id": "p-bad"}, source="proxy")
    assert rejected is not None and rejected.status == "rejected"
    assert service.record_nowait("acme", _event(1), source="proxy") is None
    service.writer.close()  # type: ignore[union-attr]
    record = _day(site.ledger, "proxy")
    assert (record["received"], record["accepted"], record["duplicates"], record["rejected"]) == (
        3, 1, 1, 1,
    )  # fmt: skip
    assert record["ties"] is True


def test_a_loss_planted_in_the_store_is_a_finding_and_the_caller_hears_it(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that drops the last event of every insert: the ledger did not store it, nor does
    it hold it, so it is neither accepted nor a duplicate. The day does not tie, and the client
    is told to send it again instead of hearing "duplicate"."""
    real = Ledger.insert_new

    def drops(self: Ledger, connection: Any, batch: Any) -> set[str]:
        return real(self, connection, list(batch)[:-1])

    monkeypatch.setattr(Ledger, "insert_new", drops)
    answer = site.post([_event(1), _event(2), _event(3)]).json()
    assert [r["status"] for r in answer["results"]] == ["accepted", "accepted", "rejected"]
    assert "send it again" in answer["results"][2]["problems"][0]["message"]
    record = _day(site.ledger)
    assert record["ties"] is False
    assert record["findings"] == [
        "3 items received but 2 accounted for (accepted 2, duplicate 0, rejected 0)"
    ]


def test_an_audit_carries_the_capture_days_and_ties_to_them(site: Site, tmp_path: Path) -> None:
    site.post([_event(n) for n in range(6)] + [{"event_id": "bad"}])
    site.service.writer.close()  # type: ignore[union-attr]
    result = run_audit(site.ledger, tenant="acme", period=PERIOD, key=site.key, out_dir=tmp_path)
    members = read_members(result.bundle.read_bytes())
    manifest = loads(members[MANIFEST])
    (line,) = lines_of(members[IMPORTS])
    carried = loads(line)
    assert carried == _day(site.ledger)
    assert manifest["imports"]["in_period"]["events"] == 6 == manifest["events"]["count"]
    assert manifest["imports"]["difference"] == {"events": 0, "cost": "0"}
    assert problems_of(result.bundle, site.key.public) == []

    good = Good(result.bundle, result.bundle.read_bytes(), members, site.key, site.public)
    for lie in (
        {**carried, "accepted": carried["accepted"] - 1},  # says it ties; it does not
        {**carried, "received": carried["received"] + 1},
        {**carried, "days": {**carried["days"], "2026-10-01": {"events": 9, "cost": "1",
                                                               "tokens": 1}}},
    ):  # fmt: skip
        tampered = resign({**members, IMPORTS: joined([_dumps(lie)])}, site.key)
        assert invalid(bundle(tmp_path, tampered), good)


def test_an_event_lost_after_it_was_counted_is_the_audits_difference(
    site: Site, tmp_path: Path
) -> None:
    from sqlalchemy import delete

    from p402.ledger.schema import events_table

    site.post([_event(n) for n in range(4)])
    site.service.writer.close()  # type: ignore[union-attr]
    with site.ledger.transaction() as connection:  # a loss no code path would make
        connection.execute(delete(events_table).where(events_table.c.event_id == "c-2"))
    result = run_audit(site.ledger, tenant="acme", period=PERIOD, key=site.key, out_dir=tmp_path)
    manifest = loads(read_members(result.bundle.read_bytes())[MANIFEST])
    assert manifest["imports"]["difference"]["events"] == -1
    assert manifest["imports"]["difference"]["cost"].startswith("-0.")


@pytest.mark.postgres
def test_concurrent_writers_on_postgresql_count_exactly(tmp_path: Path) -> None:
    """Two service processes' writers (two engines) storing overlapping ids at once: every item
    is counted once, the upserts neither deadlock nor lose an increment, and the accepted
    events are exactly those the ledger holds."""
    from tests.conftest import _postgres_ledger

    source = _postgres_ledger()
    first = next(source)
    try:
        create_tenant(first, "acme")  # the writer stores registered tenants' events only
        second = Ledger.open(first.engine.url.render_as_string(hide_password=False))
        services = [Service(first, data_dir=tmp_path), Service(second, data_dir=tmp_path)]
        barrier = threading.Barrier(8)

        def post(worker: int) -> None:
            service = services[worker % 2]
            barrier.wait()
            for round_ in range(10):
                batch = [_event(n) for n in range(round_ * 5, round_ * 5 + 8)]  # 3 overlap
                service.record("acme", batch, source="meter")

        threads = [threading.Thread(target=post, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for service in services:
            service.writer.close()  # type: ignore[union-attr]
        record = _day(first)
        assert record["received"] == 8 * 10 * 8
        assert record["accepted"] == first.count("acme") == 53
        assert record["duplicates"] == 8 * 10 * 8 - 53 and record["ties"] is True
        second.close()
    finally:
        next(source, None)


def test_p402_imports_lists_the_capture_days(site: Site, tmp_path: Path) -> None:
    from click.testing import CliRunner

    site.post([_event(1), {"event_id": "bad"}])
    site.service.writer.close()  # type: ignore[union-attr]
    if site.ledger.dialect != "sqlite":
        pytest.skip("the command reads the file the test wrote")
    target = site.ledger.engine.url.database
    runner = CliRunner()
    text = runner.invoke(cli, ["imports", "--captures", "--db", str(target), "--tenant", "acme"])
    assert text.exit_code == 0, text.output
    assert f"{TODAY}  meter          2 received         1 accepted" in text.output
    assert "ties" in text.output and "difference" not in text.output
    as_json = runner.invoke(
        cli, ["imports", "--captures", "--json", "--db", str(target), "--tenant", "acme"]
    )
    assert loads(as_json.output.encode())["ledger_differences"] == []


def _dumps(record: dict[str, Any]) -> bytes:
    from p402.bundles.canonical import dumps

    return dumps(record)


def test_a_day_beyond_a_bigint_is_counted_exactly(ledger: Ledger) -> None:
    """Two events at the $9,000,000 ceiling pass what a BIGINT holds in 10^-12 USD: the
    capture counts failed the whole group commit on PostgreSQL and turned into a float on
    SQLite. The writer now moves such a day to a fresh row, and reads sum exactly."""
    from p402.serve.service import _Writer

    create_tenant(ledger, "acme")
    service, writer = Service(ledger), _Writer(ledger)
    big = {"cost": "9000000", "cost_source": "provider"}
    writer._store([_job(service.prepare("acme", [_event(1, **big)], source="meter"))])
    together = [_job(service.prepare("acme", [_event(n, **big)], source="meter")) for n in (2, 3)]
    writer._store(together)
    four = _job(service.prepare("acme", [_event(n, **big) for n in (4, 5, 6)], source="meter"))
    writer._store([four])
    assert four.future.result().ids == {"c-4", "c-5", "c-6"}
    assert ledger.count("acme") == 6
    (record,) = list_captures(ledger, "acme")
    assert (record["accepted"], record["stored_cost"], record["ties"]) == (6, "54000000", True)
    assert sum(Decimal(day["cost"]) for day in record["days"].values()) == 54_000_000
    assert ledger_days(ledger, "acme")[("meter", "2026-10-02")][1] == 18_000_000 * 10**12


def test_one_tenants_failed_write_never_fails_another_tenants_events(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One group commit holds many tenants' events: a failure of one tenant's (here planted)
    failed them all. Each tenant is now tried again on its own; only the failing one hears so."""
    import p402.serve.service as service_module
    from p402.serve.service import _Writer

    for name in ("acme", "umbrella"):
        create_tenant(ledger, name)
    service, writer = Service(ledger), _Writer(ledger)
    real = service_module.add_counts  # type: ignore[attr-defined]

    def failing(connection: Any, tally: Any, *args: Any, **kwargs: Any) -> None:
        if any(key[0] == "acme" for key in tally.cells):
            raise RuntimeError("acme's counts cannot be written")
        real(connection, tally, *args, **kwargs)

    monkeypatch.setattr(service_module, "add_counts", failing)
    jobs = [
        _job(service.prepare("acme", [_event(1)], source="meter")),
        _job(service.prepare("umbrella", [_event(2)], source="meter")),
    ]
    writer._store(jobs)  # one group, as the writer thread makes it
    assert jobs[1].future.result().ids == {"c-2"}
    with pytest.raises(Exception, match="could not be written"):
        jobs[0].future.result()
    assert (ledger.count("acme"), ledger.count("umbrella")) == (0, 1)


def _job(batch: Any) -> Any:
    from concurrent.futures import Future

    from p402.serve.service import _Job

    return _Job([item for _, item in batch.good], batch.key, batch.dropped, batch.tally, Future())
