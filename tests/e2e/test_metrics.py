"""/metrics as Prometheus reads it: parsed with prometheus_client's own parser, moving when a
message is handled, a reply is sent or dead-lettered, on SQLite and PostgreSQL."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bot import metrics
from tests.e2e.conftest import BotHarness


async def scrape(bot: BotHarness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = await bot.client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_counters_move_when_a_message_is_handled(bot: BotHarness) -> None:
    before = await scrape(bot)
    assert value(before, "wecrm_inbox_depth") == 0
    assert ("process_resident_memory_bytes", ()) in before
    [answer] = await bot.say("zhangsan", "帮助")
    assert "CRM 助手" in answer
    after = await scrape(bot)
    for name, labels in (
        ("wecrm_callbacks_total", {"outcome": "accepted"}),
        ("wecrm_messages_handled_total", {"outcome": "ok"}),
        ("wecrm_handler_seconds_count", {"command": "帮助"}),
        ("wecrm_sends_total", {"errcode": "0"}),
        ("wecrm_ack_seconds_count", {}),
    ):
        assert value(after, name, **labels) == value(before, name, **labels) + 1, name
    # A refused callback is counted by its outcome, and handled nowhere.
    resp = await bot.client.post(
        "/wecom/callback?msg_signature=x&timestamp=1&nonce=n", data=b"<xml/>"
    )
    assert resp.status in (400, 403)
    refused = await scrape(bot)
    outcomes = ("malformed", "forbidden")
    assert sum(value(refused, "wecrm_callbacks_total", outcome=o) for o in outcomes) == 1 + sum(
        value(after, "wecrm_callbacks_total", outcome=o) for o in outcomes
    )


async def test_a_dead_letter_shows_in_the_gauge_and_the_errcode(bot: BotHarness) -> None:
    before = await scrape(bot)  # the queue gauges are read now and cached for a few seconds
    bot.sim.fail_next("message/send", errcode=60011)
    await bot.say("zhangsan", "帮助")
    after = await scrape(bot)
    assert value(after, "wecrm_sends_total", errcode="60011") == (
        value(before, "wecrm_sends_total", errcode="60011") + 1
    )
    assert value(after, "wecrm_dead_letters") == 0  # still the cached read
    metrics.expire_queue_cache()
    fresh = await scrape(bot)
    assert value(fresh, "wecrm_dead_letters") == 1
    assert value(fresh, "wecrm_outbox_depth") == 0 and value(fresh, "wecrm_inbox_depth") == 0
