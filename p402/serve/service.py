"""What every route shares: the ledger, the configuration, and recording events through the
same pipeline as the importers (validate → price → attribute → store)."""

from __future__ import annotations

import asyncio
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from p402.config import Config
from p402.errors import Problem
from p402.ingest.pipeline import Pipeline
from p402.ingest.tags import OWN_PREFIX
from p402.ledger.budgets import settle
from p402.ledger.captures import Slots, Tally, add_counts, day_of
from p402.ledger.events import Event
from p402.ledger.imports import existing_ids
from p402.ledger.sessions import session_tenant
from p402.ledger.store import Ledger, StoreError
from p402.ledger.tenants import credential, drop_events, get_tenant, unregistered
from p402.period import micros
from p402.serve.errors import Unauthenticated
from p402.serve.policy import Policy, hard_spend

__all__ = ["Batch", "Outcome", "Service", "Unreadable"]

log = logging.getLogger(__name__)

_AUTH_CACHE = 4_096
REMEMBER_SECONDS = 10.0
"""How long a process trusts what it read about a key or a tenant (revocation, deletion,
retention) before reading it again."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one submitted event."""

    index: int
    status: str  # accepted | duplicate | rejected
    event_id: str | None = None
    problems: tuple[Problem, ...] = ()
    """What is wrong with a rejected event: its source is the route (``meter``, ``proxy``) and
    its path the item's place in the request (``[3]``)."""

    def as_json(self) -> dict[str, Any]:
        """The answer for this event in a meter response."""
        answer: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.event_id is not None:
            answer["event_id"] = self.event_id
        if self.problems:
            answer["problems"] = [
                {"field": problem.field, "message": problem.message} for problem in self.problems
            ]
        return answer


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An item of a request that could not be read (a JSON Lines line that is not JSON): it is
    rejected on its own, with *reason*, and the request's other items are kept."""

    reason: str


@dataclass(frozen=True, slots=True)
class Written:
    """What the writer did with one submission: the ids it stored (an id already in the
    ledger, or submitted earlier, is not among them) and those it could neither store nor find
    in the ledger (lost on the way in: the caller must hear so, and send them again)."""

    ids: frozenset[str] = frozenset()
    lost: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Job:
    """One submission: a request's good events (one tenant's, from one channel), how many
    content fields each lost, the counts of its rejected items, and who waits for it."""

    events: list[Event]
    key: tuple[str, str, int]
    """The request's tenant, channel and UTC day of arrival: where its counts go."""
    dropped: list[int]
    tally: Tally
    future: Future[Written]
    holds: tuple[str, ...] = ()
    """What the calls of these events hold in hard budgets: released when they are stored."""


class _Writer:
    """One thread that stores every event the process records, committing together whatever
    arrived while the previous transaction ran (group commit). Fifty clients posting one event
    each then cost a handful of transactions, not fifty, and one database connection writes.

    The same transaction adds each submission's capture counts (``ledger/captures.py``): what
    became of every item received is stored with the events, or not at all; and settles the
    hard budgets (``ledger/budgets.py``): the holds of the calls recorded are released and
    their cost added to the windows they count in.
    """

    def __init__(self, ledger: Ledger, *, most: int = 20_000, policy: Policy | None = None) -> None:
        self._ledger, self._most = ledger, most
        self._policy = policy
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._slots = Slots(secrets.randbelow(1 << 62))
        """This writer's rows of the capture counts: its own, so two processes never wait on
        each other's row locks (a day's counts are the sum of its writers' rows)."""

    def submit(
        self,
        events: list[Event],
        *,
        key: tuple[str, str, int],
        dropped: list[int] | None = None,
        tally: Tally | None = None,
        holds: tuple[str, ...] = (),
    ) -> Future[Written]:
        """Store *events* (of the tenant, channel and day of arrival *key*) and count them
        there, with *tally* (the request's items received and rejected); the future gives the
        ids this call stored (an id already in the ledger, or submitted earlier, is not among
        them)."""
        future: Future[Written] = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="p402-writer", daemon=True)
                self._thread.start()
        job = _Job(events, key, dropped or [0] * len(events), tally or Tally(), future, holds)
        self._queue.put(job)
        return future

    def close(self) -> None:
        """Store what is queued, then stop."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            jobs, size = [first], len(first.events)
            while size < self._most:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                jobs.append(job)
                size += len(job.events)
            try:
                self._store(jobs)
            except BaseException as exc:  # the writer must outlive any one group
                log.exception("the ledger writer failed a group of %d submissions", len(jobs))
                for job in jobs:
                    _settle(job.future, error=exc)

    def _store(self, jobs: list[_Job]) -> None:
        submitted = jobs
        by_tenant: dict[str, list[Event]] = {}
        for job in jobs:
            for item in job.events:
                by_tenant.setdefault(item.tenant, []).append(item)
        try:
            with self._ledger.transaction() as connection:
                stored = {
                    (tenant, event_id)
                    for tenant, items in by_tenant.items()
                    for event_id in self._ledger.insert_new(connection, items)
                }
                jobs, stored = _without_deleted(connection, jobs, stored)
                mine = _share(jobs, stored)
                held = self._held(connection, jobs, mine)
                tally, lost = Tally(), []
                for job, ids in zip(jobs, mine, strict=True):
                    tally.merge(job.tally)
                    left, gone = set(ids), set()
                    for item, dropped in zip(job.events, job.dropped, strict=True):
                        if item.event_id in left:
                            left.discard(item.event_id)  # a repeat within the job is a duplicate
                            tally.accepted(job.key, item, dropped=dropped)
                        elif item.event_id in ids or (item.tenant, item.event_id) in held:
                            tally.duplicate(job.key, item, dropped=dropped)
                        else:  # neither stored nor in the ledger: counted as nothing, a finding
                            log.error("event %s was neither stored nor found", item.event_id)
                            gone.add(item.event_id)
                    lost.append(frozenset(gone))
                add_counts(connection, tally, micros(datetime.now(UTC)), writer=self._slots)
                self._settle_budgets(connection, jobs, mine)
        except Exception as exc:  # every waiting request must hear of it
            tenants = sorted({job.key[0] for job in submitted})
            if len(tenants) > 1:
                # One tenant's failure (a count beyond a BIGINT, say) must not fail another's
                # events: each tenant's submissions are tried again in a transaction of its own.
                log.warning("a group of %d tenants failed (%s): writing each on its own",
                            len(tenants), exc.__class__.__name__)  # fmt: skip
                for tenant in tenants:
                    self._store([job for job in submitted if job.key[0] == tenant])
                return
            log.error("the ledger could not be written: %s", exc)
            for job in submitted:
                _settle(job.future, error=_UNAVAILABLE)
            return
        for job, share, missing in zip(jobs, mine, lost, strict=True):
            _settle(job.future, result=Written(frozenset(share), missing))

    def _settle_budgets(self, connection: Any, jobs: list[_Job], mine: list[set[str]]) -> None:
        """Release the holds of the calls these jobs record, and add the cost of the events
        they stored to the hard budgets' windows."""
        holds = [hold for job in jobs for hold in job.holds]
        if holds or self._policy is not None:
            new = [item for job, ids in zip(jobs, mine, strict=True)
                   for item in job.events if item.event_id in ids]  # fmt: skip
            settle(connection, holds, hard_spend(self._policy, new))

    def _held(
        self, connection: Any, jobs: list[_Job], mine: list[set[str]]
    ) -> set[tuple[str, str]]:
        """Which of the events not stored by this group the ledger does hold: a duplicate is
        checked, not assumed, so an event lost on its way in is never counted as one."""
        wanted: dict[str, set[str]] = {}
        for job, ids in zip(jobs, mine, strict=True):
            for item in job.events:
                if item.event_id not in ids:
                    wanted.setdefault(item.tenant, set()).add(item.event_id)
        return {
            (tenant, event_id)
            for tenant, ids in wanted.items()
            for event_id in existing_ids(connection, tenant, ids)
        }


def _own_tags(raw: Mapping[str, Any]) -> str | None:
    """The first ``p402.*`` tag a caller's event claims (in ``tags`` or as a ``tag.`` column)."""
    tags = raw.get("tags")
    names = [*(tags if isinstance(tags, Mapping) else ()), *(
        key[4:] for key in raw if isinstance(key, str) and key.startswith("tag.")
    )]  # fmt: skip
    return next((n for n in names if isinstance(n, str) and n.startswith(OWN_PREFIX)), None)


def _without_deleted(
    connection: Any, jobs: list[_Job], stored: set[tuple[str, str]]
) -> tuple[list[_Job], set[tuple[str, str]]]:
    """The jobs and stored ids left once the events of tenants deleted while their requests
    were on the way are removed again (those requests hear so): nothing of such a tenant stays."""
    # After the inserts: see unregistered for why that order holds on both stores.
    deleted = unregistered(connection, {job.key[0] for job in jobs})
    if not deleted:
        return jobs, stored
    drop_events(connection, deleted)
    for job in jobs:
        if job.key[0] in deleted:
            _settle(job.future, error=_GONE)
    kept = [job for job in jobs if job.key[0] not in deleted]
    return kept, {key for key in stored if key[0] not in deleted}


def _clash(raw: Mapping[str, Any], fixed: Mapping[str, str]) -> tuple[str, str] | None:
    """The field of *raw* that says other than the key's fixed attribution, and why."""
    for name, value in fixed.items():
        given = raw.get(name)
        if given is not None and (not isinstance(given, str) or given.strip() != value):
            return name, f"this p402 key always records {name} {value!r}"
    return None


def _share(jobs: list[_Job], stored: set[tuple[str, str]]) -> list[set[str]]:
    """The ids each job stored: the first submission of an id is the one that stored it."""
    left, shares = set(stored), []
    for job in jobs:
        ids = set()
        for item in job.events:
            key = (item.tenant, item.event_id)
            if key in left:
                left.discard(key)
                ids.add(item.event_id)
        shares.append(ids)
    return shares


_GONE = Unauthenticated("this tenant has been deleted; nothing of this request was stored")
"""What a request of a tenant deleted while it was on its way hears."""
_UNAVAILABLE = StoreError("the ledger could not be written; nothing of this request was stored")
"""What a request hears when its group's transaction failed. The database's own message (which
names rows, possibly of other tenants committed in the same group) goes to the server log."""


def _settle(
    future: Future[Written], *, result: Written | None = None, error: BaseException | None = None
) -> None:
    """Resolve a submission's future, unless its request gave up waiting (cancelled)."""
    if future.cancelled():
        return
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result or Written())
    except InvalidStateError:  # cancelled between the check and now
        pass


@dataclass(slots=True)
class Batch:
    """One request's items on their way to the ledger: the outcomes known so far (``None``
    where an item is good), the good events with their places, how many content fields each
    lost, and the counts of the items already rejected."""

    key: tuple[str, str, int]
    """Tenant, channel and UTC day of arrival."""
    outcomes: list[Outcome | None]
    good: list[tuple[int, Event]] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)


@dataclass
class Service:
    """The state of one ``p402 serve`` process."""

    ledger: Ledger
    config: Config = field(default_factory=Config)
    data_dir: Path = Path("p402-data")
    signing_key: Path | None = None
    _pipelines: dict[tuple[str, str], tuple[Pipeline, float]] = field(default_factory=dict)
    _keys: dict[str, tuple[str, Mapping[str, str], float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    on_recorded: list[Callable[[Event], None]] = field(default_factory=list)
    """Called with every event this process stores, whatever the route (the proxy's budgets
    count spend this way, meter events included)."""
    writer: _Writer | None = None
    background: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="p402-audit")
    )

    def tenant_for_key(self, presented: str) -> str | None:
        """The tenant of a presented p402 key. Valid keys are remembered for
        :data:`REMEMBER_SECONDS`, so a key revoked (or a tenant deleted) by another process
        stops working within that long; :meth:`forget_keys` forgets them at once."""
        known = self.known_tenant(presented)
        if known is not None:
            return known
        found = credential(self.ledger, presented)
        if found is None:
            return None
        with self._lock:
            if len(self._keys) >= _AUTH_CACHE:
                self._keys.clear()
            self._keys[presented] = (found[0], found[1], time.monotonic())
        return found[0]

    def known_tenant(self, presented: str) -> str | None:
        """The tenant of a key this process authenticated less than :data:`REMEMBER_SECONDS`
        ago, without the database."""
        found = self._keys.get(presented)
        if found is None or time.monotonic() - found[2] >= REMEMBER_SECONDS:
            return None
        return found[0]

    def fixed_attribution(self, presented: str) -> Mapping[str, str]:
        """The attribution a key is fixed to (empty when none): read with its tenant, by
        :meth:`tenant_for_key`, which the request has just called."""
        found = self._keys.get(presented)
        if found is None:
            again = credential(self.ledger, presented)
            return {} if again is None else again[1]
        return found[1]

    def tenant_for_session(self, session: str) -> str | None:
        """The tenant of the page's session, read from the database every time: a sign-out or
        a revoked key ends it at once, on every worker."""
        return session_tenant(self.ledger, session, now_us=micros(datetime.now(UTC)))

    def forget_keys(self) -> None:
        """Drop remembered keys (after a revocation)."""
        with self._lock:
            self._keys.clear()

    def pipeline(self, tenant: str, source: str) -> Pipeline:
        """The tenant's pipeline for a source (prices and rules loaded once per process; the
        tenant's retention read again every :data:`REMEMBER_SECONDS`)."""
        key = (tenant, source)
        found = self._pipelines.get(key)
        if found is not None and time.monotonic() - found[1] < REMEMBER_SECONDS:
            return found[0]
        registered = get_tenant(self.ledger, tenant)
        days = None if registered is None else registered.retention_days
        shorter = registered is not None and registered.client_retention
        if found is not None:  # keep its warm price quotes; only the retention may have changed
            made = found[0]
            made.retention = made.retention_of(days)
            made.client_retention = shorter
        else:
            made = Pipeline(
                tenant=tenant, source=source, config=self.config, retention_days=days,
                client_retention=shorter,
            )  # fmt: skip
        with self._lock:
            self._pipelines[key] = (made, time.monotonic())
        return made

    def record(
        self,
        tenant: str,
        raws: Sequence[Mapping[str, Any] | Any],
        *,
        source: str,
        defaults: Mapping[str, Any] | None = None,
        fixed: Mapping[str, str] | None = None,
    ) -> list[Outcome]:
        """Validate, price, attribute and store a batch; one outcome per item, in order.

        Good events are stored even when others in the batch are rejected; an event id already
        in the ledger (or earlier in the batch) is a duplicate and changes nothing. Every item
        is counted in the channel's capture counts, rejected ones included.
        """
        batch = self.prepare(tenant, raws, source=source, defaults=defaults, fixed=fixed)
        return self.finish(batch, self.store(batch).result())

    async def record_async(
        self,
        tenant: str,
        raws: Sequence[Mapping[str, Any] | Any],
        *,
        source: str,
        fixed: Mapping[str, str] | None = None,
    ) -> list[Outcome]:
        """:meth:`record` for a few events, from the event loop: validated in place (tens of
        microseconds each), then awaited without holding a worker thread while they are stored."""
        batch = self.prepare(tenant, raws, source=source, fixed=fixed)
        # Shielded: a request that is cancelled stops waiting, but its events are still stored
        # and the writer's future is never cancelled under it.
        stored = await asyncio.shield(asyncio.wrap_future(self.store(batch)))
        return self.finish(batch, stored)

    def prepare(
        self,
        tenant: str,
        raws: Sequence[Mapping[str, Any] | Any],
        *,
        source: str,
        defaults: Mapping[str, Any] | None = None,
        fixed: Mapping[str, str] | None = None,
    ) -> Batch:
        """Validate, price and attribute *raws*: the rejected items' outcomes, the good events,
        and the counts of what was received. *fixed*: the attribution the caller's key is fixed
        to: an item that says otherwise is rejected, one that says nothing takes it."""
        pipeline = self.pipeline(tenant, source)
        batch = Batch((tenant, source, day_of(micros(datetime.now(UTC)))), [None] * len(raws))
        batch.tally.received(batch.key, len(raws))  # before anything can go astray
        for index, raw in enumerate(raws):
            if not isinstance(raw, Mapping):
                said = raw.reason if isinstance(raw, Unreadable) else "not a JSON object"
                problem = Problem(source, None, None, said, f"[{index}]")
                batch.outcomes[index] = Outcome(index, "rejected", problems=(problem,))
                batch.tally.rejected(batch.key)
                continue
            merged = dict(raw) if defaults is None else {**defaults, **raw}
            # Where an event came from is the service's to say, not the caller's: a meter client
            # cannot claim an event was captured by the proxy.
            merged["source"] = source
            merged["evidence_status"] = "captured" if source == "proxy" else "reported"
            if source != "proxy" and (claimed := _own_tags(merged)):
                problem = Problem(
                    source, None, f"tags.{claimed}",
                    f"tag names beginning {OWN_PREFIX!r} are p402's own", f"[{index}]",
                )  # fmt: skip
                given = raw.get("event_id")
                batch.outcomes[index] = Outcome(
                    index, "rejected", given if isinstance(given, str) else None, (problem,)
                )
                batch.tally.rejected(batch.key)
                continue
            if fixed and (clash := _clash(merged, fixed)) is not None:
                given = raw.get("event_id")
                problem = Problem(source, None, clash[0], clash[1], f"[{index}]")
                batch.outcomes[index] = Outcome(
                    index, "rejected", given if isinstance(given, str) else None, (problem,)
                )
                batch.tally.rejected(batch.key)
                continue
            if fixed:
                merged.update(fixed)
            item, problems, dropped = pipeline.event(merged)
            if item is None:
                given = raw.get("event_id")
                found = tuple(
                    Problem(source, None, name, text, f"[{index}]") for name, text in problems
                )
                batch.outcomes[index] = Outcome(
                    index, "rejected", given if isinstance(given, str) else None, found
                )
                batch.tally.rejected(batch.key, dropped=dropped)
            else:
                batch.good.append((index, item))
                batch.dropped.append(dropped)
        return batch

    def store(self, batch: Batch, *, holds: tuple[str, ...] = ()) -> Future[Written]:
        """Hand a batch to the writer; the future gives the ids it stored. *holds*: what the
        batch's calls hold in hard budgets, released in the transaction that stores it."""
        if self.writer is None:
            with self._lock:
                hard = any(budget.mode == "hard" for budget in self.config.budgets)
                policy = Policy(self.config, self.ledger) if hard else None
                self.writer = self.writer or _Writer(self.ledger, policy=policy)
        return self.writer.submit(
            [item for _, item in batch.good],
            key=batch.key,
            dropped=batch.dropped,
            tally=batch.tally,
            holds=holds,
        )

    def refused(self, tenant: str, channel: str) -> None:
        """Count a request of *tenant* that could not be read at all (its body is not JSON, or
        too large), without waiting for the count to be stored."""
        batch = Batch((tenant, channel, day_of(micros(datetime.now(UTC)))), [])
        batch.tally.refused(batch.key)
        self.store(batch)

    def finish(self, batch: Batch, written: Written) -> list[Outcome]:
        """Every item's outcome, in order, once the good events are stored; tells listeners."""
        outcomes, stored = batch.outcomes, set(written.ids)
        for index, item in batch.good:
            if item.event_id in written.lost:
                problem = Problem(
                    batch.key[1], None, None,
                    "the ledger did not keep this event; send it again", f"[{index}]",
                )  # fmt: skip
                outcomes[index] = Outcome(index, "rejected", item.event_id, (problem,))
                continue
            new = item.event_id in stored
            stored.discard(item.event_id)  # a repeat later in the batch is a duplicate
            outcomes[index] = Outcome(index, "accepted" if new else "duplicate", item.event_id)
            if new:
                for listener in self.on_recorded:
                    listener(item)
        return [outcome for outcome in outcomes if outcome is not None]

    def record_nowait(
        self, tenant: str, raw: Mapping[str, Any], *, source: str, hold: str | None = None
    ) -> Outcome | None:
        """Validate one event here and now, and hand it to the writer without waiting: the
        routing proxy's path, which has already answered its caller. The outcome if the event
        was rejected, else ``None`` (a failed write is logged by the writer's callback). *hold*:
        what the call holds in hard budgets, released by the writer whatever became of it."""
        batch = self.prepare(tenant, [raw], source=source)
        # A rejected event is counted all the same, and its call's hold released.
        future = self.store(batch, holds=() if hold is None else (hold,))
        if not batch.good:
            return batch.outcomes[0]
        event_id = batch.good[0][1].event_id

        def done(finished: Future[Written]) -> None:
            if (failure := finished.exception()) is not None:
                log.error("event %s could not be stored: %s", event_id, failure)
                return
            self.finish(batch, finished.result())

        future.add_done_callback(done)
        return None

    def record_one(self, tenant: str, raw: Mapping[str, Any], *, source: str) -> Outcome:
        """Record a single event (the routing proxy's path)."""
        return self.record(tenant, [raw], source=source)[0]

    def close(self, *, wait: bool = True) -> None:
        """Finish background audits and queued writes, and release the database."""
        self.background.shutdown(wait=wait)
        if self.writer is not None:
            self.writer.close()
        self.ledger.close()


def counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """How many outcomes of each status."""
    totals = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for outcome in outcomes:
        totals[outcome.status] += 1
    return totals
