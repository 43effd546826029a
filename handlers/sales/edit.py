"""改 / edit: correct what the bot stored — a customer's name, industry, phone, city or contact,
a deal's amount, title or expected close date — with an audit row for each change."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from crm_store import contacts, customers, deals
from crm_store.customers import CustomerField, NotAllowed
from crm_store.deals import DealField
from crm_store.models import Customer
from handlers.common import customer_resolution as resolution
from handlers.common.format import money
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Reply
from handlers.kit.routing import Router
from handlers.parsing import When, find_amount, find_when
from handlers.sales import undo
from handlers.sales.steps import SELLERS, SalesStep

router = Router("sales.edit", audience="sales", title="销售", roles=SELLERS)
_WORDS = re.compile(r"[\s,，;；:：]+")
CONTACT = "contact"
FIELD_WORDS: dict[str, str] = {
    **dict.fromkeys(("名称", "名字", "公司名", "客户名", "name"), CustomerField.NAME.value),
    **dict.fromkeys(("行业", "industry"), CustomerField.INDUSTRY.value),
    **dict.fromkeys(("电话", "手机", "手机号", "phone"), CustomerField.PHONE.value),
    **dict.fromkeys(("城市", "city"), CustomerField.CITY.value),
    **dict.fromkeys(("联系人", "contact"), CONTACT),
    **dict.fromkeys(("金额", "amount"), DealField.AMOUNT.value),
    **dict.fromkeys(
        ("预计成交", "成交日期", "关单日期", "预计关单", "close"), DealField.EXPECTED_CLOSE.value
    ),
    **dict.fromkeys(("商机名", "商机名称", "标题", "title"), DealField.TITLE.value),
}
DEAL_FIELDS = {f.value for f in DealField}
FIELD_TITLES = {
    "name": "名称",
    "industry": "行业",
    "phone": "电话",
    "city": "城市",
    CONTACT: "联系人",
    "amount": "金额",
    "expected_close_date": "预计成交日期",
    "title": "商机名称",
}


@dataclass(frozen=True)
class EditDraft:
    field: str
    value: str  # as typed; amounts and dates are read again when applied


@router.command(
    "改",
    "修改",
    "更正",
    "edit",
    summary="修改客户或商机：名称、行业、电话、城市、联系人、金额、预计成交日期",
    usage="改 <客户或商机> <字段> <新值>",
    example="改 云栖 电话 0571-88886666",
)
async def edit(ctx: HandlerContext, argument: str) -> list[Reply]:
    words = [w for w in _WORDS.split(argument) if w]
    index = next((i for i in range(1, len(words)) if words[i].lower() in FIELD_WORDS), None)
    if index is None:
        return [ctx.reply("sales/edit_which_field", fields="、".join(FIELD_TITLES.values()))]
    if index == len(words) - 1:  # a field but no new value
        return [ctx.usage()]
    target = " ".join(words[:index])
    draft = EditDraft(FIELD_WORDS[words[index].lower()], " ".join(words[index + 1 :]))
    problem = _value_problem(ctx, draft)
    if problem is not None:
        return [problem]
    if draft.field in DEAL_FIELDS:
        matches = await deals.find_opportunities(ctx.session, scope=ctx.scope(), text=target)
        if len(matches) == 1:
            return await _edit_deal(ctx, matches[0].id, draft)
        if len(matches) > 1:
            return [await _offer(ctx, matches, draft)]
        return await resolution.resolve(ctx, target, step=SalesStep.EDIT_DEAL, draft=draft)
    return await resolution.resolve(ctx, target, step=SalesStep.EDIT_CUSTOMER, draft=draft)


def _amount(text: str) -> Decimal | None:
    found = find_amount(text)
    return None if found is None else found[0]


def _day(ctx: HandlerContext, text: str) -> date | None:
    when = find_when(text, now=ctx.now(), tz=ctx.tz)
    return when.at.astimezone(ctx.tz).date() if isinstance(when, When) else None


def _value_problem(ctx: HandlerContext, draft: EditDraft) -> Reply | None:
    """A value that cannot be stored is questioned before anything is looked up or written."""
    if draft.field == DealField.AMOUNT.value and _amount(draft.value) is None:
        return ctx.reply("sales/edit_bad_value", field="金额", value=draft.value, example="80万")
    if draft.field == DealField.EXPECTED_CLOSE.value and _day(ctx, draft.value) is None:
        return ctx.reply("sales/edit_bad_value", field="日期", value=draft.value, example="月底")
    digits = sum(ch.isdigit() for ch in draft.value)
    if draft.field == CustomerField.PHONE.value and not 7 <= digits <= 16:
        return ctx.reply("sales/bad_phone")
    return None


@resolution.continues(SalesStep.EDIT_CUSTOMER, EditDraft)
async def edit_customer(ctx: HandlerContext, customer: Customer, draft: EditDraft) -> list[Reply]:
    before: str | None
    after: str | None
    try:
        if draft.field == CONTACT:
            if not await customers.is_writable(ctx.session, ctx.scope(), customer.id):
                raise NotAllowed(customer.name)
            before, after = await contacts.set_primary_name(
                ctx.session,
                actor_id=ctx.user_id,
                customer_id=customer.id,
                name=draft.value,
                now=ctx.now(),
                source_key=ctx.message.key,
            )
        else:
            before, after = await customers.edit_customer(
                ctx.session,
                scope=ctx.scope(),
                customer_id=customer.id,
                field=CustomerField(draft.field),
                value=draft.value,
                source_key=ctx.message.key,
                now=ctx.now(),
            )
    except NotAllowed:
        return [ctx.reply("sales/not_your_customer", name=customer.name)]
    if draft.field != CONTACT:
        await undo.remember(ctx, undo.UndoKind.EDIT_CUSTOMER, customer.id)
    if draft.field == CustomerField.NAME.value:
        refreshed = await customers.get_by_id(ctx.session, customer.id)
        if refreshed is not None:
            ctx.search.note(refreshed)
    return [_edited(ctx, customer.name, draft.field, before, after)]


@resolution.continues(SalesStep.EDIT_DEAL, EditDraft)
async def edit_deal_of(ctx: HandlerContext, customer: Customer, draft: EditDraft) -> list[Reply]:
    found = await deals.open_opportunities(ctx.session, scope=ctx.scope(), customer_id=customer.id)
    if not found:
        return [ctx.reply("sales/no_open_deal", customer=customer.name, example="商机 …")]
    if len(found) == 1:
        return await _edit_deal(ctx, found[0].id, draft)
    return [await _offer(ctx, found, draft)]


@resolution.continues_with_option(SalesStep.EDIT_CHOSEN_DEAL, EditDraft)
async def edit_chosen_deal(
    ctx: HandlerContext, opportunity_id: int, draft: EditDraft
) -> list[Reply]:
    return await _edit_deal(ctx, opportunity_id, draft)


async def _offer(
    ctx: HandlerContext, found: list[deals.OpportunityView], draft: EditDraft
) -> Reply:
    return await resolution.offer_options(
        ctx,
        step=SalesStep.EDIT_CHOSEN_DEAL,
        draft=draft,
        title=ctx.render("sales/which_deal_to_edit"),
        options=[(d.id, f"{d.title}｜{d.stage}") for d in found[:5]],
    )


async def _edit_deal(ctx: HandlerContext, opportunity_id: int, draft: EditDraft) -> list[Reply]:
    field = DealField(draft.field)
    value: Decimal | date | str = draft.value
    if field is DealField.AMOUNT:
        value = _amount(draft.value) or Decimal(0)
    elif field is DealField.EXPECTED_CLOSE:
        value = _day(ctx, draft.value) or ctx.local_now().date()
    before_view = await deals.get_view(
        ctx.session, scope=ctx.scope(), opportunity_id=opportunity_id
    )
    try:
        view = await deals.edit_opportunity(
            ctx.session,
            scope=ctx.scope(),
            opportunity_id=opportunity_id,
            field=field,
            value=value,
            source_key=ctx.message.key,
            now=ctx.now(),
        )
    except NotAllowed:
        return [ctx.reply("sales/not_your_deal")]
    await undo.remember(ctx, undo.UndoKind.EDIT_DEAL, opportunity_id)
    before = _shown(before_view, field) if before_view else None
    return [_edited(ctx, view.title, field.value, before, _shown(view, field))]


def _shown(view: deals.OpportunityView, field: DealField) -> str | None:
    if field is DealField.AMOUNT:
        return money(view.amount)
    if field is DealField.EXPECTED_CLOSE:
        day = view.expected_close_date
        return None if day is None else f"{day.year}年{day.month}月{day.day}日"
    return view.title


def _edited(ctx: HandlerContext, what: str, field: str, before: object, after: object) -> Reply:
    return ctx.reply(
        "sales/edited",
        what=what,
        field=FIELD_TITLES[field],
        before=before or "",
        after=after or "",
    )
