"""Replies -> outbox rows -> WeCom message/send payloads, within WeCom's size limits
(PROTOCOL.md §4.2). The worker and the scheduler both owe messages through `enqueue_replies`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.wecom.client import split_for_wecom
from crm_store.clock import Clock
from crm_store.queues import outbox
from handlers.kit.replies import Card, Reply

_TASK_ID_CHARS = re.compile(r"[^0-9A-Za-z_\-@]")
# template_card field limits as the WeCom docs state them (characters, not bytes).
_TITLE, _DESC, _SUBTITLE, _KEYNAME, _VALUE, _BUTTON_TEXT = 26, 30, 112, 5, 26, 10
_MAX_ROWS, _MAX_BUTTONS = 6, 6


@dataclass(frozen=True)
class OutgoingMessage:
    to_user: str
    msgtype: str
    payload: dict[str, Any]  # everything but agentid, which the client adds


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def card_payload(card: Card) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "card_type": "button_interaction",
        "main_title": {"title": _cut(card.title, _TITLE)},
        "task_id": _TASK_ID_CHARS.sub("_", card.task_id)[:128],
        "button_list": [
            {"text": _cut(b.text, _BUTTON_TEXT), "style": b.style, "key": b.key[:1024]}
            for b in card.buttons[:_MAX_BUTTONS]
        ],
    }
    if card.description:
        payload["sub_title_text"] = _cut(card.description, _SUBTITLE)
    if card.lines:
        payload["horizontal_content_list"] = [
            {"keyname": _cut(label, _KEYNAME), "value": _cut(value, _VALUE)}
            for label, value in card.lines[:_MAX_ROWS]
        ]
    return payload


def _card_as_markdown(card: Card) -> str:
    lines = [f"**{card.title}**"]
    if card.description:
        lines.append(card.description)
    lines.extend(f"{label}：{value}" for label, value in card.lines)
    return "\n".join(lines)


def to_messages(reply: Reply) -> list[OutgoingMessage]:
    """One reply becomes one or more messages per recipient (long text is split at lines)."""
    recipients = (reply.to_user, *reply.extra_to)
    if reply.kind == "card" and reply.card is not None and reply.card.buttons:
        body = {"template_card": card_payload(reply.card)}
        return [
            OutgoingMessage(
                to, "template_card", {"touser": to, "msgtype": "template_card", **body}
            )
            for to in recipients
        ]
    kind = "markdown" if reply.kind in ("markdown", "card") else "text"
    content = _card_as_markdown(reply.card) if reply.card is not None else reply.content
    pieces = split_for_wecom(content) if content.strip() else []
    return [
        OutgoingMessage(to, kind, {"touser": to, "msgtype": kind, kind: {"content": piece}})
        for to in recipients
        for piece in pieces
    ]


async def enqueue_replies(
    session: AsyncSession, *, replies: list[Reply], source_key: str, clock: Clock
) -> int:
    """Replies become outbox rows keyed by their source, so a re-run adds nothing."""
    count = 0
    for r_index, reply in enumerate(replies):
        for m_index, message in enumerate(to_messages(reply)):
            inserted = await outbox.enqueue(
                session,
                dedup_key=f"{source_key}:{r_index}:{m_index}:{message.to_user}"[:160],
                to_user=message.to_user,
                msgtype=message.msgtype,
                payload=message.payload,
                now=clock.now(),
            )
            count += int(inserted)
    return count
