"""撞单: tell a customer's owner (and their leader) when a colleague works on it or re-adds it."""

from __future__ import annotations

from crm_store import config_data
from crm_store.models import Customer
from crm_store.staff import get_staff
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Reply, addressed

ACTIONS = {"followup": "记录了跟进", "duplicate": "尝试新建同名客户", "deal": "创建了商机"}


async def notify_owner(
    ctx: HandlerContext, customer: Customer, *, action: str, detail: str = ""
) -> list[Reply]:
    """Replies to the owner and their direct leaders, as configured; none for one's own."""
    owner_id = customer.owner_id
    if owner_id is None or owner_id == ctx.user_id or customer.in_pool:
        return []
    notice = await config_data.get_collision_notice(ctx.session)
    owner = await get_staff(ctx.session, owner_id)
    if owner is None or not owner.active:
        return []
    actor = await get_staff(ctx.session, ctx.user_id)
    actor_name = actor.name if actor else ctx.user_id
    recipients: list[str] = [owner_id] if notice.owner else []
    if notice.leader:
        recipients += [u for u in owner.direct_leaders or [] if u not in (ctx.user_id, owner_id)]
    if not recipients:
        return []
    reply = ctx.reply(
        "sales/collision",
        actor=actor_name,
        owner=owner.name,
        customer=customer.name,
        action=ACTIONS.get(action, action),
        detail=detail[:60],
    )
    return [addressed(reply, recipients[0], *recipients[1:])]
