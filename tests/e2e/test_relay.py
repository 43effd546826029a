"""The outbox relay against the simulator: WeCom's error table, pacing, and what users see."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.runtime.outgoing import enqueue_replies
from crm_store.models import OutboxMessage
from handlers.kit.replies import Reply
from tests.e2e.conftest import BotHarness


async def owe(bot: BotHarness, user: str, texts: list[str], key: str = "job") -> None:
    async with bot.runtime.sessions.begin() as session:
        await enqueue_replies(
            session,
            replies=[Reply(to_user=user, kind="text", content=t) for t in texts],
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
            replies=[Reply(to_user="zhangsan", kind="markdown", content=long_text)],
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
    import asyncio

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
