"""The customer's own words: what service staff forward to the bot is held for a ticket.

Text that is not a command, and pictures, files and voice, are kept for 10 minutes in order;
`工单 <客户>` with no problem text takes them as the body and attachments (with their media
ids; the runtime then stores the files). Something that reads like a complaint gets, once per
batch, an offer to open a ticket from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from crm_store.models.org import Role
from handlers.kit.context import HandlerContext
from handlers.kit.inbound import OtherMessage, TextMessage
from handlers.kit.replies import Reply
from handlers.kit.routing import Router
from handlers.service.priority import CATEGORY_WORDS, infer_priority

HOLD = timedelta(minutes=10)
MAX_HELD = 30
ATTACHMENT_TYPES = frozenset({"image", "file", "voice", "video"})
_COMPLAINT_WORDS = CATEGORY_WORDS["投诉"] + CATEGORY_WORDS["故障"] + CATEGORY_WORDS["退换货"]

router = Router(
    "service.capture", audience="service", title="客服", roles=(Role.SERVICE, Role.ADMIN)
)


@dataclass(frozen=True)
class HeldItem:
    kind: str  # "text", or the message type of an attachment
    text: str
    key: str  # the message key: the attachment's reference
    at: str  # ISO time the message arrived
    # What WeCom said about a media message ("" when not said; slots from before decode too)
    media_id: str = ""
    file_name: str = ""
    pic_url: str = ""
    format: str = ""


@dataclass(frozen=True)
class Held:
    items: tuple[HeldItem, ...]
    offered: bool = False


HELD = router.slot("held_messages", Held, ttl=HOLD)


def _fresh(held: Held, now: datetime) -> tuple[HeldItem, ...]:
    return tuple(i for i in held.items if datetime.fromisoformat(i.at) > now - HOLD)


def reads_like_complaint(text: str) -> bool:
    return any(w in text for w in _COMPLAINT_WORDS) or infer_priority(text).value in ("P1", "P2")


@router.otherwise
async def hold_message(ctx: HandlerContext, message: TextMessage | OtherMessage) -> list[Reply]:
    """Keep it for a ticket; answer the first of a batch, and offer a ticket once."""
    held = await ctx.state.get(HELD)
    items = _fresh(held, ctx.now()) if held is not None else ()
    offered = held.offered if held is not None and items else False
    if isinstance(message, TextMessage):
        item = HeldItem("text", message.text.strip(), message.key, ctx.now().isoformat())
    else:
        item = HeldItem(
            message.msg_type,
            "",
            message.key,
            ctx.now().isoformat(),
            media_id=message.media_id or "",
            file_name=message.file_name or "",
            pic_url=message.pic_url or "",
            format=message.format or "",
        )
    items = (*items, item)[-MAX_HELD:]
    offer = not offered and item.kind == "text" and reads_like_complaint(item.text)
    await ctx.state.put(HELD, Held(items, offered or offer))
    if offer:
        return [ctx.reply("service/offer", count=len(items))]
    if len(items) == 1:
        return [ctx.reply("service/held", kind=item.kind)]
    return []


async def held_text(ctx: HandlerContext) -> Held | None:
    """The messages held for this person now, or None."""
    held = await ctx.state.get(HELD)
    if held is None or not _fresh(held, ctx.now()):
        return None
    return held


async def take_held(ctx: HandlerContext) -> tuple[str, list[dict[str, Any]]] | None:
    """The held words in order as one body, the attachments as references; the hold empties."""
    held = await held_text(ctx)
    if held is None:
        return None
    await ctx.state.clear(HELD)
    items = _fresh(held, ctx.now())
    body = "\n".join(i.text for i in items if i.kind == "text" and i.text)
    attachments = [_attachment(i) for i in items if i.kind != "text"]
    return body, attachments


def _attachment(item: HeldItem) -> dict[str, Any]:
    """The ticket's record of one forwarded file; the media fields only when WeCom sent them."""
    found = {"kind": item.kind, "message_key": item.key, "at": item.at}
    media = {
        "media_id": item.media_id,
        "file_name": item.file_name,
        "pic_url": item.pic_url,
        "format": item.format,
    }
    return {**found, **{k: v for k, v in media.items() if v}}
