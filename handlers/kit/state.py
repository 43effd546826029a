"""Conversation slots a handler remembers between messages (DB-backed, so any worker sees them)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from crm_store import conversation
from handlers.kit.context import HandlerContext

PENDING = "pending"  # a numbered choice waiting for "2" or a tap
LAST_CUSTOMER = "last_customer"  # the customer shown last: "跟进 ..." may refer to it
UNDO = "undo"  # the follow-up that may still be undone
TASK_LIST = "task_list"  # the task ids behind the numbers of the last 待办 list
CONFIRM_NEW = "confirm_new"  # a new customer waiting for "确认" after a duplicate warning
LOST_REASON = "lost_reason"  # a deal waiting for the reason it was lost

TTL = {
    PENDING: timedelta(minutes=10),
    LAST_CUSTOMER: timedelta(minutes=30),
    UNDO: timedelta(minutes=10),
    TASK_LIST: timedelta(hours=12),
    CONFIRM_NEW: timedelta(minutes=10),
    LOST_REASON: timedelta(minutes=10),
}


async def remember(ctx: HandlerContext, slot: str, value: dict[str, Any]) -> None:
    now = ctx.now()
    await conversation.put(
        ctx.session,
        user_id=ctx.user_id,
        slot=slot,
        value=value,
        expires_at=now + TTL[slot],
        now=now,
    )


async def recall(ctx: HandlerContext, slot: str) -> dict[str, Any] | None:
    return await conversation.get(ctx.session, user_id=ctx.user_id, slot=slot, now=ctx.now())


async def forget(ctx: HandlerContext, slot: str) -> None:
    await conversation.clear(ctx.session, user_id=ctx.user_id, slot=slot)
