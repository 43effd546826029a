"""撤销 / undo: take back the last write made in chat, whatever it was, within its window.

Every write that can be taken back remembers itself in the one UNDO slot (its kind, its id and
the message that made it); the store functions refuse when anything else happened since.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from crm_store import customers, deals, followups
from crm_store.customers import UndoResult
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Reply
from handlers.kit.routing import Router
from handlers.sales.steps import SELLERS

router = Router("sales.undo", audience="sales", title="销售", roles=SELLERS)


class UndoKind(StrEnum):
    FOLLOWUP = "followup"
    CUSTOMER = "customer"  # 新客户
    DEAL = "deal"  # 商机
    STAGE = "stage"  # 阶段
    CLAIM = "claim"  # 领取
    EDIT_CUSTOMER = "edit_customer"  # 改 on a customer
    EDIT_DEAL = "edit_deal"  # 改 on a deal


@dataclass(frozen=True)
class LastWrite:
    kind: UndoKind
    target_id: int
    source_key: str  # the message that made the write


def _upgrade(stored: Mapping[str, Any]) -> LastWrite | None:
    """The slot once held only a follow-up id (UndoFollowup)."""
    followup_id = stored.get("followup_id")
    if isinstance(followup_id, int):
        return LastWrite(UndoKind.FOLLOWUP, followup_id, "")
    return None


UNDO = router.slot("undo", LastWrite, ttl=timedelta(minutes=10), upgrade=_upgrade)


async def remember(ctx: HandlerContext, kind: UndoKind, target_id: int) -> None:
    """This message's write is the one 撤销 takes back next."""
    await ctx.state.put(UNDO, LastWrite(kind, target_id, ctx.message.key))


@router.command(
    "撤销",
    "撤回",
    "undo",
    summary="撤销刚才的操作（10 分钟内）：新客户、商机、阶段、跟进、领取、修改",
    usage="撤销",
    example="撤销",
)
async def undo_last(ctx: HandlerContext, _argument: str) -> list[Reply]:
    last = await ctx.state.get(UNDO)
    if last is None:
        return [ctx.reply("sales/nothing_to_undo")]
    return await _undo(ctx, last)


async def undo_followup(ctx: HandlerContext, followup_id: int) -> list[Reply]:
    """The 撤销 button under a follow-up card."""
    return await _undo(ctx, LastWrite(UndoKind.FOLLOWUP, followup_id, ""))


async def _undo(ctx: HandlerContext, last: LastWrite) -> list[Reply]:
    common: dict[str, Any] = {
        "actor_id": ctx.user_id,
        "source_key": ctx.message.key,
        "now": ctx.now(),
    }
    kind, target = last.kind, last.target_id
    if kind is UndoKind.FOLLOWUP:
        result = await followups.undo_followup(ctx.session, followup_id=target, **common)
    elif kind is UndoKind.CUSTOMER:
        result = await customers.undo_create_customer(
            ctx.session, customer_id=target, created_key=last.source_key, **common
        )
    elif kind is UndoKind.CLAIM:
        result = await customers.undo_claim(
            ctx.session, customer_id=target, claim_key=last.source_key, **common
        )
    elif kind is UndoKind.EDIT_CUSTOMER:
        result = await customers.undo_edit_customer(
            ctx.session, customer_id=target, edit_key=last.source_key, **common
        )
    elif kind is UndoKind.DEAL:
        result = await deals.undo_create_opportunity(
            ctx.session, opportunity_id=target, created_key=last.source_key, **common
        )
    elif kind is UndoKind.STAGE:
        result = await deals.undo_stage_move(
            ctx.session, opportunity_id=target, move_key=last.source_key, **common
        )
    else:
        result = await deals.undo_edit_opportunity(
            ctx.session, opportunity_id=target, edit_key=last.source_key, **common
        )
    if result is not UndoResult.CHANGED_SINCE and result is not UndoResult.NOT_YOURS:
        await ctx.state.clear(UNDO)
    if result is UndoResult.UNDONE and kind in (
        UndoKind.CLAIM,
        UndoKind.EDIT_CUSTOMER,
    ):
        refreshed = await customers.get_by_id(ctx.session, target)
        if refreshed is not None:
            ctx.search.note(refreshed)
    return [ctx.reply("sales/undo_result", result=result.value, kind=kind.value)]
