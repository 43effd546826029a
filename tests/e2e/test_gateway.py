"""The WeCom edge end to end: encrypted callbacks in, what the person sees out."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select

from bot.runtime.worker import InboxWorker
from bot.simulator import WeComSimulator
from crm_store.models import InboxMessage, OutboxMessage
from tests.e2e.conftest import CORP_ID, BotHarness

VECTORS = json.loads((Path(__file__).parents[1] / "fixtures" / "wecom_vectors.json").read_text())[
    "vectors"
]


def vector(vector_id: str) -> dict[str, Any]:
    return next(v for v in VECTORS if v["id"] == vector_id)


async def count(bot: BotHarness, model: type) -> int:
    async with bot.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_help_reaches_the_user_through_an_encrypted_callback(bot: BotHarness) -> None:
    seen = await bot.say("zhangsan", "帮助")
    assert len(seen) == 1
    assert "CRM 助手" in seen[0] and "帮助" in seen[0]


async def test_unknown_text_gets_a_hint_not_silence(bot: BotHarness) -> None:
    seen = await bot.say("zhangsan", "今天天气不错")
    assert len(seen) == 1 and "没看懂" in seen[0] and "帮助" in seen[0]


async def test_url_verification_answers_the_plain_echo(bot: BotHarness) -> None:
    status, body = await bot.sim.verify_callback_url("1616140317555161061")
    assert (status, body) == (200, "1616140317555161061")


async def test_official_vectors_through_the_endpoint(make_bot: Any) -> None:
    """Set B of the official doc: GET verification and POST decryption with its own keys."""
    get_vec, post_vec = vector("B1_verify_url"), vector("B2_decrypt_xml_post")
    bot: BotHarness = await make_bot(
        WECOM_CORP_ID=get_vec["receiveid"],
        WECOM_TOKEN=get_vec["token"],
        WECOM_AES_KEY=get_vec["encoding_aes_key"],
        WECRM_CALLBACK_MAX_SKEW=0,
    )
    query = (
        f"msg_signature={get_vec['msg_signature']}&timestamp={get_vec['timestamp']}"
        f"&nonce={get_vec['nonce']}&echostr={get_vec['echostr_urlencoded']}"
    )
    resp = await bot.client.get(f"/wecom/callback?{query}")
    assert resp.status == 200
    assert await resp.read() == get_vec["expected_plaintext"].encode()

    query = (
        f"msg_signature={post_vec['msg_signature']}&timestamp={post_vec['timestamp']}"
        f"&nonce={post_vec['nonce']}"
    )
    resp = await bot.client.post(f"/wecom/callback?{query}", data=post_vec["post_body"])
    assert resp.status == 200 and await resp.read() == b""
    async with bot.runtime.sessions() as session:
        row = await session.scalar(select(InboxMessage))
    assert row is not None and row.dedup_key == "msg:4561255354251345929"
    assert row.payload == post_vec["expected_plaintext"] and row.user_id == "mycreate"


async def test_same_msgid_four_times_three_concurrent_is_handled_once(bot: BotHarness) -> None:
    xml = bot.sim.sender.message_xml("zhangsan", "text", msg_id=777001, Content="帮助")
    first = await bot.sim.send_callback(xml)
    concurrent = await asyncio.gather(*(bot.sim.send_callback(xml) for _ in range(3)))
    assert [first, *concurrent] == [(200, "")] * 4
    await bot.drain()
    assert await count(bot, InboxMessage) == 1
    assert bot.runtime.worker.processed == 1
    assert len(bot.sim.texts_to("zhangsan")) == 1


async def test_retry_after_processing_does_nothing_more(bot: BotHarness) -> None:
    await bot.say("zhangsan", "帮助", msg_id=42)
    assert await bot.say("zhangsan", "帮助", msg_id=42) == []
    assert bot.runtime.worker.processed == 1


async def test_worker_killed_after_claim_is_replaced_after_the_lease(bot: BotHarness) -> None:
    status, _ = await bot.sim.send_text("zhangsan", "帮助", msg_id=5150)
    assert status == 200
    dead = InboxWorker(
        sessions=bot.runtime.sessions,
        clock=bot.clock,
        tz=bot.runtime.settings.tz,
        notifier=bot.runtime.notifier,
        dispatch=bot.runtime.worker.dispatch,
        worker_id="doomed",
    )
    claimed = await dead.claim()  # ... and then the process dies
    assert claimed is not None
    await bot.drain()
    assert bot.sim.texts_to("zhangsan") == []  # the lease still holds it
    bot.clock.advance(61)
    await bot.drain()
    assert len(bot.sim.texts_to("zhangsan")) == 1
    await dead.handle(claimed)  # the zombie wakes up: its lease is gone, nothing happens
    await bot.drain()
    assert len(bot.sim.texts_to("zhangsan")) == 1
    assert await count(bot, OutboxMessage) == 1


async def test_handler_error_rolls_back_apologises_and_others_go_on(bot: BotHarness) -> None:
    worker = bot.runtime.worker
    real_dispatch = worker.dispatch

    async def flaky(message: Any, ctx: Any) -> Any:
        if getattr(message, "text", "") == "boom":
            await ctx.session.execute(
                InboxMessage.__table__.insert().values(
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
        return await real_dispatch(message, ctx)

    worker.dispatch = flaky
    await bot.sim.send_text("zhangsan", "boom")
    await bot.sim.send_text("lisi", "帮助")
    await bot.drain()
    assert "出了点问题" in bot.sim.texts_to("zhangsan")[0]
    assert "CRM 助手" in bot.sim.texts_to("lisi")[0]
    async with bot.runtime.sessions() as session:
        rows = {r.dedup_key: r for r in (await session.scalars(select(InboxMessage))).all()}
    assert "side-effect" not in rows  # the failed message's writes were rolled back
    failed = [r for r in rows.values() if r.status == "failed"]
    assert len(failed) == 1 and "handler bug" in (failed[0].error or "")


async def test_forged_signature_stale_timestamp_and_wrong_corp_are_refused(
    bot: BotHarness,
) -> None:
    xml = bot.sim.sender.message_xml("zhangsan", "text", msg_id=1, Content="帮助")
    params, body = bot.sim.sender.build_post(xml)
    forged = {**params, "msg_signature": "0" * 40}
    assert (await bot.sim.sender.post_raw(bot.callback_url, forged, body))[0] == 403

    stale_ts = str(int(bot.clock.now().timestamp()) - 301)
    params, body = bot.sim.sender.build_post(xml, timestamp=stale_ts)
    assert (await bot.sim.sender.post_raw(bot.callback_url, params, body))[0] == 403

    other_corp = WeComSimulator(
        "wwsomeoneelse00001", "s", 1, bot.sim.token, bot.sim.encoding_aes_key, bot.clock
    )
    params, body = other_corp.sender.build_post(xml)
    assert (await bot.sim.sender.post_raw(bot.callback_url, params, body))[0] == 403
    await other_corp.close()
    assert await count(bot, InboxMessage) == 0


async def test_bad_bodies_get_4xx_and_the_server_keeps_serving(bot: BotHarness) -> None:
    sender = bot.sim.sender
    ok_params, _ = sender.build_post(sender.message_xml("zhangsan", "text", msg_id=9, Content="x"))
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<xml><Encrypt>&lol2;</Encrypt></xml>"
    )
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<xml><Encrypt>&e;</Encrypt></xml>"
    )
    bad_b64 = b"<xml><Encrypt><![CDATA[not base64 at all!!]]></Encrypt></xml>"
    short = base64.b64encode(b"x" * 16).decode()
    bad_pad = f"<xml><Encrypt><![CDATA[{short}]]></Encrypt></xml>".encode()
    bodies = [
        bomb,
        xxe,
        b"A" * (2 * 1024 * 1024),
        bytes(range(256)) * 4,
        b"",
        bad_b64,
        bad_pad,
        b"<xml><Encrypt>",
        b"<notxml/>",
    ]
    for body in bodies:
        params = dict(ok_params)
        encrypt = _encrypt_field(body)
        if encrypt is not None:  # sign what is inside, so the refusal comes from later checks
            params["msg_signature"] = sender.crypto.signature(
                params["timestamp"], params["nonce"], encrypt
            )
        if len(body) > 1024 * 1024:
            resp = await bot.client.post("/wecom/callback", params=params, data=io.BytesIO(body))
            status, text = resp.status, await resp.text()
        else:
            status, text = await sender.post_raw(bot.callback_url, params, body)
        assert 400 <= status < 500, (body[:40], status)
        assert "Traceback" not in text
    assert await bot.say("zhangsan", "帮助")


def _encrypt_field(body: bytes) -> str | None:
    start, end = body.find(b"<![CDATA["), body.find(b"]]>")
    return body[start + 9 : end].decode() if 0 <= start < end else None


async def test_missing_query_parameters_are_400(bot: BotHarness) -> None:
    assert (await bot.client.post("/wecom/callback", data=b"<xml/>")).status == 400
    assert (await bot.client.get("/wecom/callback")).status == 400
    resp = await bot.client.get(
        "/wecom/callback?msg_signature=a&timestamp=1&nonce=2&echostr=" + quote("abc+/=")
    )
    assert resp.status == 403


async def test_health_and_readiness(bot: BotHarness) -> None:
    assert (await bot.client.get("/healthz")).status == 200
    resp = await bot.client.get("/readyz")
    report = await resp.json()
    assert resp.status == 200 and report["database"] == "ok" and report["status"] == "ok"


async def test_a_picture_gets_a_polite_hint(bot: BotHarness) -> None:
    before = len(bot.sim.texts_to("zhangsan"))
    status, _ = await bot.sim.sender.send_message(
        bot.callback_url, "zhangsan", "image", PicUrl="http://x/y.png", MediaId="m1"
    )
    assert status == 200
    await bot.drain()
    assert "文字消息" in bot.sim.texts_to("zhangsan")[before]


async def test_template_card_click_is_understood(bot: BotHarness) -> None:
    xml = bot.sim.sender.event_xml(
        "zhangsan",
        "template_card_event",
        EventKey="help:x",
        TaskId="t1",
        CardType="button_interaction",
        ResponseCode="rc",
    )
    assert await bot.sim.send_callback(xml) == (200, "")
    await bot.drain()
    async with bot.runtime.sessions() as session:
        row = await session.scalar(select(InboxMessage))
    assert row is not None and row.kind == "event:template_card_event"
    assert row.status == "done" and row.dedup_key.startswith("evt:")


async def test_secrets_never_reach_the_log(bot: BotHarness, caplog: Any) -> None:
    caplog.set_level("DEBUG")
    bot.sim.fail_next("message/send", errcode=48002)
    await bot.say("zhangsan", "帮助")
    text = caplog.text
    for secret in (
        bot.runtime.settings.wecom_secret.get_secret_value(),
        bot.runtime.settings.wecom_aes_key.get_secret_value(),
    ):
        assert secret not in text
    assert "48002" in text and CORP_ID not in text.replace(CORP_ID, "")
