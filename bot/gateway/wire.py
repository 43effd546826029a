"""Decrypted callback XML -> values: a cheap peek for the ack path, full parsing for the worker.

Every well-formed <xml> document maps to a value: a shape we do not know (an event without
<Event>, an empty MsgType, no sender) becomes an OtherMessage that is stored and skipped, never
an exception that would stall its sender's queue.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import xmltodict
from wechatpy.work import events as wx_events
from wechatpy.work import messages as wx_messages
from wechatpy.work import parse_message

from crm_store.queues.inbox import MAX_USER_ID, bounded_dedup_key
from handlers.kit.inbound import (
    CardAction,
    ContactChange,
    EnterAgent,
    Inbound,
    MenuClick,
    OtherMessage,
    TextMessage,
)

UNKNOWN_KIND: Final = "unknown"
MEDIA_TYPES: Final = frozenset({"image", "voice", "video", "file"})
_MEDIA_FIELD_MAX = 1024
_NAME = re.compile(r"[A-Za-z0-9_]{1,48}")
_DECLARED_ENCODING = re.compile(r"""^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")


class WireError(ValueError):
    """The plaintext is not a WeCom message we can accept (the sender gets a 4xx)."""


@dataclass(frozen=True)
class Envelope:
    user_id: str
    kind: str
    dedup_key: str


@dataclass(frozen=True)
class Shape:
    """What a message says it is; empty strings and None where it does not say (or lies)."""

    user_id: str
    msg_type: str
    event: str | None

    @property
    def known(self) -> bool:
        """A sender and a type (and, for events, an event name): enough to act on."""
        has_event = self.msg_type != "event" or self.event is not None
        return bool(self.user_id and self.msg_type and has_event)

    @property
    def kind(self) -> str:
        if not self.msg_type:
            return UNKNOWN_KIND
        if self.msg_type == "event":
            return f"event:{self.event}" if self.event else "event"
        return self.msg_type


def declared_encoding_ok(text: str) -> bool:
    """Only UTF-8 (or no declaration) is accepted: WeCom sends nothing else."""
    match = _DECLARED_ENCODING.match(text)
    return match is None or match.group(1).strip().lower() in ("utf-8", "utf8")


def parse_xml(text: str) -> dict[str, Any]:
    """Parse WeCom XML with entities and DTDs refused (no XXE, no billion laughs)."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise WireError("XML with a DTD is not accepted")
    if not declared_encoding_ok(text):
        raise WireError("XML declares an encoding other than UTF-8")
    try:
        document = xmltodict.parse(text, disable_entities=True)
    except Exception as exc:  # expat raises several types; all mean "not XML we accept"
        raise WireError("malformed XML") from exc
    if not isinstance(document, dict) or "xml" not in document:
        raise WireError("no <xml> root element")
    root = document["xml"]
    return root if isinstance(root, dict) else {}  # <xml/> or <xml>text</xml>: no fields


def _text(root: dict[str, Any], name: str) -> str:
    value = root.get(name)
    return value.strip() if isinstance(value, str) else ""


def shape_of(root: dict[str, Any]) -> Shape:
    """Classify without trusting any field: odd values become "not said"."""
    user_id = _text(root, "FromUserName")
    msg_type = _text(root, "MsgType")
    event = _text(root, "Event")
    return Shape(
        user_id=user_id if len(user_id) <= MAX_USER_ID else "",
        msg_type=msg_type if _NAME.fullmatch(msg_type) else "",
        event=event if msg_type == "event" and _NAME.fullmatch(event) else None,
    )


def peek(plaintext: str) -> Envelope:
    """Who sent it, what it is, and its dedup key (PROTOCOL.md §1.5: MsgId, else a hash)."""
    root = parse_xml(plaintext)
    shape = shape_of(root)
    msg_id = _text(root, "MsgId")
    if msg_id:
        dedup_key = bounded_dedup_key(f"msg:{msg_id}")
    else:
        # Events have no MsgId; FromUserName+CreateTime collides for system events.
        dedup_key = "evt:" + hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).hexdigest()
    return Envelope(user_id=shape.user_id, kind=shape.kind, dedup_key=dedup_key)


def _created_at(root: dict[str, Any]) -> datetime:
    try:
        return datetime.fromtimestamp(int(_text(root, "CreateTime")), UTC)
    except (ValueError, OverflowError, OSError):
        return datetime.fromtimestamp(0, UTC)


def _selected_items(root: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    container = root.get("SelectedItems")
    items = container.get("SelectedItem") if isinstance(container, dict) else None
    if isinstance(items, dict):
        items = [items]
    selected: dict[str, tuple[str, ...]] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        holder = item.get("OptionIds")
        options = holder.get("OptionId") if isinstance(holder, dict) else None
        if isinstance(options, str):
            options = [options]
        values = options if isinstance(options, list) else []
        selected[_text(item, "QuestionKey")] = tuple(o for o in values if isinstance(o, str))
    return selected


def _department(value: str) -> int | None:
    # isascii: "²".isdigit() is True; the length cap keeps int() far from its digit limit.
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


def _media(root: dict[str, Any], msg_type: str) -> dict[str, str | None]:
    """PROTOCOL.md §3: image has PicUrl+MediaId, voice MediaId+Format, video MediaId; files
    name themselves in FileName. Only media messages carry them; over-long values are dropped."""
    if msg_type not in MEDIA_TYPES:
        return {}
    fields = {
        "media_id": _text(root, "MediaId"),
        "file_name": _text(root, "FileName") or _text(root, "Title"),
        "pic_url": _text(root, "PicUrl"),
        "format": _text(root, "Format"),
    }
    return {k: v if v and len(v) <= _MEDIA_FIELD_MAX else None for k, v in fields.items()}


def to_inbound(plaintext: str, key: str) -> Inbound:
    """Turn a stored plaintext into the handlers' values; never raises for well-formed XML."""
    root = parse_xml(plaintext)
    shape = shape_of(root)
    base: dict[str, Any] = {"user_id": shape.user_id, "key": key, "created_at": _created_at(root)}
    media = _media(root, shape.msg_type)
    other = OtherMessage(
        **base,
        msg_type=shape.msg_type,
        event=shape.event,
        media_id=media.get("media_id"),
        file_name=media.get("file_name"),
        pic_url=media.get("pic_url"),
        format=media.get("format"),
    )
    if not shape.known:
        return other
    try:
        return _known(plaintext, root, shape, base) or other
    except (ValueError, TypeError, KeyError, AttributeError):
        return other  # wechatpy choked on an odd field: record it and move on


def _known(
    plaintext: str, root: dict[str, Any], shape: Shape, base: dict[str, Any]
) -> Inbound | None:
    # wechatpy has no class for these two (PROTOCOL.md §7): read the fields ourselves.
    if shape.msg_type == "event" and shape.event in (
        "template_card_event",
        "template_card_menu_event",
    ):
        return CardAction(
            **base,
            event_key=_text(root, "EventKey"),
            task_id=_text(root, "TaskId"),
            card_type=_text(root, "CardType"),
            response_code=_text(root, "ResponseCode") or None,
            selected=_selected_items(root),
        )
    if shape.msg_type == "event" and shape.event == "change_contact":
        return ContactChange(
            **base,
            change_type=_text(root, "ChangeType"),
            changed_user_id=_text(root, "UserID") or None,
            department_id=_department(_text(root, "Id")),
        )
    message = parse_message(plaintext)
    if isinstance(message, wx_messages.TextMessage):
        content = message.content
        return TextMessage(**base, text=content if isinstance(content, str) else "")
    if isinstance(message, wx_events.EnterAgentEvent):
        return EnterAgent(**base)
    if isinstance(message, wx_events.ClickEvent):
        key_value = message.key
        return MenuClick(**base, event_key=key_value if isinstance(key_value, str) else "")
    return None
