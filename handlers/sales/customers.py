"""新客户 / new: add a customer only after 查重 across everyone's; 领取 / claim from the pool."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from crm_store import contacts, customers
from crm_store.customers import ClaimOutcome, DuplicateHint, normalize_phone
from crm_store.models import Customer
from crm_store.names import normalize_company_name
from crm_store.phones import find_phone
from handlers.common import customer_resolution as resolution
from handlers.common.collisions import notify_owner
from handlers.common.customer_resolution import LAST_CUSTOMER, LastCustomer, NoDraft
from handlers.common.format import when_text
from handlers.kit.cards import CardKey
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Reply
from handlers.kit.routing import Router
from handlers.sales.steps import SELLERS, SalesStep

router = Router("sales.customers", audience="sales", title="销售", roles=SELLERS)


@dataclass(frozen=True)
class NewCustomerDraft:
    name: str
    industry: str | None = None
    phone: str | None = None
    contact: str | None = None


@dataclass(frozen=True)
class ConfirmNewKey(CardKey, prefix="confirm_new", legacy="confirm_new"):
    """The "create it anyway" button under a duplicate warning."""


CONFIRM_NEW = router.slot("confirm_new", NewCustomerDraft, ttl=timedelta(minutes=10))
_WORDS = re.compile(r"[\s,，;；、]+")
# The commonest surnames: a short token starting with one is a contact, otherwise an industry.
_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜"
    "叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎"
    "贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
NEW_USAGE = "新客户 <名称> [行业] [电话] [联系人]"
NEW_EXAMPLE = "新客户 杭州云栖科技有限公司 软件 13800138000 王总"
REASON_TEXT = {
    "name": "名称相近",
    "similar_name": "名称近似",
    "phone": "电话相同",
    "name_and_phone": "名称电话",
}


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
)
async def new_customer(ctx: HandlerContext, argument: str) -> list[Reply]:
    fields = parse_new_customer(argument)
    if fields is None:
        return [ctx.usage()]
    if fields["phone"] is None and _looks_like_bad_phone(argument):
        return [ctx.reply("sales/bad_phone")]
    hints = await customers.find_duplicates(
        ctx.session,
        name_core=normalize_company_name(str(fields["name"])),
        phone=normalize_phone(fields["phone"]),
    )
    if hints:
        await ctx.state.put(CONFIRM_NEW, _draft(fields))
        replies = [_duplicate_warning(ctx, hints)]
        replies += await _tell_owners(ctx, hints, str(fields["name"]))
        return replies
    return await _create(ctx, _draft(fields))


def _looks_like_bad_phone(argument: str) -> bool:
    """Called when no phone was found: a word with five digits was meant as one."""
    return any(sum(ch.isdigit() for ch in w) >= 5 for w in _WORDS.split(argument)[1:])


def _draft(fields: dict[str, str | None]) -> NewCustomerDraft:
    return NewCustomerDraft(
        name=str(fields["name"]),
        industry=fields.get("industry"),
        phone=fields.get("phone"),
        contact=fields.get("contact"),
    )


def _duplicate_warning(ctx: HandlerContext, hints: list[DuplicateHint]) -> Reply:
    """Say that a similar customer exists and whose it is, never what it is."""
    return ctx.card_from(
        "sales/duplicate_card",
        task_id=resolution.task_id(ctx, "dup"),
        keys=((ConfirmNewKey().pack(), 2),),
        hints=[(REASON_TEXT.get(h.reason.value, "相似"), h.owner_name) for h in hints[:5]],
        pooled=any(h.owner_name == "公海" for h in hints),
    )


async def _tell_owners(ctx: HandlerContext, hints: list[DuplicateHint], name: str) -> list[Reply]:
    replies: list[Reply] = []
    for hint in hints[:3]:
        existing = await customers.get_by_id(ctx.session, hint.customer_id)
        if existing is not None:
            replies += await notify_owner(ctx, existing, action="duplicate", detail=name)
    return replies


async def _create(ctx: HandlerContext, fields: NewCustomerDraft) -> list[Reply]:
    customer = await customers.create_customer(
        ctx.session,
        actor=ctx.actor,
        name=fields.name,
        now=ctx.now(),
        source_key=ctx.message.key,
        owner_id=ctx.user_id,
        phone=fields.phone,
        industry=fields.industry,
        source_channel="chat",
    )
    if fields.contact:
        await contacts.add_contact(
            ctx.session,
            actor_id=ctx.user_id,
            customer_id=customer.id,
            name=fields.contact,
            phone=fields.phone,
            now=ctx.now(),
            source_key=ctx.message.key,
        )
    ctx.search.note(customer)
    await ctx.state.clear(CONFIRM_NEW)
    await ctx.state.put(LAST_CUSTOMER, LastCustomer(customer.id))
    return [ctx.reply("sales/customer_created", c=customer, contact=fields.contact)]


@router.confirms(CONFIRM_NEW)
async def confirm_new(ctx: HandlerContext, draft: NewCustomerDraft) -> list[Reply]:
    """确认 after a duplicate warning: the rep checked and wants it anyway."""
    return await _create(ctx, draft)


@router.card(ConfirmNewKey)
async def tap_confirm_new(ctx: HandlerContext, _key: ConfirmNewKey) -> list[Reply]:
    draft = await ctx.state.get(CONFIRM_NEW)
    if draft is None:
        return [ctx.reply("help/nothing_to_confirm")]
    return await _create(ctx, draft)


@router.command(
    "领取",
    "认领",
    "claim",
    summary="从公海领取客户（每天有上限）",
    usage="领取 <客户>",
    example="领取 云栖科技",
)
async def claim_customer(ctx: HandlerContext, query: str) -> list[Reply]:
    if not query:
        return [ctx.usage()]
    return await resolution.resolve(ctx, query, step=SalesStep.CLAIM, draft=NoDraft())


@resolution.continues(SalesStep.CLAIM, NoDraft)
async def record_claim(ctx: HandlerContext, customer: Customer, _draft: NoDraft) -> list[Reply]:
    result = await customers.claim_from_pool(
        ctx.session,
        actor=ctx.actor,
        customer_id=customer.id,
        now=ctx.now(),
        tz=ctx.tz,
        source_key=ctx.message.key,
    )
    if result.outcome is ClaimOutcome.CLAIMED:
        refreshed = await customers.get_by_id(ctx.session, customer.id)
        if refreshed is not None:
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
