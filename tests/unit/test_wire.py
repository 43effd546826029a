"""Decrypted XML -> values: dedup keys, our own parsing where wechatpy has gaps, refusals."""

from __future__ import annotations

import pytest

from bot.gateway.wire import UNKNOWN_KIND, WireError, peek, to_inbound
from crm_store.queues.inbox import MAX_DEDUP_KEY, bounded_dedup_key
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
        '<!DOCTYPE x [<!ENTITY e "boom">]><xml><FromUserName>&e;</FromUserName></xml>',
        '<?xml version="1.0" encoding="GBK"?><xml><MsgType>text</MsgType></xml>',
        "<?xml version='1.0' encoding='x-unknown'?><xml><MsgType>text</MsgType></xml>",
    ],
)
def test_refusals(bad: str) -> None:
    with pytest.raises(WireError):
        peek(bad)


def _xml(**fields: str) -> str:
    return "<xml>" + "".join(f"<{k}>{v}</{k}>" for k, v in fields.items()) + "</xml>"


HUGE = "x" * 40_000
# Signed, decrypted, well-formed, and odd: each is stored and becomes an OtherMessage.
ODD_SHAPES = {
    "event without Event": _xml(FromUserName="u", CreateTime="1", MsgType="event"),
    "event with empty Event": _xml(FromUserName="u", MsgType="event", Event=""),
    "event with a nested Event": _xml(FromUserName="u", MsgType="event", Event="<a>b</a>"),
    "empty MsgType": _xml(FromUserName="u", CreateTime="1", MsgType=""),
    "no MsgType at all": _xml(FromUserName="u", CreateTime="1"),
    "MsgType with spaces": _xml(FromUserName="u", MsgType="te xt"),
    "missing FromUserName": _xml(CreateTime="1", MsgType="text", Content="hi", MsgId="7"),
    "FromUserName too long": _xml(FromUserName="u" * 65, MsgType="text", Content="hi"),
    "FromUserName with children": _xml(FromUserName="<a>u</a>", MsgType="text", Content="c"),
    "huge MsgType": _xml(FromUserName="u", MsgType=HUGE),
    "huge Event": _xml(FromUserName="u", MsgType="event", Event=HUGE),
    "empty document": "<xml></xml>",
    "text for a document": "<xml>just text</xml>",
    "attributes everywhere": '<xml a="1"><FromUserName b="2">u</FromUserName></xml>',
}
# Known types whose other fields are odd: still the right class, fields defaulted.
ODD_FIELDS = {
    "CreateTime not a number": _xml(
        FromUserName="u", CreateTime="soon", MsgType="text", Content="hi", MsgId="1"
    ),
    "CreateTime huge": _xml(
        FromUserName="u", CreateTime="9" * 5000, MsgType="text", Content="hi", MsgId="1"
    ),
    "huge Content": _xml(FromUserName="u", MsgType="text", Content=HUGE, MsgId="1"),
    "text without Content": _xml(FromUserName="u", MsgType="text", MsgId="1"),
    "AgentID not a number": _xml(FromUserName="u", MsgType="text", Content="c", AgentID="x"),
    "card with text for SelectedItems": _xml(
        FromUserName="u", MsgType="event", Event="template_card_event", SelectedItems="oops"
    ),
    "card with text for OptionIds": _xml(
        FromUserName="u",
        MsgType="event",
        Event="template_card_event",
        SelectedItems="<SelectedItem><QuestionKey>q</QuestionKey><OptionIds>o</OptionIds>"
        "</SelectedItem>",
    ),
    "change_contact with a huge Id": _xml(
        FromUserName="sys", MsgType="event", Event="change_contact", Id="9" * 5000
    ),
    "change_contact with a superscript Id": _xml(
        FromUserName="sys", MsgType="event", Event="change_contact", Id="²"
    ),
    "click without EventKey": _xml(FromUserName="u", MsgType="event", Event="click"),
    "an event we do not know": _xml(FromUserName="u", MsgType="event", Event="brand_new"),
    "a type we do not know": _xml(FromUserName="u", MsgType="hologram", MsgId="5"),
}


@pytest.mark.parametrize("name", sorted(ODD_SHAPES))
def test_odd_shapes_are_stored_and_become_other_messages(name: str) -> None:
    xml = ODD_SHAPES[name]
    envelope = peek(xml)
    assert envelope == peek(xml)  # a retry gets the same key
    assert len(envelope.dedup_key) <= MAX_DEDUP_KEY and len(envelope.user_id) <= 64
    assert len(envelope.kind) <= 64
    message = to_inbound(xml, envelope.dedup_key)
    assert isinstance(message, OtherMessage)
    assert message.user_id == envelope.user_id and message.key == envelope.dedup_key


@pytest.mark.parametrize("name", sorted(ODD_FIELDS))
def test_odd_fields_of_known_types_never_raise(name: str) -> None:
    xml = ODD_FIELDS[name]
    envelope = peek(xml)
    assert envelope == peek(xml) and len(envelope.dedup_key) <= MAX_DEDUP_KEY
    message = to_inbound(xml, envelope.dedup_key)
    assert message.user_id in ("u", "sys") and message.created_at.year >= 1970


def test_odd_shapes_say_what_they_lack() -> None:
    no_event = to_inbound(ODD_SHAPES["event without Event"], "k")
    assert isinstance(no_event, OtherMessage)
    assert (no_event.msg_type, no_event.event) == ("event", None)
    assert peek(ODD_SHAPES["event without Event"]).kind == "event"
    assert peek(ODD_SHAPES["empty MsgType"]).kind == UNKNOWN_KIND
    nameless = to_inbound(ODD_SHAPES["missing FromUserName"], "k")
    assert isinstance(nameless, OtherMessage) and nameless.user_id == ""
    assert peek(ODD_SHAPES["missing FromUserName"]).dedup_key == "msg:7"
    card = to_inbound(ODD_FIELDS["card with text for SelectedItems"], "k")
    assert isinstance(card, CardAction) and card.selected == {}
    change = to_inbound(ODD_FIELDS["change_contact with a huge Id"], "k")
    assert isinstance(change, ContactChange) and change.department_id is None
    assert isinstance(to_inbound(ODD_FIELDS["text without Content"], "k"), TextMessage)


@pytest.mark.parametrize("length", [124, 125, 200, 1000])
def test_any_msgid_gives_a_key_that_fits_the_column(length: int) -> None:
    msg_id = "9" * length
    envelope = peek(TEXT.replace("123456789", msg_id))
    assert len(envelope.dedup_key) <= MAX_DEDUP_KEY
    if length <= MAX_DEDUP_KEY - len("msg:"):
        assert envelope.dedup_key == f"msg:{msg_id}"  # readable while it fits
    else:
        assert envelope.dedup_key.startswith("h:")
        assert envelope.dedup_key == bounded_dedup_key(f"msg:{msg_id}")
        assert envelope.dedup_key != peek(TEXT.replace("123456789", msg_id + "0")).dedup_key
    assert bounded_dedup_key(envelope.dedup_key) == envelope.dedup_key  # idempotent


def _media_xml(msg_type: str, fields: str) -> str:
    return (
        "<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[kefu1]]>"
        f"</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[{msg_type}]]>"
        f"</MsgType>{fields}<MsgId>42</MsgId><AgentID>1</AgentID></xml>"
    )


@pytest.mark.parametrize(
    ("msg_type", "fields", "expected"),
    [
        (
            "image",
            "<PicUrl><![CDATA[https://wework.qpic.cn/x/0]]></PicUrl>"
            "<MediaId><![CDATA[m-img]]></MediaId>",
            ("m-img", None, "https://wework.qpic.cn/x/0", None),
        ),
        (
            "voice",
            "<MediaId><![CDATA[m-voice]]></MediaId><Format><![CDATA[amr]]></Format>",
            ("m-voice", None, None, "amr"),
        ),
        (
            "video",
            "<MediaId><![CDATA[m-video]]></MediaId><ThumbMediaId><![CDATA[t]]></ThumbMediaId>",
            ("m-video", None, None, None),
        ),
        (
            "file",
            "<MediaId><![CDATA[m-file]]></MediaId><FileName><![CDATA[合同.pdf]]></FileName>",
            ("m-file", "合同.pdf", None, None),
        ),
        ("location", "<Label><![CDATA[杭州]]></Label>", (None, None, None, None)),
        ("image", "<MediaId>" + "x" * 2000 + "</MediaId>", (None, None, None, None)),
    ],
)
def test_media_messages_carry_their_media_fields(
    msg_type: str, fields: str, expected: tuple[str | None, ...]
) -> None:
    message = to_inbound(_media_xml(msg_type, fields), "k")
    assert isinstance(message, OtherMessage) and message.msg_type == msg_type
    assert (message.media_id, message.file_name, message.pic_url, message.format) == expected
