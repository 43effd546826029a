"""新客户 / new: add a customer only after 查重 across everyone's; 领取 / claim from the pool."""

from __future__ import annotations

import re
from typing import Any

from crm_store import contacts, customers
from crm_store.customers import ClaimOutcome, DuplicateHint, normalize_phone
from crm_store.models import Customer
from crm_store.names import normalize_company_name
from crm_store.phones import find_phone
from handlers.common import customer_resolution as resolution
from handlers.common.collisions import notify_owner
from handlers.common.format import needs_actor, when_text
from handlers.kit import state
from handlers.kit.context import HandlerContext
from handlers.kit.inbound import CardAction
from handlers.kit.replies import Card, CardButton, Reply
from handlers.kit.routing import Router

router = Router(name=__name__)
_WORDS = re.compile(r"[\s,，;；、]+")
# The commonest surnames: a short token starting with one is a contact, otherwise an industry.
_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜"
    "叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎"
    "贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
NEW_USAGE = "新客户 <名称> [行业] [电话] [联系人]"
NEW_EXAMPLE = "新客户 杭州云栖科技有限公司 软件 13800138000 王总"
REASON_TEXT = {"name": "名称相近", "phone": "电话相同", "name_and_phone": "名称电话"}


def parse_new_customer(argument: str) -> dict[str, str | None] | None:
    """Name first; then a phone however it is written (crm_store.phones), and industry/contact
    by position or surname. The phone comes back in its stored form."""
    words = [w for w in _WORDS.split(argument) if w]
    if not words:
        return None
    name = words[0]
    rest = argument[argument.index(name) + len(name) :]
    found = find_phone(rest)
    phone = None
    if found is not None:
        phone = found[0].stored
        rest = f"{rest[: found[1][0]]} {rest[found[1][1] :]}"
    others = [w for w in _WORDS.split(rest) if w]
    industry = contact = None
    if len(others) >= 2:
        industry, contact = others[0], " ".join(others[1:])
    elif others:
        word = others[0]
        if (
            len(word) <= 3
            and word[0] in _SURNAMES
            or word.endswith(("总", "经理", "先生", "女士"))
        ):
            contact = word
        else:
            industry = word
    return {"name": name[:200], "industry": industry, "phone": phone, "contact": contact}


@router.command(
    "新客户",
    "新建客户",
    "添加客户",
    "new",
    "add",
    summary="新建客户（先全公司查重，不会重复建）",
    usage=NEW_USAGE,
    example=NEW_EXAMPLE,
    audience="sales",
)
@needs_actor
async def new_customer(ctx: HandlerContext, argument: str) -> list[Reply]:
    fields = parse_new_customer(argument)
    if fields is None:
        return [ctx.reply("help/usage", usage=NEW_USAGE, example=NEW_EXAMPLE)]
    if fields["phone"] is None and _looks_like_bad_phone(argument):
        return [ctx.reply("sales/bad_phone")]
    hints = await customers.find_duplicates(
        ctx.session,
        name_core=normalize_company_name(str(fields["name"])),
        phone=normalize_phone(fields["phone"]),
    )
    if hints:
        await state.remember(ctx, state.CONFIRM_NEW, fields)
        replies = [_duplicate_warning(ctx, hints)]
        replies += await _tell_owners(ctx, hints, str(fields["name"]))
        return replies
    return await _create(ctx, fields)


def _looks_like_bad_phone(argument: str) -> bool:
    """Called when no phone was found: a word with five digits was meant as one."""
    return any(sum(ch.isdigit() for ch in w) >= 5 for w in _WORDS.split(argument)[1:])


def _duplicate_warning(ctx: HandlerContext, hints: list[DuplicateHint]) -> Reply:
    """Say that a similar customer exists and whose it is, never what it is."""
    lines = tuple(
        (REASON_TEXT.get(h.reason.value, "相似")[:5], f"负责人：{h.owner_name}") for h in hints[:5]
    )
    pooled = any(h.owner_name == "公海" for h in hints)
    card = Card(
        title="已有相似客户",
        description=(
            "其中有在公海的客户，可用“领取 名称”领取。"
            if pooled
            else "为避免撞单，请先与负责人确认。"
        )
        + "确需新建请点“仍然新建”或回复“确认”。",
        task_id=resolution.task_id(ctx, "dup"),
        buttons=(CardButton(text="仍然新建", key="confirm_new", style=2),),
        lines=lines,
    )
    return ctx.card(card)


async def _tell_owners(ctx: HandlerContext, hints: list[DuplicateHint], name: str) -> list[Reply]:
    replies: list[Reply] = []
    for hint in hints[:3]:
        existing = await ctx.session.get(Customer, hint.customer_id)
        if existing is not None:
            replies += await notify_owner(ctx, existing, action="duplicate", detail=name)
    return replies


async def _create(ctx: HandlerContext, fields: dict[str, Any]) -> list[Reply]:
    assert ctx.actor is not None
    customer = await customers.create_customer(
        ctx.session,
        actor=ctx.actor,
        name=str(fields["name"]),
        now=ctx.now(),
        source_key=ctx.message.key,
        owner_id=ctx.user_id,
        phone=fields.get("phone"),
        industry=fields.get("industry"),
        source_channel="chat",
    )
    if fields.get("contact"):
        await contacts.add_contact(
            ctx.session,
            actor_id=ctx.user_id,
            customer_id=customer.id,
            name=str(fields["contact"]),
            phone=fields.get("phone"),
            now=ctx.now(),
            source_key=ctx.message.key,
        )
    if ctx.search is not None:
        ctx.search.note(customer)
    await state.forget(ctx, state.CONFIRM_NEW)
    await state.remember(ctx, state.LAST_CUSTOMER, {"id": customer.id})
    return [ctx.reply("sales/customer_created", c=customer, contact=fields.get("contact"))]


@router.command(
    "确认",
    "确认新建",
    "confirm",
    summary="确认新建刚才提示重复的客户",
    usage="确认",
    example="确认",
    audience="sales",
)
@needs_actor
async def confirm_new(ctx: HandlerContext, _argument: str) -> list[Reply]:
    fields = await state.recall(ctx, state.CONFIRM_NEW)
    if fields is None:
        return [ctx.reply("sales/nothing_to_confirm")]
    return await _create(ctx, fields)


@router.card_action("confirm_new")
async def tap_confirm_new(ctx: HandlerContext, _action: CardAction, _rest: str) -> list[Reply]:
    if ctx.actor is None or ctx.search is None:
        return []
    return await confirm_new(ctx, "")


@router.command(
    "领取",
    "认领",
    "claim",
    summary="从公海领取客户（每天有上限）",
    usage="领取 <客户>",
    example="领取 云栖科技",
    audience="sales",
)
@needs_actor
async def claim_customer(ctx: HandlerContext, query: str) -> list[Reply]:
    if not query:
        return [ctx.reply("help/usage", usage="领取 <客户>", example="领取 云栖科技")]
    return await resolution.resolve(ctx, query, purpose="claim", payload={})


@resolution.continues("claim")
async def record_claim(
    ctx: HandlerContext, customer: Customer, _payload: dict[str, Any]
) -> list[Reply]:
    assert ctx.actor is not None
    result = await customers.claim_from_pool(
        ctx.session,
        actor=ctx.actor,
        customer_id=customer.id,
        now=ctx.now(),
        tz=ctx.tz,
        source_key=ctx.message.key,
    )
    if result.outcome is ClaimOutcome.CLAIMED:
        refreshed = await ctx.session.get(Customer, customer.id)
        if refreshed is not None and ctx.search is not None:
            ctx.search.note(refreshed)
    return [
        ctx.reply(
            "sales/claim_result",
            outcome=result.outcome.value,
            name=customer.name,
            count=result.claims_today,
            limit=result.daily_limit,
            until=when_text(ctx, result.cooldown_until, with_time=False),
        )
    ]
