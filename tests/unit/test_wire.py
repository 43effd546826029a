"""Decrypted XML -> values: dedup keys, our own parsing where wechatpy has gaps, refusals."""

from __future__ import annotations

import pytest

from bot.gateway.wire import WireError, peek, to_inbound
from handlers.kit.inbound import CardAction, ContactChange, EnterAgent, OtherMessage, TextMessage

TEXT = (
    "<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[zhangsan]]>"
    "</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[查 阿里]]></Content><MsgId>123456789</MsgId><AgentID>1</AgentID></xml>"
)
CARD = (
    "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]>"
    "</FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    "<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[key111]]></EventKey>"
    "<TaskId><![CDATA[taskid111]]></TaskId><CardType><![CDATA[text_notice]]></CardType>"
    "<ResponseCode><![CDATA[ResponseCode]]></ResponseCode><AgentID>1</AgentID>"
    "<SelectedItems><SelectedItem><QuestionKey><![CDATA[QuestionKey1]]></QuestionKey>"
    "<OptionIds><OptionId><![CDATA[OptionId1]]></OptionId><OptionId><![CDATA[OptionId2]]>"
    "</OptionId></OptionIds></SelectedItem></SelectedItems></xml>"
)


def test_text_message_is_keyed_by_msgid() -> None:
    envelope = peek(TEXT)
    assert (envelope.user_id, envelope.kind, envelope.dedup_key) == (
        "zhangsan",
        "text",
        "msg:123456789",
    )
    message = to_inbound(TEXT, envelope.dedup_key)
    assert isinstance(message, TextMessage) and message.text == "查 阿里"


def test_template_card_event_from_the_official_example() -> None:
    envelope = peek(CARD)
    assert envelope.kind == "event:template_card_event"
    assert envelope.dedup_key.startswith("evt:") and envelope.dedup_key == peek(CARD).dedup_key
    action = to_inbound(CARD, envelope.dedup_key)
    assert isinstance(action, CardAction)
    assert (action.event_key, action.task_id, action.card_type, action.response_code) == (
        "key111",
        "taskid111",
        "text_notice",
        "ResponseCode",
    )
    assert action.selected == {"QuestionKey1": ("OptionId1", "OptionId2")}


def test_system_events_of_the_same_second_get_different_keys() -> None:
    base = (
        "<xml><ToUserName>ww1</ToUserName><FromUserName>sys</FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType>event</MsgType>"
        "<Event>change_contact</Event><ChangeType>update_user</ChangeType>"
        "<UserID>{}</UserID></xml>"
    )
    first, second = peek(base.format("a")), peek(base.format("b"))
    assert first.dedup_key != second.dedup_key
    change = to_inbound(base.format("a"), first.dedup_key)
    assert isinstance(change, ContactChange) and change.changed_user_id == "a"


def test_enter_agent_and_unknown_types() -> None:
    enter = (
        "<xml><ToUserName>t</ToUserName><FromUserName>u</FromUserName><CreateTime>1"
        "</CreateTime><MsgType>event</MsgType><Event>enter_agent</Event><EventKey>"
        "</EventKey><AgentID>1</AgentID></xml>"
    )
    assert isinstance(to_inbound(enter, "k"), EnterAgent)
    image = TEXT.replace("<MsgType><![CDATA[text]]>", "<MsgType><![CDATA[image]]>")
    other = to_inbound(image, "k")
    assert isinstance(other, OtherMessage) and other.msg_type == "image"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not xml",
        "<xml>",
        "<other/>",
        "<xml><MsgType>text</MsgType></xml>",
        '<!DOCTYPE x [<!ENTITY e "boom">]><xml><FromUserName>&e;</FromUserName></xml>',
        "<xml><FromUserName>" + "x" * 100 + "</FromUserName><MsgType>text</MsgType></xml>",
    ],
)
def test_refusals(bad: str) -> None:
    with pytest.raises(WireError):
        peek(bad)
