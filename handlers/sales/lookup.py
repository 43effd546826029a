"""查 / find: a customer from whatever the person remembers; 我的客户 / mine."""

from __future__ import annotations

import re

from crm_store import staff, tasks
from crm_store.models import Customer
from crm_store.views import CustomerCard, card_of
from handlers.common import customer_resolution as resolution
from handlers.common.customer_resolution import CommonStep, NoDraft
from handlers.common.format import money, short, when_text
from handlers.kit.context import HandlerContext
from handlers.kit.inbound import OtherMessage, TextMessage
from handlers.kit.replies import Reply
from handlers.kit.routing import Router, normalize_text
from handlers.sales.steps import SELLERS

router = Router("sales.lookup", audience="sales", title="销售")
# Hit kinds that mean "this message names that customer"; fragments and fuzzy echoes do not.
NAME_KINDS = frozenset(
    {"exact", "alias", "learned", "phone", "contact", "pinyin", "initials", "abbrev", "prefix"}
)
_SENTENCE = re.compile(r"[,，。！？!?；;：:、]|\s.*\s.*\s")
_PERSON_CUSTOMERS = re.compile(r"客户\s+(?P<a>\S{2,12})|(?P<b>\S{2,12}?)的客户")


@router.command(
    "查",
    "查客户",
    "查找",
    "搜索",
    "find",
    "search",
    "lookup",
    summary="查客户：名称片段、拼音、首字母、错别字都能找到",
    usage="查 <名称/拼音/首字母>",
    example="查 albb",
)
async def find_customer(ctx: HandlerContext, query: str) -> list[Reply]:
    """Search only what the actor may see: a result list is a leak too."""
    if not query:
        return [ctx.usage()]
    return await resolution.resolve(ctx, query, step=CommonStep.SHOW, draft=NoDraft())


@resolution.continues(CommonStep.SHOW, NoDraft)
async def show_customer(ctx: HandlerContext, customer: Customer, _draft: NoDraft) -> list[Reply]:
    card = await card_of(ctx.session, scope=ctx.scope(), customer=customer)
    return [render_card(ctx, card)]


def render_card(ctx: HandlerContext, card: CustomerCard) -> Reply:
    """The card as markdown; the footer offers only what this reader may do next."""
    may_log = ctx.catalogue.find_command("跟进")
    return ctx.reply(
        "customer/card",
        c=card,
        owner=card.owner_name,
        next_followup=when_text(ctx, card.next_followup_at),
        deals=[
            {"title": d.title, "stage": d.stage, "amount": money(d.amount)}
            for d in card.open_deals
        ],
        closed=[
            {
                "title": d.title,
                "won": d.won,
                "amount": money(d.amount),
                "when": when_text(ctx, d.closed_at, with_time=False),
            }
            for d in card.closed_deals
        ],
        followups=[
            {
                "when": when_text(ctx, f.created_at, with_time=False),
                "author": f.author,
                "content": short(f.content, 40),
            }
            for f in card.recent_followups
        ],
        tickets=[
            {
                "number": t.number,
                "priority": t.priority,
                "status": str(t.status),
                "content": short(t.content, 24),
            }
            for t in card.open_tickets
        ],
        may_log=may_log is not None and may_log.allows(ctx.role),
    )


def looks_like_a_name(text: str) -> bool:
    """Short, one to three words, no sentence punctuation: something a rep types as a name."""
    return 2 <= len(text) <= 30 and _SENTENCE.search(text) is None


@router.otherwise
async def show_by_name(
    ctx: HandlerContext, message: TextMessage | OtherMessage
) -> list[Reply] | None:
    """A message that is only a customer's name (or phone, contact, initials) shows the card;
    anything else passes on. `客户 张三` / `张三的客户` lists a colleague's customers."""
    if not isinstance(message, TextMessage) or ctx.role not in SELLERS:
        return None
    text = normalize_text(message.text)
    person = _PERSON_CUSTOMERS.fullmatch(text)
    if person is not None:
        listed = await _person_customers(ctx, person.group("a") or person.group("b"))
        if listed is not None:
            return listed
    if not looks_like_a_name(text):
        return None
    found = await ctx.search.search(ctx.session, scope=ctx.scope(), query=text, limit=1)
    if not found or found[0].hit.kind not in NAME_KINDS:
        return None
    return await resolution.resolve(ctx, text, step=CommonStep.SHOW, draft=NoDraft())


async def _person_customers(ctx: HandlerContext, name: str) -> list[Reply] | None:
    """A colleague's customers, only as far as the asker's scope reaches; None: no such person."""
    people = await staff.find_active(ctx.session, name)
    exact = [p for p in people if name in p]
    if not exact:
        return None
    userid, person = exact[0]
    lines = await tasks.my_customers(
        ctx.session, scope=ctx.scope(), owner_id=userid, now=ctx.now(), limit=21
    )
    return [
        ctx.reply(
            "customer/person_customers",
            person=person,
            truncated=len(lines) > 20,
            lines=[
                {
                    "name": line.name,
                    "next": when_text(ctx, line.next_followup_at),
                    "stage": line.stage,
                }
                for line in lines[:20]
            ],
        )
    ]


@router.command(
    "我的客户",
    "我的",
    "mine",
    "my",
    summary="我名下的客户，按下次跟进时间排序",
    usage="我的客户",
    example="我的客户",
)
async def list_my_customers(ctx: HandlerContext, _argument: str) -> list[Reply]:
    lines = await tasks.my_customers(
        ctx.session, scope=ctx.scope(), owner_id=ctx.user_id, now=ctx.now(), limit=21
    )
    shown = lines[:20]
    return [
        ctx.reply(
            "customer/mine",
            may_create=resolution.may_run(ctx, "新客户"),
            may_claim=resolution.may_run(ctx, "领取"),
            truncated=len(lines) > 20,
            lines=[
                {
                    "name": line.name,
                    "next": when_text(ctx, line.next_followup_at),
                    "stage": line.stage,
                }
                for line in shown
            ],
        )
    ]
