"""新客户 / new: add a customer only after 查重 across everyone's; 领取 / claim from the pool."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from crm_store import contacts, customers
from crm_store.customers import ClaimOutcome, DuplicateHint, normalize_phone
from crm_store.models import Customer
from crm_store.names import normalize_company_name
from crm_store.phones import parse_phone
from handlers.common import customer_resolution as resolution
from handlers.common.collisions import notify_owner
from handlers.common.customer_resolution import LAST_CUSTOMER, LastCustomer, NoDraft
from handlers.common.format import when_text
from handlers.kit.cards import CardKey
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Reply
from handlers.kit.routing import Router
from handlers.parsing.customer_form import read_customer_form, read_labels
from handlers.sales import undo
from handlers.sales.steps import SELLERS, SalesStep

router = Router("sales.customers", audience="sales", title="销售", roles=SELLERS)


@dataclass(frozen=True)
class NewCustomerDraft:
    name: str
    industry: str | None = None
    phone: str | None = None
    contact: str | None = None
    city: str | None = None


@dataclass(frozen=True)
class CheckNewCustomer:
    """A 新客户 the bot read with guesses: shown back to the rep before anything is stored."""

    draft: NewCustomerDraft
    guessed: tuple[str, ...] = ()
    leftover: tuple[str, ...] = ()
    fixing: str | None = None  # the field whose new value the next message gives


@dataclass(frozen=True)
class ConfirmNewKey(CardKey, prefix="confirm_new", legacy="confirm_new"):
    """The "create it anyway" button under a duplicate warning."""


@dataclass(frozen=True)
class CreateAsShownKey(CardKey, prefix="create_shown"):
    """The "create as shown" button under the confirmation card."""


@dataclass(frozen=True)
class FixFieldKey(CardKey, prefix="fix_field"):
    field: str


CONFIRM_NEW = router.slot("confirm_new", NewCustomerDraft, ttl=timedelta(minutes=10))
CHECK_NEW = router.slot("check_new_customer", CheckNewCustomer, ttl=timedelta(minutes=15))
FIELD_TITLES = {
    "name": "名称",
    "industry": "行业",
    "phone": "电话",
    "contact": "联系人",
    "city": "城市",
}
_CLEAR_WORDS = frozenset({"无", "没有", "空", "不填", "清空", "-", "—"})
NEW_USAGE = "新客户 <名称> [行业] [电话] [联系人] [城市]（也可写 行业:金融 电话:… 联系人:…）"
NEW_EXAMPLE = "新客户 杭州云栖科技有限公司 软件 13800138000 王总"
REASON_TEXT = {
    "name": "名称相近",
    "similar_name": "名称近似",
    "phone": "电话相同",
    "name_and_phone": "名称电话",
}


@router.command(
    "新客户",
    "新建客户",
    "添加客户",
    "new",
    "add",
    summary="新建客户（先全公司查重，不会重复建；拿不准的先问您）",
    usage=NEW_USAGE,
    example=NEW_EXAMPLE,
)
async def new_customer(ctx: HandlerContext, argument: str) -> list[Reply]:
    form = read_customer_form(argument)
    if form.name is None:
        return [ctx.usage()]
    if form.bad_phone is not None:
        return [ctx.reply("sales/bad_phone")]
    draft = NewCustomerDraft(form.name, form.industry, form.phone, form.contact, form.city)
    if not form.sure:
        return [await _ask(ctx, CheckNewCustomer(draft, form.guessed, form.leftover))]
    return await _dedup_then_create(ctx, draft)


async def _dedup_then_create(ctx: HandlerContext, draft: NewCustomerDraft) -> list[Reply]:
    """查重 across everyone's customers first; a hit waits for the rep's 确认."""
    await ctx.state.clear(CHECK_NEW)
    hints = await customers.find_duplicates(
        ctx.session,
        name_core=normalize_company_name(draft.name),
        phone=normalize_phone(draft.phone),
    )
    if hints:
        await ctx.state.put(CONFIRM_NEW, draft)
        replies = [_duplicate_warning(ctx, hints)]
        replies += await _tell_owners(ctx, hints, draft.name)
        return replies
    return await _create(ctx, draft)


async def _ask(ctx: HandlerContext, check: CheckNewCustomer) -> Reply:
    """Show what was understood, with a button per field to fix and one to create as shown."""
    await ctx.state.put(CHECK_NEW, check)
    draft = check.draft
    keys = ((CreateAsShownKey().pack(), 1),) + tuple(
        (FixFieldKey(name).pack(), 2) for name in FIELD_TITLES
    )
    return ctx.card_from(
        "sales/new_customer_check",
        task_id=resolution.task_id(ctx, f"checknew{len(check.guessed)}{check.fixing}"),
        keys=keys,
        fields=[
            (title, getattr(draft, name) or "—", name in check.guessed)
            for name, title in FIELD_TITLES.items()
        ],
        leftover=list(check.leftover),
    )


@router.card(FixFieldKey)
async def tap_fix_field(ctx: HandlerContext, key: FixFieldKey) -> list[Reply]:
    check = await ctx.state.get(CHECK_NEW)
    if check is None or key.field not in FIELD_TITLES:
        return [ctx.reply("help/nothing_to_confirm")]
    await ctx.state.put(CHECK_NEW, replace(check, fixing=key.field))
    return [ctx.reply("sales/new_customer_fix", field=FIELD_TITLES[key.field])]


@router.answers_to(CHECK_NEW)
async def answer_check(
    ctx: HandlerContext, text: str, check: CheckNewCustomer
) -> list[Reply] | None:
    """The value of the field being fixed, or `行业:金融`-style corrections; else not ours."""
    if check.fixing is not None:
        changes = {check.fixing: text.strip()}
    else:
        changes, free = read_labels(text.strip())
        if not changes or free.strip():
            return None
    draft = check.draft
    for name, raw in changes.items():
        value: str | None = None if raw in _CLEAR_WORDS or not raw else raw
        if name == "name":
            if value is None:
                return [ctx.reply("sales/new_customer_fix", field=FIELD_TITLES[name])]
            draft = replace(draft, name=value[:200])
            continue
        if name == "phone" and value is not None:
            parsed = parse_phone(value)
            if parsed is None:
                return [ctx.reply("sales/bad_phone")]
            value = parsed.stored
        draft = replace(draft, **{name: value})  # type: ignore[arg-type]
    guessed = tuple(g for g in check.guessed if g not in changes)
    leftover = () if changes else check.leftover
    return [await _ask(ctx, CheckNewCustomer(draft, guessed, leftover, None))]


@router.confirms(CHECK_NEW)
async def confirm_check(ctx: HandlerContext, check: CheckNewCustomer) -> list[Reply]:
    """确认 under the confirmation card: create as shown (查重 still applies)."""
    return await _dedup_then_create(ctx, check.draft)


@router.card(CreateAsShownKey)
async def tap_create_as_shown(ctx: HandlerContext, _key: CreateAsShownKey) -> list[Reply]:
    check = await ctx.state.get(CHECK_NEW)
    if check is None:
        return [ctx.reply("help/nothing_to_confirm")]
    return await _dedup_then_create(ctx, check.draft)


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
        city=fields.city,
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
    await undo.remember(ctx, undo.UndoKind.CUSTOMER, customer.id)
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
        await undo.remember(ctx, undo.UndoKind.CLAIM, customer.id)
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
