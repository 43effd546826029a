"""Decrypted callback XML -> values: a cheap peek for the ack path, full parsing for the worker."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import xmltodict
from wechatpy.work import events as wx_events
from wechatpy.work import messages as wx_messages
from wechatpy.work import parse_message

from handlers.kit.inbound import (
    CardAction,
    ContactChange,
    EnterAgent,
    Inbound,
    MenuClick,
    OtherMessage,
    TextMessage,
)


class WireError(ValueError):
    """The plaintext is not a WeCom message we can accept (the sender gets a 4xx)."""


@dataclass(frozen=True)
class Envelope:
    user_id: str
    kind: str
    dedup_key: str


def parse_xml(text: str) -> dict[str, Any]:
    """Parse WeCom XML with entities and DTDs refused (no XXE, no billion laughs)."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise WireError("XML with a DTD is not accepted")
    try:
        document = xmltodict.parse(text, disable_entities=True)
    except Exception as exc:  # expat raises several types; all mean "not XML we accept"
        raise WireError("malformed XML") from exc
    root = document.get("xml") if isinstance(document, dict) else None
    if not isinstance(root, dict):
        raise WireError("no <xml> root element")
    return root


def _text(root: dict[str, Any], name: str) -> str:
    value = root.get(name)
    return value.strip() if isinstance(value, str) else ""


def peek(plaintext: str) -> Envelope:
    """Who sent it, what it is, and its dedup key (PROTOCOL.md §1.5: MsgId, else a hash)."""
    root = parse_xml(plaintext)
    user_id = _text(root, "FromUserName")
    msg_type = _text(root, "MsgType")
    if not user_id or not msg_type:
        raise WireError("FromUserName and MsgType are required")
    if len(user_id) > 64:
        raise WireError("FromUserName too long")
    kind = f"event:{_text(root, 'Event')}" if msg_type == "event" else msg_type
    msg_id = _text(root, "MsgId")
    if msg_id:
        dedup_key = f"msg:{msg_id}"
    else:
        # Events have no MsgId; FromUserName+CreateTime collides for system events.
        dedup_key = "evt:" + hashlib.sha256(plaintext.encode()).hexdigest()
    return Envelope(user_id=user_id, kind=kind[:64], dedup_key=dedup_key)


def _created_at(root: dict[str, Any]) -> datetime:
    try:
        return datetime.fromtimestamp(int(_text(root, "CreateTime")), UTC)
    except (ValueError, OverflowError, OSError):
        return datetime.fromtimestamp(0, UTC)


def _selected_items(root: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    items = (root.get("SelectedItems") or {}).get("SelectedItem") or []
    if isinstance(items, dict):
        items = [items]
    selected: dict[str, tuple[str, ...]] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        options = (item.get("OptionIds") or {}).get("OptionId") or []
        if isinstance(options, str):
            options = [options]
        selected[str(item.get("QuestionKey") or "")] = tuple(str(o) for o in options)
    return selected


def to_inbound(plaintext: str, key: str) -> Inbound:
    """Turn a stored plaintext into the handlers' values; wechatpy first, our code for its gaps."""
    root = parse_xml(plaintext)
    user_id = _text(root, "FromUserName")
    created_at = _created_at(root)
    base = {"user_id": user_id, "key": key, "created_at": created_at}
    msg_type = _text(root, "MsgType")
    event = _text(root, "Event")
    # wechatpy has no class for these two (PROTOCOL.md §7): read the fields ourselves.
    if msg_type == "event" and event in ("template_card_event", "template_card_menu_event"):
        return CardAction(
            **base,
            event_key=_text(root, "EventKey"),
            task_id=_text(root, "TaskId"),
            card_type=_text(root, "CardType"),
            response_code=_text(root, "ResponseCode") or None,
            selected=_selected_items(root),
        )
    if msg_type == "event" and event == "change_contact":
        party = _text(root, "Id")
        return ContactChange(
            **base,
            change_type=_text(root, "ChangeType"),
            changed_user_id=_text(root, "UserID") or None,
            department_id=int(party) if party.isdigit() else None,
        )
    message = parse_message(plaintext)
    if isinstance(message, wx_messages.TextMessage):
        return TextMessage(**base, text=message.content or "")
    if isinstance(message, wx_events.EnterAgentEvent):
        return EnterAgent(**base)
    if isinstance(message, wx_events.ClickEvent):
        return MenuClick(**base, event_key=message.key or "")
    return OtherMessage(**base, msg_type=msg_type, event=event or None)
