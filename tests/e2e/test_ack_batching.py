"""Group commit on the ack path: many callbacks, one transaction; a failed one costs only 503s.

The outage is real: another connection holds the write lock (SQLite BEGIN EXCLUSIVE,
PostgreSQL LOCK TABLE) for longer than the ack budget, exactly as a stalled database would.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.cache import LocalCache, Notifier
from bot.gateway.batcher import InboxBatcher, InboxUnavailable
from bot.gateway.callback import INBOX_CHANNEL, callback_state_key
from crm_store.clock import FakeClock
from crm_store.models import InboxMessage
from crm_store.queues.inbox import NewMessage
from crm_store.session import create_engine
from tests.e2e.conftest import BotHarness


class WriteLock:
    """Another client holding the database's write lock until released."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._sqlite: sqlite3.Connection | None = None
        self._engine: AsyncEngine | None = None
        self._pg: AsyncConnection | None = None

    async def hold(self) -> None:
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            path = parsed.database or ""
            conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
            await asyncio.to_thread(conn.execute, "BEGIN EXCLUSIVE")
            self._sqlite = conn
            return
        self._engine = create_engine(self.url)
        self._pg = await self._engine.connect()
        await self._pg.execute(text("LOCK TABLE inbox IN EXCLUSIVE MODE"))

    async def release(self) -> None:
        if self._sqlite is not None:
            await asyncio.to_thread(self._sqlite.execute, "ROLLBACK")
            self._sqlite.close()
            self._sqlite = None
        if self._pg is not None:
            await self._pg.rollback()
            await self._pg.close()
            self._pg = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


@pytest.fixture
async def write_lock(db_url: str) -> AsyncIterator[WriteLock]:
    lock = WriteLock(db_url)
    yield lock
    await lock.release()


async def _rows(bot: BotHarness) -> Counter[str]:
    async with bot.runtime.sessions() as session:
        keys = (await session.scalars(select(InboxMessage.dedup_key))).all()
    return Counter(keys)


async def test_200_concurrent_callbacks_with_duplicates_and_an_outage_mid_stream(
    bot: BotHarness, write_lock: WriteLock
) -> None:
    rng = random.Random(15)
    ids = list(range(700_000, 700_150))
    stream = ids + [rng.choice(ids) for _ in range(50)]  # 50 WeCom retries among 150
    rng.shuffle(stream)
    xml = {
        i: bot.sim.sender.message_xml("zhangsan", "text", msg_id=i, Content="帮助") for i in ids
    }

    async def send(msg_id: int) -> tuple[int, int]:
        status, _ = await bot.sim.send_callback(xml[msg_id])
        return msg_id, status

    # The database stalls before the stream starts and recovers at the first refusal.
    await write_lock.hold()
    answers: dict[int, list[int]] = {i: [] for i in ids}
    for done in asyncio.as_completed([asyncio.create_task(send(i)) for i in stream]):
        msg_id, status = await done
        answers[msg_id].append(status)
        if status == 503:
            await write_lock.release()
    statuses = Counter(s for got in answers.values() for s in got)
    assert set(statuses) <= {200, 503} and statuses[503] >= 1, statuses
    rows = await _rows(bot)
    accepted = {i for i, got in answers.items() if 200 in got}
    assert all(rows[f"msg:{i}"] == 1 for i in accepted)  # every acknowledged one is stored
    assert max(rows.values(), default=1) == 1  # and none twice

    # WeCom retries whatever got no 200; now everything is stored exactly once.
    refused = [i for i in ids if i not in accepted]
    retried = await asyncio.gather(*(send(i) for i in refused))
    assert all(status == 200 for _, status in retried)
    rows = await _rows(bot)
    assert rows == Counter({f"msg:{i}": 1 for i in ids})
    stats = bot.app[callback_state_key].batcher.stats
    assert stats.largest > 1  # they really were grouped


def _message(key: str, payload: str = "<xml/>") -> NewMessage:
    return NewMessage(dedup_key=key, user_id="zhangsan", kind="text", payload=payload)


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.scalar(select(func.count()).select_from(InboxMessage))) or 0)


class CountingNotifier(Notifier):
    def __init__(self) -> None:
        super().__init__(LocalCache())
        self.notified: list[str] = []

    async def notify(self, channel: str) -> None:
        self.notified.append(channel)
        await super().notify(channel)


async def test_same_key_twice_in_one_batch_is_one_row_and_both_succeed(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    notifier = CountingNotifier()
    batcher = InboxBatcher(
        engine,
        clock=clock,
        notifier=notifier,
        channel=INBOX_CHANNEL,
        window=5,
        timeout=10,
        max_batch=3,
    )
    batcher.start()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.gather(
            batcher.accept(_message("msg:1")),
            batcher.accept(_message("msg:1")),
            batcher.accept(_message("msg:2")),
        )
        assert loop.time() - started < 5  # a full batch does not wait out its window
        assert results == [True, False, True]
        assert batcher.stats.sizes == [3] and await _count(engine) == 2
        assert notifier.notified == [INBOX_CHANNEL]  # one wake-up per batch
    finally:
        await batcher.close()


async def test_a_retry_in_a_later_batch_is_answered_and_not_stored_again(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    notifier = CountingNotifier()
    batcher = InboxBatcher(engine, clock=clock, notifier=notifier, channel=INBOX_CHANNEL)
    batcher.start()
    try:
        assert await batcher.accept(_message("msg:1")) is True
        assert await batcher.accept(_message("msg:1")) is False
        assert await _count(engine) == 1
        assert notifier.notified == [INBOX_CHANNEL]  # nothing new, no wake-up
    finally:
        await batcher.close()


async def test_a_lone_callback_waits_no_longer_than_the_window(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    batcher = InboxBatcher(
        engine, clock=clock, notifier=CountingNotifier(), channel=INBOX_CHANNEL, window=0.002
    )
    batcher.start()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await batcher.accept(_message("msg:lone")) is True
        assert loop.time() - started < batcher.timeout  # window + one commit, not a stall
        assert batcher.stats.sizes == [1]
    finally:
        await batcher.close()


async def test_a_row_the_database_refuses_does_not_sink_its_batch(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    """PostgreSQL refuses NUL in text (SQLite stores it): only that callback gets 503."""
    batcher = InboxBatcher(
        engine,
        clock=clock,
        notifier=CountingNotifier(),
        channel=INBOX_CHANNEL,
        window=5,
        timeout=10,
        max_batch=3,
    )
    batcher.start()
    try:
        results = await asyncio.gather(
            batcher.accept(_message("msg:a")),
            batcher.accept(_message("msg:poison", payload="<xml>\x00</xml>")),
            batcher.accept(_message("msg:b")),
            return_exceptions=True,
        )
        if engine.dialect.name == "postgresql":
            assert results[0] is True and results[2] is True
            assert isinstance(results[1], InboxUnavailable)
            assert await _count(engine) == 2
        else:
            assert results == [True, True, True] and await _count(engine) == 3
    finally:
        await batcher.close()


async def test_closing_refuses_what_is_still_waiting(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    batcher = InboxBatcher(
        engine,
        clock=clock,
        notifier=CountingNotifier(),
        channel=INBOX_CHANNEL,
        window=5,
        timeout=10,
    )
    batcher.start()
    waiting = asyncio.create_task(batcher.accept(_message("msg:late")))
    await asyncio.sleep(0)  # let it queue (a scheduling step, not a wait on time)
    await batcher.close()
    with pytest.raises(InboxUnavailable):
        await waiting
    with pytest.raises(InboxUnavailable):
        await batcher.accept(_message("msg:after"))
    assert await _count(engine) == 0
