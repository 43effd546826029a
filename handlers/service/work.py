"""Working a ticket: 接单 转 备注 回复 等待 继续 解决 关闭 重开 优先级 合并 满意度.

Each command names a ticket by number; the store checks visibility and the transition table,
and a refusal becomes a Chinese explanation with nothing written.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from crm_store import customers, tickets
from crm_store.models import Customer
from crm_store.models.service import Priority, TicketStatus
from crm_store.tickets import Action, Change, Refused
from crm_store.views import staff_names
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Reply
from handlers.kit.routing import EVERYONE, Router
from handlers.service.keys import SetPriorityKey, TakeKey
from handlers.service.notify import tell_assignee, tell_owner
from handlers.service.priority import stated_priority
from handlers.service.steps import STATUS_TEXT, WORKERS, parse_ref

router = Router("service.work", audience="service", title="客服", roles=EVERYONE)
ACTION_TEXT = {
    Action.TAKE: "接单",
    Action.TRANSFER: "转交",
    Action.NOTE: "加备注",
    Action.REPLY: "记录回复",
    Action.WAIT: "改为等待客户",
    Action.RESUME: "继续",
    Action.RESOLVE: "解决",
    Action.CLOSE: "关闭",
    Action.REOPEN: "重开",
    Action.PRIORITY: "改优先级",
    Action.MERGE: "合并",
    Action.RATE: "记录满意度",
}
HINTS = {
    (Action.CLOSE, TicketStatus.OPEN.value): "请先“解决”再关闭。",
    (Action.CLOSE, TicketStatus.IN_PROGRESS.value): "请先“解决”再关闭。",
    (Action.CLOSE, TicketStatus.WAITING.value): "请先“解决”再关闭。",
    (Action.RATE, TicketStatus.OPEN.value): "解决之后再记满意度。",
    (Action.RATE, TicketStatus.IN_PROGRESS.value): "解决之后再记满意度。",
    (Action.RATE, TicketStatus.WAITING.value): "解决之后再记满意度。",
    (Action.RESUME, TicketStatus.OPEN.value): "它没有在等待客户。",
    (Action.RESUME, TicketStatus.IN_PROGRESS.value): "它没有在等待客户。",
}
_SCORE = re.compile(r"^([1-5])\s*分?\s*(.*)$", re.S)
_MERGE = re.compile(r"^#?(\d{1,12})\s*(?:到|into|->|→)?\s*#?(\d{1,12})$")


@dataclass(frozen=True)
class NoteFor:
    ticket_id: int


NOTE = router.slot("ticket_note", NoteFor, ttl=timedelta(minutes=10))
Apply = Callable[[], Awaitable[Change]]


def explain(ctx: HandlerContext, refused: Refused, action: Action, **extra: Any) -> Reply:
    """A refusal in Chinese: what the ticket is now and why the command does not apply."""
    if refused.reason == "not_found":
        return ctx.reply("service/not_found", number=refused.number)
    return ctx.reply(
        "service/refused",
        reason=refused.reason,
        number=refused.number,
        status=STATUS_TEXT.get(refused.status or "", refused.status or ""),
        action=ACTION_TEXT[action],
        hint=HINTS.get((action, refused.status or ""), ""),
        person=extra.get("person", ""),
        priority=extra.get("priority", ""),
    )


async def _customer(ctx: HandlerContext, customer_id: int | None) -> Customer | None:
    return await customers.get_by_id(ctx.session, customer_id) if customer_id is not None else None


async def _run(
    ctx: HandlerContext, action: Action, apply: Apply, **extra: Any
) -> tuple[Change | None, list[Reply]]:
    try:
        change = await apply()
    except Refused as refused:
        return None, [explain(ctx, refused, action, **extra)]
    return change, [
        ctx.reply("service/changed", action=action.value, number=change.ticket.number, **extra)
    ]


def _ref_or_usage(
    ctx: HandlerContext, argument: str, *, needs_text: bool
) -> tuple[int, str] | Reply:
    ref = parse_ref(argument)
    if ref is None or (needs_text and not ref[1]):
        return ctx.usage()
    return ref


async def _by_number(
    ctx: HandlerContext, argument: str, action: Action, write: Callable[..., Awaitable[Change]]
) -> list[Reply]:
    """The commands that take nothing but a ticket number (等待, 继续, 关闭)."""
    ref = _ref_or_usage(ctx, argument, needs_text=False)
    if not isinstance(ref, tuple):
        return [ref]
    _, replies = await _run(ctx, action, lambda: write(ctx.session, ticket_id=ref[0], **_kw(ctx)))
    return replies


def _kw(ctx: HandlerContext) -> dict[str, Any]:
    return {"scope": ctx.scope(), "source_key": ctx.message.key, "now": ctx.now(), "tz": ctx.tz}


@router.command(
    "接单", "take", summary="接手一个工单", usage="接单 #编号", example="接单 #12", roles=WORKERS
)
async def take_ticket(ctx: HandlerContext, argument: str) -> list[Reply]:
    ref = _ref_or_usage(ctx, argument, needs_text=False)
    if not isinstance(ref, tuple):
        return [ref]
    return await take(ctx, ref[0])


async def take(ctx: HandlerContext, ticket_id: int) -> list[Reply]:
    _, replies = await _run(
        ctx, Action.TAKE, lambda: tickets.take(ctx.session, ticket_id=ticket_id, **_kw(ctx))
    )
    return replies


@router.command(
    "转", "转交", "转给", "transfer", summary="把工单转给同事（对方会收到通知）",
    usage="转 #编号 <同事>", example="转 #12 李四", roles=WORKERS,
)  # fmt: skip
async def transfer_ticket(ctx: HandlerContext, argument: str) -> list[Reply]:
    ref = _ref_or_usage(ctx, argument, needs_text=True)
    if not isinstance(ref, tuple):
        return [ref]
    ticket_id, person = ref
    userid = await tickets.find_staff(ctx.session, person)
    change, replies = await _run(
        ctx,
        Action.TRANSFER,
        lambda: tickets.transfer(
            ctx.session, ticket_id=ticket_id, to_userid=userid or "", **_kw(ctx)
        ),
        person=person,
    )
    if change is not None and change.written:
        customer = await _customer(ctx, change.ticket.customer_id)
        replies += await tell_assignee(
            ctx, change.ticket, customer.name if customer else None, event="transferred"
        )
    return replies


@router.command(
    "备注",
    "note",
    summary="给工单加内部备注",
    usage="备注 #编号 <内容>",
    example="备注 #12 已联系工程师",
)
async def note_ticket(ctx: HandlerContext, argument: str) -> list[Reply]:
    ref = _ref_or_usage(ctx, argument, needs_text=True)
    if not isinstance(ref, tuple):
        return [ref]
    return await add_note(ctx, *ref)


async def add_note(ctx: HandlerContext, ticket_id: int, text: str) -> list[Reply]:
    _, replies = await _run(
        ctx,
        Action.NOTE,
        lambda: tickets.note(ctx.session, ticket_id=ticket_id, text=text, **_kw(ctx)),
    )
    return replies


@router.answers_to(NOTE)
async def answer_note(ctx: HandlerContext, text: str, waiting: NoteFor) -> list[Reply] | None:
    """The words after a tap on "加备注" are the note."""
    await ctx.state.clear(NOTE)
    return await add_note(ctx, waiting.ticket_id, text)


@router.command(
    "回复", "reply", summary="记录告诉客户的话（计入首次/再次响应）",
    usage="回复 #编号 <内容>", example="回复 #12 已安排工程师明早上门",
)  # fmt: skip
async def reply_ticket(ctx: HandlerContext, argument: str) -> list[Reply]:
    ref = _ref_or_usage(ctx, argument, needs_text=True)
    if not isinstance(ref, tuple):
        return [ref]
    ticket_id, text = ref
    _, replies = await _run(
        ctx,
        Action.REPLY,
        lambda: tickets.reply(ctx.session, ticket_id=ticket_id, text=text, **_kw(ctx)),
    )
    return replies


@router.command(
    "等待",
    "wait",
    summary="等待客户回复（SLA 暂停）",
    usage="等待 #编号",
    example="等待 #12",
    roles=WORKERS,
)
async def wait_ticket(ctx: HandlerContext, argument: str) -> list[Reply]:
    return await _by_number(ctx, argument, Action.WAIT, tickets.wait)


@router.command(
    "继续",
    "resume",
    summary="客户回复了：继续处理（SLA 恢复）",
    usage="继续 #编号",
    example="继续 #12",
    roles=WORKERS,
)
async def resume_ticket(ctx: HandlerContext, argument: str) -> list[Reply]:
    return await _by_number(ctx, argument, Action.RESUME, tickets.resume)


@router.command(
    "解决", "resolve", summary="写明处理结果并解决（通知销售、建回访）",
    usage="解决 #编号 <处理>", example="解决 #12 更换主板后恢复正常", roles=WORKERS,
)  # fmt: skip
async def resolve_ticket(ctx: HandlerContext, argument: str) -> list[Reply]:
    ref = _ref_or_usage(ctx, argument, needs_text=True)
    if not isinstance(ref, tuple):
        return [ref]
    ticket_id, text = ref
    try:
        change = await tickets.resolve(ctx.session, ticket_id=ticket_id, text=text, **_kw(ctx))
    except Refused as refused:
        return [explain(ctx, refused, Action.RESOLVE)]
    ticket = change.ticket
    customer = await _customer(ctx, ticket.customer_id)
    callback = None
    if change.written:
        callback = await tickets.create_callback(
            ctx.session, ticket=ticket, customer=customer, source_key=ctx.message.key,
            now=ctx.now(), tz=ctx.tz,
        )  # fmt: skip
    who = ""
    if callback is not None:
        who = (
            "您"
            if callback[1] == ctx.user_id
            else (await staff_names(ctx.session, [callback[1]])).get(callback[1], "")
        )
    replies: list[Reply] = [
        ctx.reply("service/changed", action="resolve", number=ticket.number, callback=who)
    ]
    if change.written:
        owner_has_task = (
            callback is not None and customer is not None and callback[1] == customer.owner_id
        )
        replies += await tell_owner(
            ctx, ticket, customer, event="resolved", callback=owner_has_task
        )
    return replies


@router.command(
    "关闭",
    "close",
    summary="关闭已解决的工单",
    usage="关闭 #编号",
    example="关闭 #12",
    roles=WORKERS,
)
async def close_ticket(ctx: HandlerContext, argument: str) -> list[Reply]:
    return await _by_number(ctx, argument, Action.CLOSE, tickets.close)


@router.command(
    "重开",
    "reopen",
    summary="问题又出现了：重开工单",
    usage="重开 #编号 <原因>",
    example="重开 #12 客户说又坏了",
    roles=WORKERS,
)
async def reopen_ticket(ctx: HandlerContext, argument: str) -> list[Reply]:
    ref = _ref_or_usage(ctx, argument, needs_text=True)
    if not isinstance(ref, tuple):
        return [ref]
    ticket_id, text = ref
    _, replies = await _run(
        ctx,
        Action.REOPEN,
        lambda: tickets.reopen(ctx.session, ticket_id=ticket_id, text=text, **_kw(ctx)),
    )
    return replies


@router.command(
    "优先级",
    "priority",
    summary="改工单优先级（SLA 重算）",
    usage="优先级 #编号 P1-P4",
    example="优先级 #12 P1",
    roles=WORKERS,
)
async def priority_ticket(ctx: HandlerContext, argument: str) -> list[Reply]:
    ref = _ref_or_usage(ctx, argument, needs_text=True)
    if not isinstance(ref, tuple):
        return [ref]
    priority, _ = stated_priority(ref[1])
    if priority is None:
        return [ctx.usage()]
    return await change_priority(ctx, ref[0], priority)


async def change_priority(ctx: HandlerContext, ticket_id: int, priority: Priority) -> list[Reply]:
    _, replies = await _run(
        ctx,
        Action.PRIORITY,
        lambda: tickets.set_priority(
            ctx.session, ticket_id=ticket_id, priority=priority, **_kw(ctx)
        ),
        priority=priority.value,
    )
    return replies


@router.command(
    "合并",
    "merge",
    summary="把重复的工单并入另一个（记录保留）",
    usage="合并 #重复的 #保留的",
    example="合并 #13 #12",
    roles=WORKERS,
)
async def merge_tickets(ctx: HandlerContext, argument: str) -> list[Reply]:
    match = _MERGE.match(argument.strip())
    if match is None:
        return [ctx.usage()]
    source, into = int(match.group(1)), int(match.group(2))
    _, replies = await _run(
        ctx,
        Action.MERGE,
        lambda: tickets.merge(ctx.session, ticket_id=source, into_id=into, **_kw(ctx)),
        into=into,
    )
    return replies


@router.command(
    "满意度",
    "csat",
    summary="记录客户满意度 1-5 分",
    usage="满意度 #编号 <1-5> [备注]",
    example="满意度 #12 5 处理很及时",
)
async def rate_ticket(ctx: HandlerContext, argument: str) -> list[Reply]:
    ref = _ref_or_usage(ctx, argument, needs_text=True)
    if not isinstance(ref, tuple):
        return [ref]
    match = _SCORE.match(ref[1])
    if match is None:
        return [ctx.usage()]
    score, remark = int(match.group(1)), match.group(2).strip()
    _, replies = await _run(
        ctx,
        Action.RATE,
        lambda: tickets.rate(
            ctx.session, ticket_id=ref[0], score=score, remark=remark, **_kw(ctx)
        ),
        score=score,
    )
    return replies


@router.card(TakeKey)
async def tap_take(ctx: HandlerContext, key: TakeKey) -> list[Reply]:
    if ctx.role not in WORKERS:
        return [
            ctx.reply(
                "errors/not_for_role",
                command="接单",
                allowed=["客服", "主管", "管理员"],
                role="销售",
            )
        ]
    return await take(ctx, key.ticket_id)


@router.card(SetPriorityKey)
async def tap_set_priority(ctx: HandlerContext, key: SetPriorityKey) -> list[Reply]:
    if key.priority not in {p.value for p in Priority}:
        return [ctx.reply("errors/stale_card")]
    return await change_priority(ctx, key.ticket_id, Priority(key.priority))
