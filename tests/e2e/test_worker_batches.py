"""The batched inbox worker on both databases: few commits, isolated failures, per-user order
with racing workers, renewable leases and a clean stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.cache import LocalCache, Notifier
from bot.gateway import callback
from bot.runtime import channels
from bot.runtime.worker import InboxWorker
from crm_store.clock import FakeClock
from crm_store.models import InboxMessage, OutboxMessage
from crm_store.queues import inbox
from crm_store.session import create_engine, session_factory
from handlers.kit.context import MessageContext
from handlers.kit.inbound import Inbound, TextMessage
from handlers.kit.replies import Reply, TextReply
from tests.e2e.conftest import BotHarness

TZ = ZoneInfo("Asia/Shanghai")
Dispatch = Callable[[Inbound, MessageContext], Awaitable[list[Reply]]]


def text_xml(user: str, content: str, msg_id: int) -> str:
    return (
        f"<xml><ToUserName><![CDATA[corp]]></ToUserName><FromUserName><![CDATA[{user}]]>"
        f"</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId>"
        "<AgentID>1000002</AgentID></xml>"
    )


async def accept(
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    user: str,
    content: str,
    msg_id: int,
    payload: str | None = None,
) -> None:
    async with sessions.begin() as session:
        await inbox.accept(
            session,
            dedup_key=f"msg:{msg_id}",
            user_id=user,
            kind="text",
            payload=payload if payload is not None else text_xml(user, content, msg_id),
            now=clock.now(),
        )


async def echo(message: Inbound, ctx: MessageContext) -> list[Reply]:
    assert isinstance(message, TextMessage)
    return [TextReply(message.user_id, message.text)]


def make_worker(
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    dispatch: Dispatch = echo,
    **options: Any,
) -> InboxWorker:
    return InboxWorker(
        sessions=sessions,
        clock=clock,
        tz=TZ,
        notifier=Notifier(LocalCache()),
        dispatch=dispatch,
        **options,
    )


async def statuses(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with sessions() as session:
        rows = await session.execute(select(InboxMessage.dedup_key, InboxMessage.status))
        return {key: status for key, status in rows.all()}


async def replies_by_user(sessions: async_sessionmaker[AsyncSession]) -> dict[str, list[str]]:
    async with sessions() as session:
        rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        seen: dict[str, list[str]] = {}
        for row in rows.all():
            seen.setdefault(row.to_user, []).append(row.payload["text"]["content"])
        return seen


def count_commits(engine: AsyncEngine) -> list[int]:
    commits = [0]

    @event.listens_for(engine.sync_engine, "commit")
    def _on_commit(_conn: Any) -> None:
        commits[0] += 1

    return commits


def test_channel_names_agree_with_the_gateway() -> None:
    assert callback.INBOX_CHANNEL == channels.INBOX_CHANNEL


async def test_a_batch_costs_two_commits_and_a_failure_rolls_back_only_itself(
    bot: BotHarness,
) -> None:
    worker = bot.runtime.worker
    real_dispatch = worker.dispatch

    async def flaky(message: Any, ctx: Any) -> Any:
        if getattr(message, "text", "") == "boom":
            await ctx.session.execute(
                insert(InboxMessage).values(
                    dedup_key="side-effect",
                    user_id="x",
                    kind="text",
                    payload="",
                    status="done",
                    attempts=0,
                    received_at=bot.clock.now(),
                )
            )
            raise RuntimeError("handler bug")
        if getattr(message, "text", "") == "bad sql":
            await ctx.session.execute(text("SELECT * FROM no_such_table"))
        return await real_dispatch(message, ctx)

    worker.dispatch = flaky
    worker.commit_every = 60.0  # a loaded test machine must not split the batch by time
    await bot.add_person("zhaoliu", "赵六")
    for user, words in [
        ("zhangsan", "帮助"),
        ("lisi", "boom"),
        ("wangwu", "bad sql"),
        ("zhaoliu", "帮助"),
    ]:
        status, _ = await bot.sim.send_text(user, words)
        assert status == 200
    commits = count_commits(bot.runtime.engine)
    assert await worker.process_batch() == 4
    assert commits[0] == 2  # one claim, one batch: not one per message
    await bot.runtime.relay.run_until_idle()
    assert "CRM 助手" in bot.sim.texts_to("zhangsan")[0]
    assert "CRM 助手" in bot.sim.texts_to("zhaoliu")[0]
    for user in ("lisi", "wangwu"):
        [apology] = bot.sim.texts_to(user)
        assert "出了点问题" in apology
    async with bot.runtime.sessions() as session:
        rows = {r.dedup_key: r for r in (await session.scalars(select(InboxMessage))).all()}
    assert "side-effect" not in rows
    failed = sorted((r.error or "") for r in rows.values() if r.status == "failed")
    assert len(failed) == 2 and any("handler bug" in e for e in failed)
    assert sum(r.status == "done" for r in rows.values()) == 2


async def test_four_racing_workers_keep_each_users_order(db_url: str, clock: FakeClock) -> None:
    users = [f"u{i}" for i in range(6)]
    engines = [create_engine(db_url) for _ in range(4)]
    try:
        sessions = [session_factory(e) for e in engines]
        msg_id = 1
        for n in range(8):
            for user in users:
                await accept(sessions[0], clock, user, f"{user}-{n}", msg_id)
                msg_id += 1
        handled: list[tuple[str, str]] = []

        async def record(message: Inbound, ctx: MessageContext) -> list[Reply]:
            assert isinstance(message, TextMessage)
            handled.append((message.user_id, message.text))
            await asyncio.sleep(0)  # let the other workers in between
            return await echo(message, ctx)

        workers = [
            make_worker(s, clock, record, worker_id=f"w{i}", batch=3)
            for i, s in enumerate(sessions)
        ]

        async def drain(worker: InboxWorker) -> int:
            total = 0
            for _ in range(200):
                claimed = await worker.process_batch()
                total += claimed
                if not claimed and not await _claimable(worker):
                    break
            return total

        counts = await asyncio.gather(*(drain(w) for w in workers))
        assert sum(counts) == len(users) * 8
        assert sum(1 for c in counts if c) >= 2  # they really shared the work
        expected = {user: [f"{user}-{n}" for n in range(8)] for user in users}
        in_order = {user: [t for u, t in handled if u == user] for user in users}
        assert in_order == expected
        assert await replies_by_user(sessions[0]) == expected
        assert set((await statuses(sessions[0])).values()) == {"done"}
    finally:
        for engine in engines:
            await engine.dispose()


async def _claimable(worker: InboxWorker) -> bool:
    async with worker.sessions() as session:
        pending = await session.scalar(
            select(func.count())
            .select_from(InboxMessage)
            .where(InboxMessage.status.in_(("pending", "processing")))
        )
    return bool(pending)


async def test_an_unparseable_row_is_recorded_and_skipped_at_once(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    await accept(sessions, clock, "alice", "", 1, payload="<xml><MsgType>text</MsgType>")
    await accept(sessions, clock, "alice", "", 2, payload="not xml at all")
    await accept(sessions, clock, "alice", "next", 3)
    worker = make_worker(sessions, clock)
    assert await worker.run_until_idle() == 3  # the user's queue is not frozen
    assert await statuses(sessions) == {"msg:1": "failed", "msg:2": "failed", "msg:3": "done"}
    async with sessions() as session:
        attempts = set(await session.scalars(select(InboxMessage.attempts)))
    assert attempts == {1}  # never retried
    assert await replies_by_user(sessions) == {"alice": ["next"]}


async def test_a_worker_that_stops_renewing_is_taken_over_after_the_lease(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    await accept(sessions, clock, "alice", "hello", 1)
    dead = make_worker(sessions, clock, worker_id="dead")
    live = make_worker(sessions, clock, worker_id="live")
    [claimed] = await dead.claim_batch()
    clock.advance(9)
    assert await live.run_until_idle() == 0  # the 10 s lease still holds
    clock.advance(2)
    assert await live.run_until_idle() == 1
    await dead.handle_batch([claimed])  # the zombie wakes up: nothing happens twice
    assert await replies_by_user(sessions) == {"alice": ["hello"]}


class ManualBeats:
    """An injected sleep for the heartbeat: each `tick()` lets exactly one beat run."""

    def __init__(self) -> None:
        self.sleeping = 0
        self._changed = asyncio.Condition()
        self._go = asyncio.Event()

    async def sleep(self, _seconds: float) -> None:
        async with self._changed:
            self.sleeping += 1
            self._changed.notify_all()
        await self._go.wait()
        self._go.clear()

    async def tick(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.sleeping > 0)
            before = self.sleeping
            self._go.set()
            await self._changed.wait_for(lambda: self.sleeping > before)


@pytest.mark.parametrize("where", ["meeting", "handler"])
async def test_a_live_slow_worker_keeps_its_message(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, db_url: str, where: str
) -> None:
    """Slow while meeting a stranger (WeCom's user/get, outside any transaction) or inside the
    handler: the heartbeat renews the lease, so no other worker takes the message."""
    if where == "handler" and db_url.startswith("sqlite"):
        pytest.skip("SQLite's one writer: nobody can claim while the transaction is open")
    await accept(sessions, clock, "alice", "slow", 1)
    await accept(sessions, clock, "alice", "after", 2)
    started, release = asyncio.Event(), asyncio.Event()

    async def wait_once() -> None:
        if not started.is_set():
            started.set()
            await release.wait()

    class SlowFetcher:
        async def fetch(self, user_id: str) -> bool:
            if where == "meeting":
                await wait_once()
            return False

    async def slow(message: Inbound, ctx: MessageContext) -> list[Reply]:
        if where == "handler":
            await wait_once()
        return await echo(message, ctx)

    beats = ManualBeats()
    worker = make_worker(
        sessions, clock, slow, worker_id="slow", sleep=beats.sleep, person_fetcher=SlowFetcher()
    )
    other = make_worker(sessions, clock, worker_id="other")
    heartbeat = asyncio.create_task(worker.heartbeat.run())
    handling = asyncio.create_task(worker.run_until_idle())
    try:
        await started.wait()
        for _ in range(10):  # a minute of fake time, a beat every 6 s
            clock.advance(6)
            await beats.tick()
            assert await other.run_until_idle() == 0
        assert worker.heartbeat.beats == 10 and not worker.heartbeat.lost
        release.set()
        assert await handling == 2
    finally:
        heartbeat.cancel()
        release.set()
    assert await replies_by_user(sessions) == {"alice": ["slow", "after"]}


async def test_stop_hands_back_unstarted_work_and_finishes_what_it_can(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    for i, user in enumerate(["a", "b", "c", "d"]):
        await accept(sessions, clock, user, f"{user}-1", i + 1)
    started, release = asyncio.Event(), asyncio.Event()

    async def first_is_slow(message: Inbound, ctx: MessageContext) -> list[Reply]:
        assert isinstance(message, TextMessage)
        if message.user_id == "a":
            started.set()
            await release.wait()
        return await echo(message, ctx)

    worker = make_worker(sessions, clock, first_is_slow, worker_id="stopping", batch=4)
    running = asyncio.create_task(worker.run_forever())
    await started.wait()
    stopping = asyncio.create_task(worker.stop(grace=30))
    await asyncio.sleep(0)
    release.set()  # the running message finishes within the grace period
    await stopping
    await running
    assert await statuses(sessions) == {
        "msg:1": "done",
        "msg:2": "pending",
        "msg:3": "pending",
        "msg:4": "pending",
    }
    async with sessions() as session:
        rows = await session.execute(select(InboxMessage.dedup_key, InboxMessage.attempts))
        attempts = {key: count for key, count in rows.all()}
    assert attempts == {"msg:1": 1, "msg:2": 0, "msg:3": 0, "msg:4": 0}
    successor = make_worker(sessions, clock, worker_id="successor")
    assert await successor.run_until_idle() == 3  # at once, without waiting for a lease
    assert await replies_by_user(sessions) == {u: [f"{u}-1"] for u in "abcd"}


async def test_stop_past_the_grace_rolls_back_and_hands_back(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    await accept(sessions, clock, "a", "stuck", 1)
    await accept(sessions, clock, "b", "b-1", 2)
    started = asyncio.Event()

    async def stuck(message: Inbound, ctx: MessageContext) -> list[Reply]:
        assert isinstance(message, TextMessage)
        if message.text == "stuck":
            await ctx.session.execute(
                insert(InboxMessage).values(
                    dedup_key="half-done",
                    user_id="x",
                    kind="text",
                    payload="",
                    status="done",
                    attempts=0,
                    received_at=clock.now(),
                )
            )
            started.set()
            await asyncio.Event().wait()  # never returns
        return await echo(message, ctx)

    worker = make_worker(sessions, clock, stuck, worker_id="stuck", batch=2)
    running = asyncio.create_task(worker.run_forever())
    await started.wait()
    await worker.stop(grace=0)
    await running
    assert await statuses(sessions) == {"msg:1": "pending", "msg:2": "pending"}
    successor = make_worker(sessions, clock, worker_id="successor")
    assert await successor.run_until_idle() == 2
    assert await replies_by_user(sessions) == {"a": ["stuck"], "b": ["b-1"]}


async def test_strangers_are_met_once_outside_the_transaction(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    fetch_log: list[str] = []

    class Fetcher:
        async def fetch(self, user_id: str) -> bool:
            fetch_log.append(user_id)
            return user_id != "stranger"

    seen_actors: list[object] = []

    async def actor_seen(message: Inbound, ctx: MessageContext) -> list[Reply]:
        seen_actors.append(ctx.actor)
        return await echo(message, ctx)

    worker = make_worker(sessions, clock, actor_seen, person_fetcher=Fetcher())
    for i, user in enumerate(["known", "stranger", "known", "stranger"]):
        await accept(sessions, clock, user, "hi", i + 1)
    assert await worker.run_until_idle() == 4
    assert sorted(fetch_log) == ["known", "stranger", "stranger"]  # unknown: asked again
    assert seen_actors == [None] * 4  # no staff rows: the actor is loaded, and absent
