"""共享 / share and 取消共享 / unshare: let a colleague in on a customer, within one's rights."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from crm_store import customers, staff
from crm_store.models import Customer
from crm_store.models.customer import ShareAccess
from handlers.common import customer_resolution as resolution
from handlers.common.format import when_text
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Reply, addressed
from handlers.kit.routing import Router
from handlers.parsing import When, find_when
from handlers.sales.steps import SELLERS, SalesStep

router = Router("sales.sharing", audience="sales", title="销售", roles=SELLERS)
_EDITABLE = re.compile(r"\s*(可编辑|可修改|可写|编辑|editable|write)\s*", re.I)
_UNTIL = re.compile(r"\s*(?:到|至|直到|until)\s*(.+)$", re.I)


@dataclass(frozen=True)
class ShareDraft:
    userid: str
    name: str
    editable: bool
    until: str | None  # ISO time in UTC
    revoke: bool = False


@router.command(
    "共享",
    "分享",
    "share",
    summary="把客户共享给同事（可只读或可编辑，可设到期日）",
    usage="共享 <客户> <同事> [可编辑] [到 <日期>]",
    example="共享 云栖 李四 可编辑 到 月底",
)
async def share_customer(ctx: HandlerContext, argument: str) -> list[Reply]:
    return await _start(ctx, argument, revoke=False)


@router.command(
    "取消共享",
    "unshare",
    summary="收回共享给同事的客户",
    usage="取消共享 <客户> <同事>",
    example="取消共享 云栖 李四",
)
async def unshare_customer(ctx: HandlerContext, argument: str) -> list[Reply]:
    return await _start(ctx, argument, revoke=True)


async def _start(ctx: HandlerContext, argument: str, *, revoke: bool) -> list[Reply]:
    until: When | None = None
    rest = argument
    found_until = _UNTIL.search(rest)
    if found_until is not None and not revoke:
        when = find_when(found_until.group(1), now=ctx.now(), tz=ctx.tz)
        if not isinstance(when, When):
            return [ctx.reply("sales/share_bad_date", text=found_until.group(1).strip())]
        until = when
        rest = rest[: found_until.start()]
    editable = bool(_EDITABLE.search(rest))
    rest = _EDITABLE.sub(" ", rest)
    words = rest.split()
    if len(words) < 2:
        return [ctx.usage()]
    query, person = " ".join(words[:-1]), words[-1]
    people = await staff.find_active(ctx.session, person)
    if not people:
        return [ctx.reply("sales/share_no_such_person", name=person)]
    if len(people) > 1 and people[0][1] != person and people[0][0] != person:
        return [ctx.reply("sales/share_which_person", name=person, names=[n for _, n in people])]
    userid, name = people[0]
    if userid == ctx.user_id:
        return [ctx.reply("sales/share_self")]
    draft = ShareDraft(
        userid,
        name,
        editable,
        None if until is None else until.at.astimezone(UTC).isoformat(),
        revoke,
    )
    return await resolution.resolve(ctx, query, step=SalesStep.SHARE, draft=draft)


@resolution.continues(SalesStep.SHARE, ShareDraft)
async def record_share(ctx: HandlerContext, customer: Customer, draft: ShareDraft) -> list[Reply]:
    """Only someone who may change the customer may let others in (or shut them out)."""
    if not await customers.is_writable(ctx.session, ctx.scope(), customer.id):
        return [ctx.reply("sales/not_your_customer", name=customer.name)]
    if draft.revoke:
        removed = await customers.revoke_share(
            ctx.session,
            customer_id=customer.id,
            userid=draft.userid,
            by=ctx.user_id,
            now=ctx.now(),
            source_key=ctx.message.key,
        )
        return [
            ctx.reply("sales/unshared", customer=customer.name, name=draft.name, removed=removed)
        ]
    until = None if draft.until is None else datetime.fromisoformat(draft.until)
    await customers.share(
        ctx.session,
        customer_id=customer.id,
        userid=draft.userid,
        access=ShareAccess.WRITE if draft.editable else ShareAccess.READ,
        until=until,
        by=ctx.user_id,
        now=ctx.now(),
        source_key=ctx.message.key,
    )
    me = await staff.get_staff(ctx.session, ctx.user_id)
    notice = ctx.reply(
        "sales/shared_with_you",
        customer=customer.name,
        by=me.name if me else ctx.user_id,
        editable=draft.editable,
        until=when_text(ctx, until, with_time=False) if until else None,
    )
    return [
        ctx.reply(
            "sales/shared",
            customer=customer.name,
            name=draft.name,
            editable=draft.editable,
            until=when_text(ctx, until, with_time=False) if until else None,
        ),
        addressed(notice, draft.userid),
    ]
