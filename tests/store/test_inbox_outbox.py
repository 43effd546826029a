"""Inbox and outbox semantics on both databases: dedup, per-user order, leases."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_store.clock import FakeClock
from crm_store.models import InboxMessage, OutboxMessage
from crm_store.queues import inbox, outbox

LEASE = timedelta(seconds=60)


async def _accept(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, key: str, user: str = "zhangsan"
) -> bool:
    async with sessions.begin() as session:
        return await inbox.accept(
            session,
            dedup_key=key,
            user_id=user,
            kind="text",
            payload=f"<xml>{key}</xml>",
            now=clock.now(),
        )


async def _claim(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, worker: str = "w1"
) -> inbox.ClaimedMessage | None:
    async with sessions.begin() as session:
        return await inbox.claim_next(
            session, worker_id=worker, now=clock.now(), lease=LEASE, max_attempts=3
        )


async def test_accept_is_idempotent(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    assert await _accept(sessions, clock, "m1") is True
    assert await _accept(sessions, clock, "m1") is False
    async with sessions() as session:
        rows = (await session.scalars(select(InboxMessage))).all()
    assert [r.dedup_key for r in rows] == ["m1"]


async def test_one_user_is_served_in_order_across_workers(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    await _accept(sessions, clock, "a1", user="alice")
    await _accept(sessions, clock, "a2", user="alice")
    await _accept(sessions, clock, "b1", user="bob")
    first = await _claim(sessions, clock, "w1")
    second = await _claim(sessions, clock, "w2")
    assert first is not None and first.dedup_key == "a1"
    # alice's second message waits for her first; bob's is free.
    assert second is not None and second.dedup_key == "b1"
    assert await _claim(sessions, clock, "w3") is None
    async with sessions.begin() as session:
        await inbox.mark_done(session, message=first, now=clock.now())
    third = await _claim(sessions, clock, "w3")
    assert third is not None and third.dedup_key == "a2"


async def test_expired_lease_is_taken_again_and_old_owner_cannot_finish(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    await _accept(sessions, clock, "m1")
    dead = await _claim(sessions, clock, "dead-worker")
    assert dead is not None
    assert await _claim(sessions, clock, "w2") is None
    clock.advance(61)
    again = await _claim(sessions, clock, "w2")
    assert again is not None and again.dedup_key == "m1" and again.attempts == 2
    async with sessions.begin() as session:
        try:
            await inbox.mark_done(session, message=dead, now=clock.now())
        except inbox.LeaseLost:
            pass
        else:
            raise AssertionError("a worker whose lease expired must not finish the message")


async def test_poison_message_is_parked_after_max_attempts(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    await _accept(sessions, clock, "m1")
    for _ in range(3):
        assert await _claim(sessions, clock) is not None
        clock.advance(61)
    assert await _claim(sessions, clock) is None
    async with sessions() as session:
        row = await session.scalar(select(InboxMessage))
    assert row is not None and row.status == "failed" and "abandoned" in (row.error or "")


async def test_outbox_dedup_order_and_retry(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    async with sessions.begin() as session:
        for i in range(2):
            assert await outbox.enqueue(
                session,
                dedup_key=f"k{i}",
                to_user="alice",
                msgtype="text",
                payload={"text": {"content": str(i)}},
                now=clock.now(),
            )
        assert not await outbox.enqueue(
            session, dedup_key="k0", to_user="alice", msgtype="text", payload={}, now=clock.now()
        )
    async with sessions.begin() as session:
        claimed = await outbox.claim_due(
            session, relay_id="r1", now=clock.now(), lease=LEASE, limit=10
        )
    assert [c.dedup_key for c in claimed] == ["k0"]
    async with sessions.begin() as session:
        await outbox.reschedule(
            session,
            reply=claimed[0],
            at=clock.now() + timedelta(seconds=5),
            error="-1",
            uncertain=True,
        )
    async with sessions.begin() as session:
        assert (
            await outbox.claim_due(session, relay_id="r1", now=clock.now(), lease=LEASE, limit=10)
            == []
        )
    clock.advance(5)
    async with sessions.begin() as session:
        again = await outbox.claim_due(
            session, relay_id="r1", now=clock.now(), lease=LEASE, limit=10
        )
    assert [c.dedup_key for c in again] == ["k0"] and again[0].uncertain
    async with sessions.begin() as session:
        await outbox.mark_sent(
            session, reply=again[0], now=clock.now(), wecom_msgid="x", response_code=None
        )
        assert (
            len(
                await outbox.sent_since(
                    session, to_user="alice", since=clock.now() - timedelta(seconds=60)
                )
            )
            == 1
        )
    async with sessions() as session:
        statuses = {r.dedup_key: r.status for r in (await session.scalars(select(OutboxMessage)))}
    assert statuses == {"k0": "sent", "k1": "pending"}


async def test_one_claim_takes_the_heads_of_many_users_and_no_more(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    for n in range(3):
        for user in ("alice", "bob", "carol", "dave"):
            await _accept(sessions, clock, f"{user}{n}", user=user)
    async with sessions.begin() as session:
        first = await inbox.claim_batch(
            session, worker_id="w1", now=clock.now(), lease=LEASE, max_attempts=3, limit=3
        )
    assert [m.dedup_key for m in first] == ["alice0", "bob0", "carol0"]
    async with sessions.begin() as session:
        second = await inbox.claim_batch(
            session, worker_id="w2", now=clock.now(), lease=LEASE, max_attempts=3, limit=10
        )
    assert [m.dedup_key for m in second] == ["dave0"]  # everyone else's head is taken


async def test_renew_keeps_a_lease_and_release_hands_back_uncounted(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    await _accept(sessions, clock, "m1")
    await _accept(sessions, clock, "m2", user="bob")
    async with sessions.begin() as session:
        claimed = await inbox.claim_batch(
            session, worker_id="w1", now=clock.now(), lease=LEASE, max_attempts=3, limit=5
        )
    clock.advance(50)
    async with sessions.begin() as session:
        kept = await inbox.renew(
            session, worker_id="w1", ids={m.id for m in claimed}, now=clock.now(), lease=LEASE
        )
        assert (
            await inbox.renew(
                session, worker_id="intruder", ids=kept, now=clock.now(), lease=LEASE
            )
            == set()
        )
    assert kept == {m.id for m in claimed}
    clock.advance(50)  # 100 s after the claim, 50 s after the renewal
    assert await _claim(sessions, clock, "w2") is None
    async with sessions.begin() as session:
        assert await inbox.release(session, worker_id="w1", ids=None) == 2
    again = await _claim(sessions, clock, "w2")
    assert again is not None and again.attempts == 1  # the released attempt did not count


async def test_outbox_release_marks_sends_under_way_uncertain(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    async with sessions.begin() as session:
        await outbox.enqueue(
            session, dedup_key="k", to_user="alice", msgtype="text", payload={}, now=clock.now()
        )
    async with sessions.begin() as session:
        [claimed] = await outbox.claim_due(
            session, relay_id="r1", now=clock.now(), lease=LEASE, limit=10
        )
        assert (
            await outbox.release(session, relay_id="r1", ids=None, now=clock.now(), uncertain=True)
            == 1
        )
    async with sessions.begin() as session:
        [again] = await outbox.claim_due(
            session, relay_id="r2", now=clock.now(), lease=LEASE, limit=10
        )
    assert again.uncertain and again.attempts == 1 and again.created_at == clock.now()
