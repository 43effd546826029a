"""Our async WeCom client against the local WeCom: tokens, retries, errors, no leaked secrets."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from bot.simulator import WeComSimulator
from bot.wecom.client import (
    InProcessTokenCache,
    WeComClient,
    WeComError,
    WeComTimeoutError,
    WeComTransportError,
    split_for_wecom,
)
from crm_store.clock import FakeClock
from tests.sim.conftest import AGENT_ID, CORP_ID, SECRET

TEXT = {"touser": "zhangsan", "msgtype": "text", "text": {"content": "你好"}}


# --- access token ----------------------------------------------------------------------------


async def test_token_is_cached(client: WeComClient, sim: WeComSimulator) -> None:
    first = await client.access_token()
    assert await client.access_token() == first
    await client.send_message(TEXT)
    await client.send_message(TEXT)
    assert sim.token_calls == 1


async def test_cold_cache_single_flight(client: WeComClient, sim: WeComSimulator) -> None:
    tokens = await asyncio.gather(*(client.access_token() for _ in range(200)))
    assert sim.token_calls == 1
    assert len(set(tokens)) == 1


async def test_single_flight_across_clients_sharing_a_cache(
    make_client: Callable[..., WeComClient], sim: WeComSimulator, clock: FakeClock
) -> None:
    cache = InProcessTokenCache(clock)
    clients = [make_client(token_cache=cache) for _ in range(5)]
    sim.delay_next("gettoken", 0.02)  # hold the first gettoken open while the others queue
    tokens = await asyncio.gather(*(c.access_token() for c in clients for _ in range(20)))
    assert sim.token_calls == 1
    assert len(set(tokens)) == 1


async def test_tokens_are_cached_per_app(
    make_client: Callable[..., WeComClient], sim: WeComSimulator, clock: FakeClock
) -> None:
    cache = InProcessTokenCache(clock)
    await make_client(token_cache=cache).access_token()
    await make_client(token_cache=cache, agent_id=AGENT_ID + 1).access_token()
    assert sim.token_calls == 2


async def test_token_refreshed_before_expiry(
    client: WeComClient, sim: WeComSimulator, clock: FakeClock
) -> None:
    first = await client.access_token()
    clock.advance(7200 - 300 - 1)
    assert await client.access_token() == first
    assert sim.token_calls == 1
    clock.advance(2)  # inside the last 300 s: refresh early
    assert await client.access_token() == first  # WeCom hands out the same token while valid
    assert sim.token_calls == 2
    clock.advance(299)
    second = await client.access_token()
    assert second != first
    assert sim.token_calls == 3
    await client.send_message(TEXT)
    assert sim.texts_to("zhangsan") == ["你好"]


async def test_failed_refresh_is_not_cached(client: WeComClient, sim: WeComSimulator) -> None:
    sim.fail_next("gettoken", errcode=-1)
    with pytest.raises(WeComError) as info:
        await client.access_token()
    assert (info.value.errcode, info.value.path) == (-1, "gettoken")
    assert await client.access_token()
    assert sim.token_calls == 2


async def test_cancelled_waiter_does_not_cancel_the_refresh(
    client: WeComClient, sim: WeComSimulator
) -> None:
    sim.delay_next("gettoken", 0.05)
    waiter = asyncio.ensure_future(client.access_token())
    for _ in range(1000):  # until gettoken reached the simulator (bounded)
        if sim.token_calls:
            break
        await asyncio.sleep(0.001)
    assert sim.token_calls == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await client.access_token()
    assert sim.token_calls == 1


async def test_in_process_cache_follows_the_clock(clock: FakeClock) -> None:
    cache = InProcessTokenCache(clock)
    await cache.set("k", "v", 10)
    assert await cache.get("k") == "v"
    clock.advance(10)
    assert await cache.get("k") is None
    await cache.set("k", "v", 10)
    await cache.delete("k")
    assert await cache.get("k") is None
    async with cache.lock("k"):
        assert cache.lock("k").locked()  # type: ignore[attr-defined]


# --- token errors and retries ----------------------------------------------------------------


@pytest.mark.parametrize("errcode", [42001, 40014, 40001])
async def test_rejected_token_is_refetched_once(
    client: WeComClient, sim: WeComSimulator, errcode: int
) -> None:
    await client.access_token()
    sim.fail_next("message/send", errcode=errcode)
    answer = await client.send_message(TEXT)
    assert answer["errcode"] == 0
    assert sim.token_calls == 2  # exactly one refetch
    assert sim.calls["message/send"] == 2
    assert sim.texts_to("zhangsan") == ["你好"]


async def test_expired_token_gets_a_new_one(client: WeComClient, sim: WeComSimulator) -> None:
    old = await client.access_token()
    sim.expire_tokens()
    await client.send_message(TEXT)
    assert await client.access_token() != old
    assert sim.token_calls == 2


async def test_invalidated_token_gets_a_new_one(client: WeComClient, sim: WeComSimulator) -> None:
    old = await client.access_token()
    sim.invalidate_tokens()
    await client.get_user("lisi")
    assert await client.access_token() != old


async def test_retry_happens_only_once(client: WeComClient, sim: WeComSimulator) -> None:
    sim.fail_next("message/send", errcode=42001, times=2)
    with pytest.raises(WeComError) as info:
        await client.send_message(TEXT)
    assert info.value.errcode == 42001
    assert sim.calls["message/send"] == 2
    assert sim.token_calls == 2


async def test_concurrent_callers_with_a_stale_token_refetch_once(
    client: WeComClient, sim: WeComSimulator
) -> None:
    await client.access_token()
    sim.expire_tokens()
    await asyncio.gather(*(client.get_user("lisi") for _ in range(20)))
    assert sim.token_calls == 2


async def test_wrong_secret(make_client: Callable[..., WeComClient], sim: WeComSimulator) -> None:
    client = make_client(secret="not-the-secret-value")
    with pytest.raises(WeComError) as info:
        await client.send_message(TEXT)
    assert (info.value.errcode, info.value.path) == (40001, "gettoken")
    assert "not-the-secret-value" not in str(info.value)
    assert sim.token_calls == 1


async def test_system_busy_surfaces(client: WeComClient, sim: WeComSimulator) -> None:
    sim.fail_next("message/send", errcode=-1)
    with pytest.raises(WeComError) as info:
        await client.send_message(TEXT)
    assert info.value.errcode == -1
    assert info.value.path == "message/send"
    assert "system busy" in info.value.errmsg
    assert sim.sent_messages == []


# --- transport errors ------------------------------------------------------------------------


async def test_timeout_is_a_transport_error(
    make_client: Callable[..., WeComClient], sim: WeComSimulator
) -> None:
    client = make_client(timeout=0.05)
    await client.access_token()
    sim.delay_next("message/send", 30)
    with pytest.raises(asyncio.TimeoutError) as info:
        await client.send_message(TEXT)
    assert isinstance(info.value, WeComTimeoutError)
    assert isinstance(info.value, aiohttp.ClientError)
    assert info.value.path == "message/send"


async def test_dropped_connection(client: WeComClient, sim: WeComSimulator) -> None:
    await client.access_token()
    sim.drop_connection_next("message/send")
    with pytest.raises(aiohttp.ClientError) as info:
        await client.send_message(TEXT)
    assert isinstance(info.value, WeComTransportError)
    assert info.value.reason == "ServerDisconnectedError"
    sim.drop_connection_next("user/get", times=2)
    with pytest.raises(WeComTransportError):
        await client.get_user("lisi")


async def test_http_error(client: WeComClient, sim: WeComSimulator) -> None:
    sim.http_error_next("gettoken", status=503)
    with pytest.raises(WeComTransportError) as info:
        await client.access_token()
    assert info.value.status == 503


async def test_unreachable_host(make_client: Callable[..., WeComClient]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{port}/cgi-bin")
    with pytest.raises(WeComTransportError) as info:
        await client.access_token()
    assert SECRET not in str(info.value)


async def test_non_json_answer(make_client: Callable[..., WeComClient], sim_server: Any) -> None:
    client = make_client(base_url=str(sim_server.make_url("/sim")))  # /sim/gettoken is a 404
    with pytest.raises(WeComTransportError) as info:
        await client.access_token()
    assert info.value.status == 404


async def test_secrets_never_in_errors_or_logs(
    make_client: Callable[..., WeComClient],
    sim: WeComSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(timeout=0.05)
    token = await client.access_token()
    errors: list[BaseException] = []
    faults: list[Callable[[], None]] = [
        lambda: sim.fail_next("message/send", errcode=-1),
        lambda: sim.fail_next("message/send", errcode=42001, times=2),
        lambda: sim.http_error_next("message/send", status=502),
        lambda: sim.drop_connection_next("message/send"),
        lambda: sim.delay_next("message/send", 30),
    ]
    for inject in faults:
        inject()
        try:
            await client.send_message(TEXT)
        except (WeComError, aiohttp.ClientError, TimeoutError) as exc:
            errors.append(exc)
    sim.expire_tokens()
    await client.send_message(TEXT)
    newest = await client.access_token()
    bad_secret = make_client(secret="another-secret-value-123")
    try:
        await bad_secret.access_token()
    except WeComError as exc:
        errors.append(exc)
    assert len(errors) == 6
    texts = [str(e) for e in errors] + [repr(e) for e in errors] + [repr(client)]
    texts += [r.getMessage() for r in caplog.records]
    texts += [caplog.text]
    for text in texts:
        for secret in (SECRET, token, newest, "another-secret-value-123"):
            assert secret not in text
    assert any("fetching a new one" in r.getMessage() for r in caplog.records)


# --- API methods -----------------------------------------------------------------------------


async def test_send_message_adds_agentid(client: WeComClient, sim: WeComSimulator) -> None:
    payload = {
        "touser": "zhangsan|ghost",
        "msgtype": "markdown",
        "markdown": {"content": "**hi**"},
    }
    answer = await client.send_message(payload)
    assert "agentid" not in payload
    assert answer["invaliduser"] == "ghost" and answer["msgid"]
    assert sim.sent_messages[0].request["agentid"] == AGENT_ID


async def test_send_to_nobody_raises_81013(client: WeComClient) -> None:
    with pytest.raises(WeComError) as info:
        await client.send_message({**TEXT, "touser": "ghost"})
    assert info.value.errcode == 81013


async def test_upload_media_and_send(client: WeComClient, sim: WeComSimulator) -> None:
    await client.access_token()
    sim.fail_next("media/upload", errcode=42001)  # the retry must rebuild the multipart body
    media_id = await client.upload_media("file", "客户名单.xlsx", b"PK\x03\x04 fake xlsx")
    assert sim.media[media_id].filename == "客户名单.xlsx"
    assert sim.media[media_id].content == b"PK\x03\x04 fake xlsx"
    await client.send_message(
        {"touser": "lisi", "msgtype": "file", "file": {"media_id": media_id}}
    )
    assert sim.messages_to("lisi")[0].payload == {"media_id": media_id}


async def test_update_template_card(client: WeComClient, sim: WeComSimulator) -> None:
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "商机阶段变更审批"},
        "task_id": "deal-42-approve",
        "button_list": [{"text": "同意", "key": "approve"}, {"text": "拒绝", "key": "reject"}],
    }
    sent = await client.send_message(
        {"touser": "wangjl", "msgtype": "template_card", "template_card": card}
    )
    body = {"userids": ["wangjl"], "response_code": sent["response_code"]}
    await client.update_template_card({**body, "button": {"replace_name": "已同意"}})
    assert sim.card_updates[0].button == {"replace_name": "已同意"}
    with pytest.raises(WeComError) as info:
        await client.update_template_card({**body, "button": {"replace_name": "again"}})
    assert info.value.errcode == 60140


async def test_directory_methods(client: WeComClient) -> None:
    user = await client.get_user("liuzz")
    assert "errcode" not in user
    assert user["is_leader_in_dept"] == [1] and user["direct_leader"] == ["wangjl"]
    sales = await client.list_users(2)
    assert {u["userid"] for u in sales} == {"wangjl", "liuzz", "zhangsan", "lisi"}
    assert [u["userid"] for u in await client.list_users(2, fetch_child=False)] == ["wangjl"]
    departments = await client.list_departments()
    assert [d["id"] for d in departments] == [1, 2, 3, 4]
    assert [d["id"] for d in await client.list_departments(2)] == [2, 3]
    assert [d["id"] for d in await client.list_department_ids()] == [1, 2, 3, 4]
    assert (await client.get_department(3))["department_leader"] == ["liuzz"]
    with pytest.raises(WeComError) as info:
        await client.get_user("ghost")
    assert info.value.errcode == 60111


async def test_list_user_ids_pages(client: WeComClient, sim: WeComSimulator) -> None:
    everything = await client.list_user_ids()
    paged = await client.list_user_ids(page_size=3)
    assert paged == everything and len(everything) == 8
    assert sim.calls["user/list_id"] == 1 + 3


async def test_restricted_department_list_has_a_fallback(
    client: WeComClient, sim: WeComSimulator
) -> None:
    sim.restrict_api("department/list", 48002)
    sim.restrict_api("user/list", 48002)
    with pytest.raises(WeComError) as info:
        await client.list_departments()
    assert info.value.errcode == 48002
    ids = [d["id"] for d in await client.list_department_ids()]
    names = {i: (await client.get_department(i))["name"] for i in ids}
    assert names[3] == "华东销售组"
    members = {row["userid"] for row in await client.list_user_ids()}
    assert "zhangsan" in members


async def test_generic_call(client: WeComClient) -> None:
    answer = await client.call("GET", "department/simplelist", params={"id": 4})
    assert answer["department_id"] == [{"id": 4, "parentid": 1, "order": 0}]


async def test_client_talks_to_base_url_only(
    make_client: Callable[..., WeComClient], api_base: str
) -> None:
    client = make_client(base_url=api_base + "/")
    assert client.base_url == api_base
    assert repr(client) == f"WeComClient(corp_id={CORP_ID!r}, agent_id={AGENT_ID})"


# --- split_for_wecom -------------------------------------------------------------------------


def _sizes(pieces: list[str]) -> list[int]:
    return [len(p.encode()) for p in pieces]


def test_split_short_text_is_untouched() -> None:
    assert split_for_wecom("你好") == ["你好"]
    assert split_for_wecom("") == [""]
    assert split_for_wecom("a" * 2048) == ["a" * 2048]


def test_split_ascii_at_line_boundaries() -> None:
    lines = [f"line {i:04d} " + "x" * 40 for i in range(100)]
    content = "\n".join(lines)
    pieces = split_for_wecom(content)
    assert len(pieces) > 1
    assert all(size <= 2048 for size in _sizes(pieces))
    assert "\n".join(pieces) == content
    assert all(p.startswith("line ") for p in pieces)


def test_split_chinese_three_byte_text() -> None:
    lines = ["客户：华为技术有限公司，跟进人：张三，下一步：下周三下午再联系。"] * 60
    content = "\n".join(lines)
    pieces = split_for_wecom(content)
    assert all(size <= 2048 for size in _sizes(pieces))
    assert "\n".join(pieces) == content
    single = "销" * 1000  # one line of 3000 bytes
    cut = split_for_wecom(single)
    assert _sizes(cut) == [2046, 954]
    assert "".join(cut) == single


def test_split_emoji_four_byte_text() -> None:
    single = "🎉" * 600  # 2400 bytes, one line
    cut = split_for_wecom(single)
    assert _sizes(cut) == [2048, 352]
    assert "".join(cut) == single
    mixed = "a" + "😀" * 600
    cut = split_for_wecom(mixed)
    assert _sizes(cut) == [2045, 356]  # 'a' + 511 emoji; the 512th would cross 2048
    assert "".join(cut) == mixed


def test_split_long_line_between_short_ones() -> None:
    content = "标题\n" + "长" * 1500 + "\n结尾"
    pieces = split_for_wecom(content)
    assert all(size <= 2048 for size in _sizes(pieces))
    assert pieces[0] == "标题"
    assert "".join(pieces[1:-1]) + pieces[-1].split("\n")[0] == "长" * 1500
    assert pieces[-1].endswith("\n结尾")


@pytest.mark.parametrize("limit", [4, 5, 7, 100])
def test_split_respects_any_limit(limit: int) -> None:
    content = "ab😀中\n\nx" * 20
    pieces = split_for_wecom(content, limit=limit)
    assert all(size <= limit for size in _sizes(pieces))
    assert "".join(pieces).replace("\n", "") == content.replace("\n", "")


def test_split_limit_must_hold_a_character() -> None:
    with pytest.raises(ValueError):
        split_for_wecom("abc", limit=3)


async def test_split_pieces_are_delivered_whole(client: WeComClient, sim: WeComSimulator) -> None:
    content = "\n".join(f"{i}. 客户跟进记录：已电话沟通，对方有意向" for i in range(120))
    for piece in split_for_wecom(content):
        await client.send_message(
            {"touser": "zhangsan", "msgtype": "text", "text": {"content": piece}}
        )
    seen = sim.messages_to("zhangsan")
    assert not any(m.truncated for m in seen)
    assert "\n".join(m.content or "" for m in seen) == content
