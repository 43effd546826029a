"""Group commit on the ack path: callbacks that arrive together share one INSERT and one commit.

Each callback is answered only after the transaction holding its row committed; when that
transaction fails or overruns the ack budget, every callback in it gets InboxUnavailable (503),
so WeCom retries and nothing is lost. One flusher task per process forms the batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Final

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cache import Notifier
from bot.gateway.throttle import LogThrottle
from crm_store.clock import Clock
from crm_store.queues import inbox
from crm_store.queues.inbox import NewMessage, bounded_dedup_key

log = logging.getLogger(__name__)

ACK_DB_TIMEOUT: Final = 0.8  # seconds: WeCom waits 5 s (PROTOCOL.md §1.5); we answer within 1 s
BATCH_WINDOW: Final = 0.002
MAX_BATCH: Final = 256
# Connection-level failures: logged as one line with their type, never with a traceback.
OUTAGE_ERRORS: Final = (
    SQLAlchemyError,
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


class InboxUnavailable(Exception):
    """The row of this callback is not durable: answer 503 so that WeCom retries."""


@dataclass(eq=False)
class _Pending:
    message: NewMessage
    future: asyncio.Future[bool]
    enqueued_at: float


@dataclass
class BatchStats:
    """What the batcher did, for tests and benchmarks."""

    batches: int = 0
    rows: int = 0
    failed_batches: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)

    def record(self, size: int) -> None:
        self.batches += 1
        self.rows += size
        self.largest = max(self.largest, size)
        if len(self.sizes) < 10_000:
            self.sizes.append(size)


class InboxBatcher:
    """Collects callbacks for at most `window` seconds (or `max_batch` rows) and commits them."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock,
        notifier: Notifier,
        channel: str,
        window: float = BATCH_WINDOW,
        max_batch: int = MAX_BATCH,
        timeout: float = ACK_DB_TIMEOUT,
        max_in_flight: int | None = None,
    ) -> None:
        if not 0 <= window < timeout:
            raise ValueError("the batch window must be shorter than the ack timeout")
        self._engine = engine
        self._clock = clock
        self._notifier = notifier
        self._channel = channel
        self._window = window
        self._max_batch = max_batch
        self.timeout = timeout
        # SQLite has one writer: a second flush in flight would only queue on the file lock.
        in_flight = max_in_flight or (1 if engine.dialect.name == "sqlite" else 4)
        self._slots = asyncio.Semaphore(in_flight)
        self._queue: deque[_Pending] = deque()
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._throttle = LogThrottle(log, interval=10.0, level=logging.ERROR)
        self.stats = BatchStats()

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="inbox-batcher")

    async def close(self) -> None:
        """Stop forming batches; callbacks still waiting are refused (503), none half-done."""
        tasks = [t for t in (self._runner, *self._flushes) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._runner = None
        while self._queue:
            pending = self._queue.popleft()
            if not pending.future.done():
                pending.future.set_exception(InboxUnavailable("shutting down"))

    async def accept(self, message: NewMessage) -> bool:
        """Wait until the message's row is committed: True if new, False for a duplicate.

        Raises InboxUnavailable when the database failed or the ack budget ran out.
        """
        if self._runner is None:
            raise InboxUnavailable("batcher not started")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.append(_Pending(message, future, loop.time()))
        self._arrived.set()
        if len(self._queue) >= self._max_batch:
            self._full.set()
        try:
            async with asyncio.timeout(self.timeout):
                return await future  # a timeout cancels it; the flusher skips cancelled ones
        except TimeoutError:
            raise InboxUnavailable("ack budget exceeded") from None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            # The window counts from the oldest arrival, so a backlog flushes at once.
            wait = self._window - (loop.time() - self._queue[0].enqueued_at)
            if wait > 0 and len(self._queue) < self._max_batch:
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), wait)
            await self._slots.acquire()
            batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
            self._full.clear()
            task = asyncio.create_task(self._flush(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flush_done)

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._flushes.discard(task)
        self._slots.release()

    async def _flush(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if not p.future.done()]
        if not live:
            return
        try:
            async with asyncio.timeout(self.timeout):
                inserted = await self._insert_isolating_bad_rows(live)
        except asyncio.CancelledError:  # close(): the timeout above raises TimeoutError instead
            _refuse(live, "shutting down")
            raise
        except Exception as exc:  # every kind of failure means "not durable": refuse them all
            self.stats.failed_batches += 1
            self._report(exc)
            _refuse(live, type(exc).__name__)
            return
        self.stats.record(len(live))
        fresh = inserted.copy()
        for pending in live:
            if pending.future.done():  # its caller gave up, or its row alone was refused
                continue
            key = bounded_dedup_key(pending.message.dedup_key)
            pending.future.set_result(key in fresh)
            fresh.discard(key)  # a second copy in the same batch is the duplicate
        if inserted:
            await self._notifier.notify(self._channel)

    async def _insert_isolating_bad_rows(self, live: list[_Pending]) -> set[str]:
        try:
            return await self._insert([p.message for p in live])
        except DBAPIError as exc:
            if len(live) == 1 or not _refused_row(exc):
                raise
        # One row the database refuses must not cost its neighbours their ack: retry each.
        inserted: set[str] = set()
        for pending in live:
            try:
                inserted |= await self._insert([pending.message])
            except DBAPIError as exc:
                if not _refused_row(exc):
                    raise
                self._report(exc)
                if not pending.future.done():
                    pending.future.set_exception(InboxUnavailable(type(exc).__name__))
        return inserted

    async def _insert(self, messages: list[NewMessage]) -> set[str]:
        """One statement, one commit. A bare connection: the ack path pays for nothing else."""
        async with self._engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                # A single autocommit statement is atomic and one round trip.
                connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            inserted = await inbox.accept_many(connection, messages, now=self._clock.now())
            await connection.commit()
            return inserted

    def _report(self, exc: BaseException) -> None:
        """One line per kind of failure per interval, with its type only (no SQL, no payload)."""
        name = type(exc).__name__
        if isinstance(exc, OUTAGE_ERRORS):
            self._throttle.log(f"inbox insert failed ({name})", "answering 503, WeCom retries")
        else:
            self._throttle.log(f"inbox insert failed unexpectedly ({name})", repr(exc)[:200])


def _refuse(batch: list[_Pending], reason: str) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(InboxUnavailable(reason))


def _refused_row(exc: DBAPIError) -> bool:
    """The server answered and refused the data (not a lost connection, lock or timeout)."""
    if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
        return False
    return not isinstance(exc.orig, OSError | TimeoutError)
