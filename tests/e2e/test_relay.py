"""The outbox relay against the simulator: WeCom's error table, pacing, and what users see."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from bot.runtime.outgoing import enqueue_replies
from bot.wecom.client import WeComTimeoutError
from crm_store.models import OutboxMessage
from handlers.kit.replies import Card, CardButton, CardReply, MarkdownReply, Reply, TextReply
from tests.e2e.conftest import BotHarness


async def owe(bot: BotHarness, user: str, texts: list[str], key: str = "job") -> None:
    async with bot.runtime.sessions.begin() as session:
        await enqueue_replies(
            session,
            replies=[TextReply(user, t) for t in texts],
            source_key=key,
            clock=bot.clock,
        )


async def rows(bot: BotHarness) -> list[OutboxMessage]:
    async with bot.runtime.sessions() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_expired_token_is_refetched_once_and_the_send_succeeds(bot: BotHarness) -> None:
    await bot.say("zhangsan", "帮助")
    calls_before = bot.sim.token_calls
    bot.sim.expire_tokens()  # WeCom may expire a token early (PROTOCOL.md §4.1)
    seen = await bot.say("zhangsan", "帮助")
    assert len(seen) == 1
    assert bot.sim.token_calls == calls_before + 1


async def test_system_busy_three_times_then_success(bot: BotHarness) -> None:
    bot.sim.fail_next("message/send", errcode=-1, times=3)
    await owe(bot, "zhangsan", ["你好"])
    for _ in range(4):
        await bot.runtime.relay.run_until_idle()
        bot.clock.advance(seconds=600)
    assert bot.sim.texts_to("zhangsan") == ["你好"]
    [row] = await rows(bot)
    assert row.status == "sent" and row.attempts == 4


async def test_permission_error_dead_letters_with_the_reason(bot: BotHarness) -> None:
    bot.sim.fail_next("message/send", errcode=48002)
    await owe(bot, "zhangsan", ["你好"])
    await bot.runtime.relay.run_until_idle()
    bot.clock.advance(seconds=3600)
    await bot.runtime.relay.run_until_idle()
    [row] = await rows(bot)
    assert row.status == "dead" and "48002" in (row.last_error or "")
    assert bot.sim.texts_to("zhangsan") == []


async def test_rate_limit_backs_off_at_least_a_minute(bot: BotHarness) -> None:
    bot.sim.fail_next("message/send", errcode=45009)
    await owe(bot, "zhangsan", ["你好"])
    await bot.runtime.relay.run_until_idle()
    bot.clock.advance(seconds=59)
    await bot.runtime.relay.run_until_idle()
    assert bot.sim.texts_to("zhangsan") == []
    bot.clock.advance(seconds=300)
    await bot.runtime.relay.run_until_idle()
    assert bot.sim.texts_to("zhangsan") == ["你好"]


async def test_a_burst_of_100_to_one_user_is_paced_and_nothing_is_dropped(
    bot: BotHarness,
) -> None:
    texts = [f"第{i}条" for i in range(100)]
    await owe(bot, "zhangsan", texts)
    await owe(bot, "lisi", ["别人的消息"], key="other")
    await bot.runtime.relay.run_until_idle()
    first_minute = bot.sim.texts_to("zhangsan")
    assert 0 < len(first_minute) <= 30
    assert bot.sim.texts_to("lisi") == ["别人的消息"]  # one busy user does not block others
    for _ in range(10):
        bot.clock.advance(seconds=61)
        await bot.runtime.relay.run_until_idle()
    assert bot.sim.texts_to("zhangsan") == texts  # all of them, in order
    assert bot.sim.dropped == []


async def test_lost_response_is_retried_without_a_second_copy(bot: BotHarness) -> None:
    """WeCom delivered, but the answer never came back: the retry must not show it twice."""
    bot.sim.drop_connection_next("message/send")
    await owe(bot, "zhangsan", ["只显示一次"])
    await bot.runtime.relay.run_until_idle()
    bot.clock.advance(seconds=600)
    await bot.runtime.relay.run_until_idle()
    [row] = await rows(bot)
    assert row.status == "sent"
    assert bot.sim.texts_to("zhangsan") == ["只显示一次"]


async def test_server_errors_and_timeouts_are_retried(bot: BotHarness) -> None:
    bot.sim.http_error_next("message/send", status=502)
    await owe(bot, "zhangsan", ["你好"])
    await bot.runtime.relay.run_until_idle()
    assert bot.sim.texts_to("zhangsan") == []
    bot.clock.advance(seconds=600)
    await bot.runtime.relay.run_until_idle()
    assert bot.sim.texts_to("zhangsan") == ["你好"]


async def test_long_markdown_is_split_at_lines_within_2048_bytes(bot: BotHarness) -> None:
    long_text = "\n".join(f"第{i}行：客户跟进记录内容较长的一行文字" for i in range(200))
    async with bot.runtime.sessions.begin() as session:
        await enqueue_replies(
            session,
            replies=[MarkdownReply("zhangsan", long_text)],
            source_key="long",
            clock=bot.clock,
        )
    for _ in range(3):
        await bot.runtime.relay.run_until_idle()
        bot.clock.advance(seconds=61)
    seen = bot.sim.texts_to("zhangsan")
    assert len(seen) > 1
    assert all(len(piece.encode()) <= 2048 for piece in seen)
    assert "\n".join(seen) == long_text
    assert not any(m.truncated for m in bot.sim.sent_messages)


async def test_invalid_recipient_dead_letters_instead_of_retrying(bot: BotHarness) -> None:
    await owe(bot, "nobody-here", ["你好"])
    await bot.runtime.relay.run_until_idle()
    bot.clock.advance(seconds=3600)
    await bot.runtime.relay.run_until_idle()
    [row] = await rows(bot)
    assert row.status == "dead" and "81013" in (row.last_error or "")


async def test_relay_skips_nothing_when_two_relays_share_the_outbox(
    bot: BotHarness, make_bot: Any
) -> None:
    from bot.runtime.relay import OutboxRelay

    await owe(bot, "zhangsan", [f"m{i}" for i in range(10)])
    other = OutboxRelay(
        sessions=bot.runtime.sessions,
        client=bot.runtime.client,
        clock=bot.clock,
        notifier=bot.runtime.notifier,
        relay_id="r2",
    )
    await asyncio.gather(bot.runtime.relay.run_until_idle(), other.run_until_idle())
    await bot.runtime.relay.run_until_idle()
    assert bot.sim.texts_to("zhangsan") == [f"m{i}" for i in range(10)]


async def test_a_relay_that_dies_after_sending_is_not_seen_twice(bot: BotHarness) -> None:
    """Sent to WeCom, then the process died before recording it: the next relay retries
    with WeCom's duplicate check, so the person still sees one copy."""
    from datetime import timedelta

    from crm_store.queues import outbox

    await owe(bot, "zhangsan", ["只会看到一次"])
    async with bot.runtime.sessions.begin() as session:
        [claimed] = await outbox.claim_due(
            session, relay_id="doomed", now=bot.clock.now(), lease=timedelta(seconds=60), limit=10
        )
    await bot.runtime.relay.send(claimed, [])  # delivered; the outcome is never written
    bot.clock.advance(seconds=61)
    await bot.runtime.relay.run_until_idle()
    [row] = await rows(bot)
    assert row.status == "sent" and row.uncertain
    assert bot.sim.texts_to("zhangsan") == ["只会看到一次"]
    assert len(bot.sim.deduplicated) == 1


async def test_a_150_second_outage_loses_no_reply(bot: BotHarness) -> None:
    """Issue 15.1: with -1 for 150 s, 10 of 370 replies were dead-lettered; now none is."""
    users = [f"rep{i:02d}" for i in range(37)]
    for user in users:
        bot.sim.add_user(user, user, [1])
        await owe(bot, user, [f"{user}-{n}" for n in range(10)], key=f"burst-{user}")
    bot.sim.fail_next("message/send", errcode=-1, times=1_000_000)
    for _ in range(30):  # 150 s of outage, the relay trying every 5 s
        await bot.runtime.relay.run_until_idle()
        bot.clock.advance(seconds=5)
    assert all(not bot.sim.texts_to(user) for user in users)
    bot.sim.faults.clear()
    for _ in range(12):
        await bot.runtime.relay.run_until_idle()
        bot.clock.advance(seconds=60)
    for user in users:
        assert bot.sim.texts_to(user) == [f"{user}-{n}" for n in range(10)]
    statuses = {row.status for row in await rows(bot)}
    assert statuses == {"sent"}
    assert bot.sim.dropped == [] and bot.sim.deduplicated == []


async def test_transient_errors_retry_for_hours_and_give_up_only_at_max_age(
    bot: BotHarness,
) -> None:
    bot.sim.fail_next("message/send", errcode=45033, times=1_000_000)
    await owe(bot, "zhangsan", ["迟到的提醒"])
    for _ in range(47 * 12):  # 47 hours, looking every 5 minutes
        await bot.runtime.relay.run_until_idle()
        bot.clock.advance(seconds=300)
    [row] = await rows(bot)
    assert row.status == "pending" and row.attempts > 100
    for _ in range(2 * 12):
        await bot.runtime.relay.run_until_idle()
        bot.clock.advance(seconds=300)
    [row] = await rows(bot)
    assert row.status == "dead" and "gave up after 48 h" in (row.last_error or "")


def card_reply(user: str, task_id: str) -> Reply:
    return CardReply(
        user,
        Card(
            title="跟进提醒",
            description="上海张记贸易有限公司",
            task_id=task_id,
            buttons=(CardButton(text="完成", key="done:1"),),
        ),
    )


class LosesAnswers:
    """WeCom acts on the send, but its answer is lost on the way back (a timeout)."""

    def __init__(self, client: Any, times: int) -> None:
        self.client = client
        self.times = times

    async def send_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.client.send_message(payload)
        if self.times:
            self.times -= 1
            raise WeComTimeoutError("message/send", "timed out")
        return result


async def test_a_card_whose_first_send_went_through_is_not_dead_lettered(
    bot: BotHarness,
) -> None:
    """Issue 15.9: the retry is refused for its reused task_id; that means it was delivered."""
    async with bot.runtime.sessions.begin() as session:
        await enqueue_replies(
            session,
            replies=[card_reply("zhangsan", "followup_42")],
            source_key="card",
            clock=bot.clock,
        )
    relay = bot.runtime.relay
    relay.client = LosesAnswers(relay.client, times=1)  # type: ignore[assignment]
    await relay.run_until_idle()
    [row] = await rows(bot)
    assert row.status == "pending" and row.uncertain
    bot.clock.advance(seconds=600)
    await relay.run_until_idle()
    [row] = await rows(bot)
    assert row.status == "sent" and "earlier attempt" in (row.last_error or "")
    [card] = bot.sim.messages_to("zhangsan")
    assert card.payload["task_id"] == "followup_42"


async def test_a_card_taken_over_from_a_dead_relay_is_not_dead_lettered(
    bot: BotHarness,
) -> None:
    from datetime import timedelta

    from crm_store.queues import outbox

    async with bot.runtime.sessions.begin() as session:
        await enqueue_replies(
            session,
            replies=[card_reply("zhangsan", "deal_7")],
            source_key="card",
            clock=bot.clock,
        )
    async with bot.runtime.sessions.begin() as session:
        [claimed] = await outbox.claim_due(
            session, relay_id="doomed", now=bot.clock.now(), lease=timedelta(seconds=10), limit=1
        )
    await bot.runtime.relay.send(claimed, [])  # delivered; the outcome is never written
    bot.clock.advance(seconds=11)
    await bot.runtime.relay.run_until_idle()
    [row] = await rows(bot)
    assert row.status == "sent"
    assert len(bot.sim.messages_to("zhangsan")) == 1


async def test_a_first_send_refused_for_its_task_id_is_dead(bot: BotHarness) -> None:
    async with bot.runtime.sessions.begin() as session:
        for key in ("one", "two"):  # a handler bug: two cards with one task_id
            await enqueue_replies(
                session,
                replies=[card_reply("zhangsan", "same_id")],
                source_key=key,
                clock=bot.clock,
            )
    await bot.runtime.relay.run_until_idle()
    await bot.runtime.relay.run_until_idle()
    first, second = await rows(bot)
    assert first.status == "sent"
    assert second.status == "dead" and "40058" in (second.last_error or "")


class Gate:
    """No send is answered until `width` of them are under way at once."""

    def __init__(self, client: Any, width: int) -> None:
        self.client = client
        self.width = width
        self.in_flight = 0
        self.peak = 0
        self._open = asyncio.Event()

    async def send_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight >= self.width:
            self._open.set()
        try:
            await self._open.wait()
            result: dict[str, Any] = await self.client.send_message(payload)
            return result
        finally:
            self.in_flight -= 1


async def test_sends_to_different_people_run_concurrently_each_in_order(
    bot: BotHarness,
) -> None:
    users = [f"rep{i:02d}" for i in range(24)]
    for user in users:
        bot.sim.add_user(user, user, [1])
        await owe(bot, user, [f"{user}-{n}" for n in range(3)], key=f"k-{user}")
    gate = Gate(bot.runtime.relay.client, width=20)
    bot.runtime.relay.client = gate  # type: ignore[assignment]
    async with asyncio.timeout(60):  # a relay sending one at a time never opens the gate
        assert await bot.runtime.relay.run_until_idle() == 72
    assert gate.peak >= 20
    for user in users:
        assert bot.sim.texts_to(user) == [f"{user}-{n}" for n in range(3)]


class HoldsOne:
    """Sends to `held` hang until released; tells when `expected` other sends are done."""

    def __init__(self, client: Any, held: str, expected: int) -> None:
        self.client = client
        self.held = held
        self.expected = expected
        self.others = 0
        self.others_done = asyncio.Event()
        self.release = asyncio.Event()

    async def send_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("touser") == self.held:
            await self.release.wait()
        result: dict[str, Any] = await self.client.send_message(payload)
        if payload.get("touser") != self.held:
            self.others += 1
            if self.others == self.expected:
                self.others_done.set()
        return result


async def test_one_slow_send_does_not_hold_up_other_recipients(bot: BotHarness) -> None:
    """The relay is a pipeline, not batch by batch: others' later messages go out meanwhile."""
    await owe(bot, "zhangsan", ["慢的"], key="slow")
    for user in ("lisi", "wangwu"):
        await owe(bot, user, [f"{user}-{n}" for n in range(4)], key=f"fast-{user}")
    holder = HoldsOne(bot.runtime.relay.client, held="zhangsan", expected=8)
    bot.runtime.relay.client = holder  # type: ignore[assignment]
    draining = asyncio.create_task(bot.runtime.relay.run_until_idle())
    try:
        async with asyncio.timeout(60):
            await holder.others_done.wait()
        assert bot.sim.texts_to("zhangsan") == []
        assert bot.sim.texts_to("lisi") == [f"lisi-{n}" for n in range(4)]
    finally:
        holder.release.set()
    assert await draining == 9
    assert bot.sim.texts_to("zhangsan") == ["慢的"]
