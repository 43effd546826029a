"""The local WeCom behaves like PROTOCOL.md says the real one does."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree

import aiohttp
import pytest

from bot.gateway.crypto import SignatureError, WeComCrypto
from bot.simulator import CallbackSender, WeComSimulator
from crm_store.clock import FakeClock
from tests.sim.conftest import AES_KEY, AGENT_ID, CORP_ID, SECRET, TOKEN, Api, FakeBot


def xml_fields(plaintext: str) -> dict[str, str]:
    root = ElementTree.fromstring(plaintext)
    return {child.tag: child.text or "" for child in root}


def card(task_id: str = "task-1", card_type: str = "button_interaction") -> dict[str, Any]:
    body: dict[str, Any] = {
        "card_type": card_type,
        "main_title": {"title": "客户跟进提醒"},
        "task_id": task_id,
    }
    if card_type == "button_interaction":
        body["button_list"] = [{"text": "已跟进", "style": 1, "key": "done"}]
    return body


# --- gettoken --------------------------------------------------------------------------------


async def test_gettoken_shape_and_reuse(api: Api, sim: WeComSimulator, clock: FakeClock) -> None:
    first = await api.get("gettoken", corpid=CORP_ID, corpsecret=SECRET)
    assert first["errcode"] == 0 and first["errmsg"] == "ok"
    assert first["expires_in"] == 7200
    assert len(first["access_token"]) >= 64
    clock.advance(100)
    second = await api.get("gettoken", corpid=CORP_ID, corpsecret=SECRET)
    assert second["access_token"] == first["access_token"]
    assert second["expires_in"] == 7100
    assert sim.token_calls == 2


async def test_gettoken_new_token_after_expiry(api: Api, clock: FakeClock) -> None:
    old = await api.token()
    clock.advance(7200)
    new = await api.token()
    assert new != old
    answer = await api.text(old, "zhangsan", "hi")
    assert answer["errcode"] == 42001
    assert (await api.text(new, "zhangsan", "hi"))["errcode"] == 0


@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        ({"corpid": "wrong", "corpsecret": SECRET}, 40013),
        ({"corpid": CORP_ID, "corpsecret": "wrong"}, 40001),
        ({"corpsecret": SECRET}, 41002),
        ({"corpid": CORP_ID}, 41004),
    ],
)
async def test_gettoken_errors(
    api: Api, sim: WeComSimulator, params: dict[str, str], errcode: int
) -> None:
    answer = await api.get("gettoken", **params)
    assert answer["errcode"] == errcode
    assert set(answer) == {"errcode", "errmsg"}
    assert f"e={errcode}" in answer["errmsg"]
    assert sim.token_calls == 1


async def test_token_checks(api: Api, sim: WeComSimulator) -> None:
    body = {"touser": "zhangsan", "msgtype": "text", "text": {"content": "x"}}
    assert (await api.post("message/send", {**body, "agentid": AGENT_ID}))["errcode"] == 41001
    missing = await api.send("", **body)
    assert missing["errcode"] == 41001
    assert (await api.send("not-a-token", **body))["errcode"] == 40014
    token = await api.token()
    sim.expire_tokens()
    assert (await api.send(token, **body))["errcode"] == 42001
    fresh = await api.token()
    assert fresh != token
    sim.invalidate_tokens()
    assert (await api.send(fresh, **body))["errcode"] == 40014
    assert sim.sent_messages == []


# --- message/send ----------------------------------------------------------------------------


async def test_text_message_delivered(api: Api, sim: WeComSimulator) -> None:
    token = await api.token()
    answer = await api.text(token, "zhangsan", "你好，张三")
    assert answer["errcode"] == 0 and answer["errmsg"] == "ok"
    assert answer["msgid"]
    assert "invaliduser" not in answer and "response_code" not in answer
    [message] = sim.sent_messages
    assert message.msgid == answer["msgid"]
    assert message.touser == "zhangsan" and message.msgtype == "text"
    assert message.payload == {"content": "你好，张三"}
    assert message.delivered and message.delivered_to == ["zhangsan"]
    assert sim.messages_to("zhangsan") == [message]
    assert sim.texts_to("ZhangSan") == ["你好，张三"]
    assert sim.messages_to("lisi") == []


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"msgtype": "text", "text": {"content": "x"}}, 41011),
        ({"msgtype": "text", "text": {"content": "x"}, "agentid": 999}, 40056),
        ({"msgtype": "text", "text": {"content": "x"}, "agentid": True}, 40056),
        ({"msgtype": "sticker", "agentid": AGENT_ID}, 40008),
        ({"agentid": AGENT_ID, "text": {"content": "x"}}, 40008),
        ({"msgtype": "text", "agentid": AGENT_ID}, 44004),
        ({"msgtype": "text", "text": {"content": ""}, "agentid": AGENT_ID}, 44004),
        ({"msgtype": "markdown", "markdown": {}, "agentid": AGENT_ID}, 44004),
        ({"msgtype": "text", "text": "plain", "agentid": AGENT_ID}, 40058),
    ],
)
async def test_message_send_errors(
    api: Api, sim: WeComSimulator, body: dict[str, Any], errcode: int
) -> None:
    token = await api.token()
    answer = await api.post("message/send", {"touser": "zhangsan", **body}, access_token=token)
    assert answer["errcode"] == errcode, answer
    assert sim.sent_messages == []


async def test_agentid_as_digit_string_is_accepted(api: Api) -> None:
    token = await api.token()
    answer = await api.text(token, "zhangsan", "x", agentid=str(AGENT_ID))
    assert answer["errcode"] == 0


async def test_bad_json(api: Api, http: aiohttp.ClientSession) -> None:
    token = await api.token()
    async with http.post(
        f"{api.base}/message/send", params={"access_token": token}, data=b"{not json"
    ) as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert answer["errcode"] == 40058
    assert "wrong json format" in answer["errmsg"]


async def test_long_text_is_truncated_as_wecom_does(api: Api, sim: WeComSimulator) -> None:
    token = await api.token()
    content = "销" * 700  # 2100 bytes
    answer = await api.text(token, "zhangsan", content)
    assert answer["errcode"] == 0
    [message] = sim.messages_to("zhangsan")
    assert message.truncated
    assert message.content == "销" * 682  # 2046 bytes: a cut never splits a character
    assert len(message.content.encode()) <= 2048
    assert message.request["text"]["content"] == content


async def test_exactly_2048_bytes_is_not_truncated(api: Api, sim: WeComSimulator) -> None:
    token = await api.token()
    await api.send(token, touser="zhangsan", msgtype="markdown", markdown={"content": "a" * 2048})
    [message] = sim.sent_messages
    assert not message.truncated and message.content == "a" * 2048


async def test_partially_invalid_recipients(api: Api, sim: WeComSimulator) -> None:
    token = await api.token()
    answer = await api.text(token, "zhangsan|Ghost|gone|LISI", "hi")
    assert answer["errcode"] == 0
    assert answer["invaliduser"] == "ghost|gone"
    [message] = sim.sent_messages
    assert message.delivered_to == ["zhangsan", "lisi"]
    assert message.invalid == ["ghost", "gone"]
    assert sim.messages_to("gone") == []


async def test_all_invalid_recipients(api: Api, sim: WeComSimulator) -> None:
    token = await api.token()
    assert (await api.text(token, "ghost|nobody", "hi"))["errcode"] == 81013
    answer = await api.send(token, msgtype="text", text={"content": "x"})
    assert answer["errcode"] == 81013
    sim.remove_user("zhangsan")
    assert (await api.text(token, "zhangsan", "hi"))["errcode"] == 81013
    assert sim.sent_messages == []


async def test_at_all_and_parties(api: Api, sim: WeComSimulator) -> None:
    token = await api.token()
    await api.text(token, "@all", "全员通知", toparty="999")
    everyone = sim.sent_messages[-1].delivered_to
    assert set(everyone) == {"boss", "wangjl", "liuzz", "zhangsan", "lisi", "kefu1"}
    answer = await api.send(
        token, toparty="2|77", totag="5", msgtype="text", text={"content": "销售部"}
    )
    assert answer["invalidparty"] == "77" and answer["invalidtag"] == "5"
    assert set(sim.sent_messages[-1].delivered_to) == {"wangjl", "liuzz", "zhangsan", "lisi"}


async def test_textcard_and_news(api: Api, sim: WeComSimulator) -> None:
    token = await api.token()
    textcard = {
        "title": "标" * 50,
        "description": "<div class='gray'>2026-11-20</div>",
        "url": "https://crm.example.com/c/1",
        "btntxt": "查看详情页面",
    }
    answer = await api.send(token, touser="zhangsan", msgtype="textcard", textcard=textcard)
    assert answer["errcode"] == 0
    seen = sim.messages_to("zhangsan")[-1]
    assert seen.truncated
    assert len(seen.payload["title"].encode()) <= 128 and seen.payload["btntxt"] == "查看详情"
    for missing, errcode in (("title", 41016), ("description", 41033), ("url", 41010)):
        broken = {k: v for k, v in textcard.items() if k != missing}
        answer = await api.send(token, touser="zhangsan", msgtype="textcard", textcard=broken)
        assert answer["errcode"] == errcode
    article = {"title": "周报", "url": "https://crm.example.com/r"}
    ok = await api.send(token, touser="zhangsan", msgtype="news", news={"articles": [article]})
    assert ok["errcode"] == 0
    nine = {"articles": [article] * 9}
    assert (await api.send(token, touser="zhangsan", msgtype="news", news=nine))["errcode"] == (
        45008
    )
    empty = {"articles": []}
    answer = await api.send(token, touser="zhangsan", msgtype="news", news=empty)
    assert answer["errcode"] == 40058


# --- media -----------------------------------------------------------------------------------


async def upload(
    api: Api, token: str, kind: str, content: bytes, field: str = "media"
) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field(field, io.BytesIO(content), filename="report.png", content_type="image/png")
    async with api.http.post(
        f"{api.base}/media/upload", params={"access_token": token, "type": kind}, data=form
    ) as resp:
        assert resp.status == 200
        return dict(await resp.json())


async def test_media_upload_and_send(api: Api, sim: WeComSimulator, clock: FakeClock) -> None:
    token = await api.token()
    answer = await upload(api, token, "image", b"\x89PNG fake image bytes")
    assert answer["errcode"] == 0 and answer["type"] == "image"
    assert isinstance(answer["created_at"], str) and answer["created_at"].isdigit()
    media_id = answer["media_id"]
    assert sim.media[media_id].content == b"\x89PNG fake image bytes"
    assert sim.media[media_id].filename == "report.png"
    sent = await api.send(token, touser="zhangsan", msgtype="image", image={"media_id": media_id})
    assert sent["errcode"] == 0
    as_file = await api.send(token, touser="zhangsan", msgtype="file", file={"media_id": media_id})
    assert as_file["errcode"] == 0
    as_voice = await api.send(
        token, touser="zhangsan", msgtype="voice", voice={"media_id": media_id}
    )
    assert as_voice["errcode"] == 40007
    unknown = await api.send(token, touser="zhangsan", msgtype="image", image={"media_id": "x"})
    assert unknown["errcode"] == 40007
    missing = await api.send(token, touser="zhangsan", msgtype="image", image={})
    assert missing["errcode"] == 41006
    clock.advance(days=3, seconds=1)
    token = await api.token()
    expired = await api.send(
        token, touser="zhangsan", msgtype="image", image={"media_id": media_id}
    )
    assert expired["errcode"] == 40007


async def test_media_upload_errors(api: Api, http: aiohttp.ClientSession) -> None:
    token = await api.token()
    assert (await upload(api, token, "sticker", b"123456"))["errcode"] == 40005
    assert (await upload(api, token, "file", b"12345"))["errcode"] == 40006
    assert (await upload(api, token, "file", b"123456", field="file"))["errcode"] == 44001
    assert (await upload(api, token, "voice", b"x" * (2 * 1024 * 1024 + 1)))["errcode"] == 45001
    async with http.post(
        f"{api.base}/media/upload", params={"access_token": token, "type": "file"}, data=b"raw"
    ) as resp:
        assert (await resp.json())["errcode"] == 44001


# --- template cards --------------------------------------------------------------------------


async def test_interaction_card_returns_response_code(api: Api, sim: WeComSimulator) -> None:
    token = await api.token()
    answer = await api.send(
        token, touser="zhangsan", msgtype="template_card", template_card=card()
    )
    assert answer["errcode"] == 0 and answer["response_code"]
    assert sim.sent_messages[0].response_code == answer["response_code"]
    notice = await api.send(
        token,
        touser="zhangsan",
        msgtype="template_card",
        template_card=card("task-2", "text_notice"),
    )
    assert notice["errcode"] == 0 and "response_code" not in notice


@pytest.mark.parametrize(
    "template_card",
    [
        {"card_type": "button_interaction", "button_list": [{"text": "a", "key": "a"}]},
        {**card(), "task_id": "有中文"},
        {**card(), "card_type": "poster"},
        {**card(), "button_list": []},
        {"card_type": "text_notice"},
    ],
)
async def test_invalid_cards(api: Api, template_card: dict[str, Any]) -> None:
    token = await api.token()
    answer = await api.send(
        token, touser="zhangsan", msgtype="template_card", template_card=template_card
    )
    assert answer["errcode"] == 40058


async def test_task_id_must_be_unique(api: Api) -> None:
    token = await api.token()
    first = await api.send(token, touser="zhangsan", msgtype="template_card", template_card=card())
    again = await api.send(token, touser="lisi", msgtype="template_card", template_card=card())
    assert first["errcode"] == 0 and again["errcode"] == 40058


async def test_update_template_card_single_use(
    api: Api, sim: WeComSimulator, clock: FakeClock
) -> None:
    token = await api.token()
    sent = await api.send(token, touser="zhangsan", msgtype="template_card", template_card=card())
    code = sent["response_code"]
    update = {"agentid": AGENT_ID, "response_code": code, "button": {"replace_name": "已处理"}}
    first = await api.post("message/update_template_card", update, access_token=token)
    assert first["errcode"] == 0
    [change] = sim.card_updates
    assert change.task_id == "task-1" and change.button == {"replace_name": "已处理"}
    assert change.userids == ["zhangsan"]
    again = await api.post("message/update_template_card", update, access_token=token)
    assert again["errcode"] == 60140
    unknown = {**update, "response_code": "nope"}
    assert (await api.post("message/update_template_card", unknown, access_token=token))[
        "errcode"
    ] == 60140
    later = await api.send(
        token, touser="zhangsan", msgtype="template_card", template_card=card("task-9")
    )
    clock.advance(hours=72, seconds=1)
    token = await api.token()
    stale = {**update, "response_code": later["response_code"]}
    answer = await api.post("message/update_template_card", stale, access_token=token)
    assert answer["errcode"] == 60140


async def test_update_template_card_validation(api: Api) -> None:
    token = await api.token()
    sent = await api.send(token, touser="zhangsan", msgtype="template_card", template_card=card())
    code = sent["response_code"]
    base = {"agentid": AGENT_ID, "response_code": code}
    neither = await api.post("message/update_template_card", base, access_token=token)
    both = await api.post(
        "message/update_template_card",
        {**base, "button": {"replace_name": "x"}, "template_card": card("t2")},
        access_token=token,
    )
    wrong_agent = await api.post(
        "message/update_template_card",
        {**base, "agentid": 1, "button": {"replace_name": "x"}},
        access_token=token,
    )
    assert (neither["errcode"], both["errcode"], wrong_agent["errcode"]) == (40058, 40058, 40056)
    full = await api.post(
        "message/update_template_card",
        {**base, "template_card": card("task-1", "text_notice")},
        access_token=token,
    )
    assert full["errcode"] == 0


# --- rate limit and duplicate check ----------------------------------------------------------


async def test_per_user_rate_limit_silently_drops(
    api: Api, sim: WeComSimulator, clock: FakeClock
) -> None:
    token = await api.token()
    for i in range(31):
        answer = await api.text(token, "zhangsan|lisi" if i == 30 else "zhangsan", f"第{i}条")
        assert answer["errcode"] == 0, answer
        clock.advance(1)
    assert len(sim.messages_to("zhangsan")) == 30
    assert [d.userid for d in sim.dropped] == ["zhangsan"]
    assert sim.dropped[0].reason == "rate_limited"
    assert sim.dropped[0].message.content == "第30条"
    assert sim.sent_messages[-1].dropped == ["zhangsan"]
    assert sim.texts_to("lisi") == ["第30条"]
    clock.advance(30)  # the first message left the 60 s window
    await api.text(token, "zhangsan", "又来了")
    assert sim.texts_to("zhangsan")[-1] == "又来了"


async def test_duplicate_check(api: Api, sim: WeComSimulator, clock: FakeClock) -> None:
    token = await api.token()
    dup = {"enable_duplicate_check": 1}
    assert (await api.text(token, "zhangsan", "日报", **dup))["errcode"] == 0
    clock.advance(600)
    again = await api.text(token, "zhangsan|lisi", "日报", **dup)
    assert again["errcode"] == 0 and again["msgid"]
    assert sim.texts_to("zhangsan") == ["日报"]
    assert sim.texts_to("lisi") == ["日报"]
    assert [(d.userid, d.reason) for d in sim.deduplicated] == [("zhangsan", "duplicate")]
    await api.text(token, "zhangsan", "日报")  # no duplicate check asked: delivered
    assert sim.texts_to("zhangsan") == ["日报", "日报"]
    await api.text(token, "zhangsan", "周报", **dup)  # different content
    clock.advance(1801)
    await api.text(token, "zhangsan", "日报", **dup)
    assert sim.texts_to("zhangsan") == ["日报", "日报", "周报", "日报"]


async def test_duplicate_check_interval(api: Api, sim: WeComSimulator, clock: FakeClock) -> None:
    token = await api.token()
    dup = {"enable_duplicate_check": 1, "duplicate_check_interval": 60}
    await api.text(token, "zhangsan", "提醒", **dup)
    clock.advance(59)
    await api.text(token, "zhangsan", "提醒", **dup)
    clock.advance(2)
    await api.text(token, "zhangsan", "提醒", **dup)
    assert len(sim.texts_to("zhangsan")) == 2


# --- directory -------------------------------------------------------------------------------


async def test_user_get(api: Api) -> None:
    token = await api.token()
    user = await api.get("user/get", access_token=token, userid="lisi")
    assert user["errcode"] == 0
    assert user["userid"] == "lisi" and user["name"] == "李四"
    assert user["department"] == [3, 4] and user["main_department"] == 3
    assert user["is_leader_in_dept"] == [0, 0] and user["direct_leader"] == ["liuzz"]
    assert user["status"] == 1
    assert "mobile" not in user and "email" not in user and "avatar" not in user
    assert (await api.get("user/get", access_token=token, userid="ghost"))["errcode"] == 60111
    assert (await api.get("user/get", access_token=token))["errcode"] == 41009


async def test_user_lists(api: Api) -> None:
    token = await api.token()
    direct = await api.get("user/list", access_token=token, department_id=2)
    assert [u["userid"] for u in direct["userlist"]] == ["wangjl"]
    subtree = await api.get("user/list", access_token=token, department_id=2, fetch_child=1)
    assert {u["userid"] for u in subtree["userlist"]} == {"wangjl", "liuzz", "zhangsan", "lisi"}
    assert "direct_leader" in subtree["userlist"][0]
    simple = await api.get("user/simplelist", access_token=token, department_id=4)
    assert simple["userlist"] == [
        {"userid": "lisi", "name": "李四", "department": [3, 4], "open_userid": "wo-lisi"},
        {"userid": "kefu1", "name": "客服一", "department": [4], "open_userid": "wo-kefu1"},
        {"userid": "gone", "name": "已停用", "department": [4], "open_userid": "wo-gone"},
    ]
    assert (await api.get("user/list", access_token=token, department_id=99))["errcode"] == 60003
    assert (await api.get("user/list", access_token=token))["errcode"] == 41019
    bad = await api.get("user/simplelist", access_token=token, department_id="x")
    assert bad["errcode"] == 40058


async def test_user_list_id_paging(api: Api) -> None:
    token = await api.token()
    rows: list[dict[str, Any]] = []
    cursor = ""
    pages = 0
    while True:
        page = await api.post("user/list_id", {"cursor": cursor, "limit": 3}, access_token=token)
        assert page["errcode"] == 0
        assert len(page["dept_user"]) <= 3
        rows += page["dept_user"]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    assert {"userid": "lisi", "department": 4} in rows and len(rows) == 8
    everything = await api.post("user/list_id", {}, access_token=token)
    assert everything["dept_user"] == rows and everything["next_cursor"] == ""
    for body in ({"limit": 0}, {"limit": 10_001}, {"cursor": "garbage!"}, {"cursor": 5}):
        assert (await api.post("user/list_id", body, access_token=token))["errcode"] == 40058


async def test_departments(api: Api) -> None:
    token = await api.token()
    everything = await api.get("department/list", access_token=token)
    assert [d["id"] for d in everything["department"]] == [1, 2, 3, 4]
    assert everything["department"][1] == {
        "id": 2,
        "name": "销售部",
        "parentid": 1,
        "order": 100,
        "department_leader": ["wangjl"],
    }
    sales = await api.get("department/list", access_token=token, id=2)
    assert [d["id"] for d in sales["department"]] == [2, 3]
    simple = await api.get("department/simplelist", access_token=token, id=1)
    assert simple["department_id"][0] == {"id": 1, "parentid": 0, "order": 0}
    assert len(simple["department_id"]) == 4
    one = await api.get("department/get", access_token=token, id=3)
    assert one["department"]["name"] == "华东销售组"
    assert (await api.get("department/get", access_token=token, id=42))["errcode"] == 60003
    assert (await api.get("department/list", access_token=token, id=42))["errcode"] == 60003


async def test_restrict_api(api: Api, sim: WeComSimulator) -> None:
    token = await api.token()
    sim.restrict_api("department/list", 48002)
    sim.restrict_api("/cgi-bin/user/list", 60011)
    assert (await api.get("department/list", access_token=token))["errcode"] == 48002
    assert (await api.get("user/list", access_token=token, department_id=1))["errcode"] == 60011
    assert (await api.get("department/simplelist", access_token=token))["errcode"] == 0
    assert (await api.post("user/list_id", {}, access_token=token))["errcode"] == 0
    sim.unrestrict_api("department/list")
    assert (await api.get("department/list", access_token=token))["errcode"] == 0


def test_directory_validation(sim: WeComSimulator) -> None:
    with pytest.raises(ValueError):
        sim.add_department(9, "孤儿", 77)
    with pytest.raises(ValueError):
        sim.add_user("x", "X", [99])
    with pytest.raises(ValueError):
        sim.add_user("x", "X", [1, 2], is_leader_in_dept=[1])
    with pytest.raises(ValueError):
        sim.add_user("x", "X", [1], main_department=2)
    with pytest.raises(ValueError):
        sim.directory.remove_department(2)


# --- fault injection -------------------------------------------------------------------------


async def test_fail_next(api: Api, sim: WeComSimulator) -> None:
    token = await api.token()
    sim.fail_next("message/send", errcode=-1, times=2)
    sim.fail_next("/cgi-bin/message/send", errcode=45033)
    assert sim.faults.pending("message/send") == 3
    results = [(await api.text(token, "zhangsan", f"m{i}"))["errcode"] for i in range(4)]
    assert results == [-1, -1, 45033, 0]
    assert sim.texts_to("zhangsan") == ["m3"]
    assert sim.calls["message/send"] == 4


async def test_fail_next_on_gettoken(api: Api, sim: WeComSimulator) -> None:
    sim.fail_next("gettoken", errcode=-1)
    answer = await api.get("gettoken", corpid=CORP_ID, corpsecret=SECRET)
    assert answer["errcode"] == -1
    assert sim.token_calls == 1
    await api.token()
    assert sim.token_calls == 2


async def test_http_error_next(api: Api, sim: WeComSimulator, http: aiohttp.ClientSession) -> None:
    token = await api.token()
    sim.http_error_next("message/send", status=502)
    body = {"touser": "zhangsan", "msgtype": "text", "agentid": AGENT_ID, "text": {"content": "x"}}
    async with http.post(
        f"{api.base}/message/send", params={"access_token": token}, json=body
    ) as resp:
        assert resp.status == 502
    assert sim.sent_messages == []
    assert (await api.send(token, **body))["errcode"] == 0


async def test_drop_connection_next(
    api: Api, sim: WeComSimulator, http: aiohttp.ClientSession
) -> None:
    token = await api.token()
    sim.drop_connection_next("message/send")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.text(token, "zhangsan", "lost")
    assert sim.sent_messages == []
    assert (await api.text(token, "zhangsan", "ok"))["errcode"] == 0
    sim.drop_connection_next("user/get", times=2)  # aiohttp retries a GET once by itself
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.get("user/get", access_token=token, userid="lisi")
    assert sim.calls["user/get"] == 2


async def test_delay_next_then_timeout(
    api: Api, sim: WeComSimulator, http: aiohttp.ClientSession
) -> None:
    token = await api.token()
    sim.delay_next("message/send", 60)
    body = {"touser": "zhangsan", "msgtype": "text", "agentid": AGENT_ID, "text": {"content": "x"}}
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            f"{api.base}/message/send",
            params={"access_token": token},
            json=body,
            timeout=aiohttp.ClientTimeout(total=0.05),
        ):
            pass
    assert sim.sent_messages == []  # the handler was cancelled with the connection


async def test_delay_released_early_is_processed(api: Api, sim: WeComSimulator) -> None:
    token = await api.token()
    sim.delay_next("message/send", 60)
    pending = asyncio.ensure_future(api.text(token, "zhangsan", "慢"))
    for _ in range(1000):  # until the request reached the simulator (bounded)
        if sim.calls["message/send"]:
            break
        await asyncio.sleep(0.001)
    assert sim.calls["message/send"] == 1
    assert not pending.done()
    sim.release_delays()
    assert (await pending)["errcode"] == 0
    assert sim.texts_to("zhangsan") == ["慢"]


def test_fault_times_must_be_positive(sim: WeComSimulator) -> None:
    with pytest.raises(ValueError):
        sim.fail_next("message/send", times=0)


# --- callbacks -------------------------------------------------------------------------------


async def test_verify_url_round_trip(sim: WeComSimulator, bot: FakeBot) -> None:
    status, body = await sim.verify_callback_url(echo="1616140317555161061")
    assert (status, body) == (200, "1616140317555161061")
    status, body = await sim.verify_callback_url()
    assert status == 200 and body.isdigit()


async def test_echostr_is_percent_encoded(sim: WeComSimulator, bot: FakeBot) -> None:
    for _ in range(8):  # enough tries that some ciphertext holds '+', '/' or '='
        await sim.verify_callback_url()
    for raw in bot.raw_queries:
        echostr = raw.split("echostr=")[1].split("&")[0]
        assert not set("+/=") & set(echostr)
        base64.b64decode(unquote(echostr), validate=True)
    assert any("%3D" in raw or "%2B" in raw or "%2F" in raw for raw in bot.raw_queries)


async def test_send_text_round_trip(sim: WeComSimulator, bot: FakeBot, clock: FakeClock) -> None:
    status, body = await sim.send_text("zhangsan", "查客户 华为 ]]> <b>", msg_id=42)
    assert (status, body) == (200, "")
    [plain] = bot.received
    fields = xml_fields(plain)
    assert fields == {
        "ToUserName": CORP_ID,
        "FromUserName": "zhangsan",
        "CreateTime": str(int(clock.now().timestamp())),
        "MsgType": "text",
        "Content": "查客户 华为 ]]> <b>",
        "MsgId": "42",
        "AgentID": str(AGENT_ID),
    }
    await sim.send_text("zhangsan", "again")
    await sim.send_text("zhangsan", "and again")
    ids = [xml_fields(p)["MsgId"] for p in bot.received[1:]]
    assert len(set(ids)) == 2 and all(i.isdigit() for i in ids)


async def test_events(sim: WeComSimulator, bot: FakeBot) -> None:
    await sim.send_event("zhangsan", "enter_agent")
    await sim.send_event("sys", "change_contact", ChangeType="update_user", UserID="lisi")
    await sim.send_event(
        "zhangsan",
        "template_card_event",
        EventKey="done",
        TaskId="task-1",
        CardType="vote_interaction",
        ResponseCode="rc-1",
        SelectedItems=[{"QuestionKey": "q1", "OptionIds": ["o1", "o2"]}],
    )
    enter, contact, click = (xml_fields(p) for p in bot.received)
    assert enter["Event"] == "enter_agent" and enter["EventKey"] == ""
    assert enter["AgentID"] == str(AGENT_ID) and enter["MsgType"] == "event"
    assert contact["FromUserName"] == "sys" and contact["ChangeType"] == "update_user"
    assert "AgentID" not in contact
    assert click["ResponseCode"] == "rc-1" and click["CardType"] == "vote_interaction"
    root = ElementTree.fromstring(bot.received[2])
    item = root.find("SelectedItems/SelectedItem")
    assert item is not None and item.findtext("QuestionKey") == "q1"
    assert [o.text for o in item.findall("OptionIds/OptionId")] == ["o1", "o2"]


async def test_click_card_issues_usable_code(sim: WeComSimulator, bot: FakeBot, api: Api) -> None:
    token = await api.token()
    await api.send(token, touser="zhangsan", msgtype="template_card", template_card=card())
    status, _ = await sim.click_card("zhangsan", "task-1", "done")
    assert status == 200
    event = xml_fields(bot.received[-1])
    assert event["TaskId"] == "task-1" and event["CardType"] == "button_interaction"
    update = {
        "agentid": AGENT_ID,
        "response_code": event["ResponseCode"],
        "button": {"replace_name": "已跟进"},
    }
    answer = await api.post("message/update_template_card", update, access_token=token)
    assert answer["errcode"] == 0
    assert sim.card_updates[-1].userids == ["zhangsan"]
    with pytest.raises(LookupError):
        await sim.click_card("zhangsan", "no-such-task", "done")


async def test_build_post_is_what_wecom_sends(sim: WeComSimulator) -> None:
    crypto = WeComCrypto(TOKEN, AES_KEY, CORP_ID)
    plaintext = sim.sender.message_xml("lisi", "text", Content="你好")
    params, body = sim.sender.build_post(plaintext, timestamp="1409659813", nonce="1372623149")
    assert set(params) == {"msg_signature", "timestamp", "nonce"}
    assert body.startswith(b"<xml><ToUserName><![CDATA[" + CORP_ID.encode())
    assert b"<AgentID><![CDATA[1000002]]></AgentID>" in body
    assert crypto.decrypt_post(body, **params) == plaintext
    with pytest.raises(SignatureError):
        crypto.decrypt_post(body, params["msg_signature"], "1409659814", params["nonce"])


async def test_tampered_post_is_refused_by_the_bot(sim: WeComSimulator, bot: FakeBot) -> None:
    params, body = sim.sender.build_post(sim.sender.message_xml("lisi", "text", Content="x"))
    params["nonce"] = params["nonce"] + "0"
    assert sim.callback_url is not None
    status, _ = await sim.sender.post_raw(sim.callback_url, params, body)
    assert status == 403 and isinstance(bot.errors[0], SignatureError)


async def test_passive_reply_decrypts(sim: WeComSimulator, bot: FakeBot) -> None:
    bot.reply = "<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[收到]]></Content></xml>"
    status, body = await sim.send_text("zhangsan", "hi")
    assert status == 200
    assert sim.sender.decrypt_reply(body) == bot.reply


async def test_callbacks_need_a_url(sim: WeComSimulator) -> None:
    with pytest.raises(RuntimeError):
        await sim.send_text("zhangsan", "hi")


async def test_standalone_sender_owns_its_session(bot: FakeBot, clock: FakeClock) -> None:
    async with CallbackSender(
        token=TOKEN, encoding_aes_key=AES_KEY, corp_id=CORP_ID, agent_id=AGENT_ID, clock=clock
    ) as sender:
        assert await sender.send_text(bot.url, "kefu1", "工单") == (200, "")
    assert xml_fields(bot.received[-1])["Content"] == "工单"


# --- the demo's control API ------------------------------------------------------------------


async def test_control_api(
    sim: WeComSimulator, sim_server: Any, bot: FakeBot, api: Api, http: aiohttp.ClientSession
) -> None:
    root = str(sim_server.make_url(""))
    async with http.post(f"{root}/sim/say", json={"from": "zhangsan", "text": "今天待办"}) as r:
        assert r.status == 200
        assert await r.json() == {"status": 200, "body": ""}
    assert xml_fields(bot.received[-1])["Content"] == "今天待办"
    token = await api.token()
    await api.text(token, "zhangsan", "第一条")
    await api.text(token, "lisi", "别人的")
    await api.text(token, "zhangsan", "第二条")
    async with http.get(f"{root}/sim/messages", params={"to": "zhangsan"}) as r:
        seen = await r.json()
    assert [m["content"] for m in seen["messages"]] == ["第一条", "第二条"]
    async with http.get(
        f"{root}/sim/messages", params={"to": "zhangsan", "after": seen["messages"][0]["seq"]}
    ) as r:
        later = await r.json()
    assert [m["content"] for m in later["messages"]] == ["第二条"]
    assert later["last"] == seen["last"]
    async with http.post(f"{root}/sim/say", json={"text": "no sender"}) as r:
        assert r.status == 400


async def test_control_api_without_bot(sim_server: Any, http: aiohttp.ClientSession) -> None:
    root = str(sim_server.make_url(""))
    async with http.post(f"{root}/sim/say", json={"from": "zhangsan", "text": "x"}) as r:
        assert r.status == 409


async def test_serve_helper(sim: WeComSimulator, http: aiohttp.ClientSession) -> None:
    async with sim.serve() as root:
        assert root.startswith("http://127.0.0.1:")
        async with http.get(
            f"{root}/cgi-bin/gettoken", params={"corpid": CORP_ID, "corpsecret": SECRET}
        ) as r:
            assert (await r.json())["errcode"] == 0
