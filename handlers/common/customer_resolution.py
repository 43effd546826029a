"""Turn what a rep typed into one customer: pick it, list the candidates, or say none matched.

A command that needs a customer names a purpose; when the rep has to choose, the purpose and
the rest of the command wait in the PENDING slot and run once the rep answers "2" or taps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from crm_store import conversation
from crm_store.customers import get_visible
from crm_store.models import Customer
from crm_store.names import normalize_company_name
from crm_store.search import Found, learned_key
from handlers.kit import state
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Card, CardButton, Reply

Continuation = Callable[[HandlerContext, Customer, dict[str, Any]], Awaitable[list[Reply]]]
OptionContinuation = Callable[[HandlerContext, int, dict[str, Any]], Awaitable[list[Reply]]]
_CONTINUATIONS: dict[str, Continuation] = {}
_OPTION_CONTINUATIONS: dict[str, OptionContinuation] = {}
STRONG_KINDS = frozenset({"exact", "alias", "learned"})
MAX_CHOICES = 5


def continues(purpose: str) -> Callable[[Continuation], Continuation]:
    """Register what happens once a customer is chosen for `purpose`."""

    def register(fn: Continuation) -> Continuation:
        _CONTINUATIONS[purpose] = fn
        return fn

    return register


def continues_with_option(purpose: str) -> Callable[[OptionContinuation], OptionContinuation]:
    """Register what happens once a non-customer option (a deal, a task) is chosen."""

    def register(fn: OptionContinuation) -> OptionContinuation:
        _OPTION_CONTINUATIONS[purpose] = fn
        return fn

    return register


async def offer_options(
    ctx: HandlerContext,
    *,
    purpose: str,
    payload: dict[str, Any],
    title: str,
    options: list[tuple[int, str]],
) -> Reply:
    """A numbered choice among things that are not customers (e.g. two deals of one customer)."""
    await state.remember(
        ctx,
        state.PENDING,
        {
            "entity": "option",
            "purpose": purpose,
            "payload": payload,
            "query": "",
            "options": [option_id for option_id, _ in options],
        },
    )
    card = Card(
        title=title,
        description="回复序号或点按钮选择",
        task_id=task_id(ctx, purpose),
        buttons=tuple(
            CardButton(text=f"{i}. {label}"[:10], key=f"opt:{option_id}")
            for i, (option_id, label) in enumerate(options, 1)
        ),
        lines=tuple((str(i), label) for i, (_, label) in enumerate(options, 1)),
    )
    return ctx.card(card)


def task_id(ctx: HandlerContext, kind: str) -> str:
    """A card's task_id: unique per message and card kind, stable under WeCom retries."""
    digest = hashlib.sha1(f"{ctx.message.key}:{kind}".encode()).hexdigest()[:16]
    return f"{kind}-{digest}"


def _is_clear(found: list[Found], purpose: str) -> bool:
    """One clear winner; a write never goes to a customer found only by a fuzzy guess."""
    if purpose != "show" and found[0].hit.kind == "fuzzy":
        return False
    if len(found) == 1:
        return True
    first, second = found[0].hit, found[1].hit
    return first.kind in STRONG_KINDS and second.kind not in STRONG_KINDS


async def resolve(
    ctx: HandlerContext, query: str, *, purpose: str, payload: dict[str, Any]
) -> list[Reply]:
    """Find the customer for `query` and run the purpose, or ask the rep to choose."""
    assert ctx.search is not None
    found = await ctx.search.search(ctx.session, scope=ctx.scope(), query=query, limit=MAX_CHOICES)
    if not found:
        near = await ctx.search.search(
            ctx.session, scope=ctx.scope(), query=query, limit=3, suggest=True
        )
        return [
            ctx.reply(
                "customer/not_found", query=query, suggestions=[f.customer.name for f in near]
            )
        ]
    if _is_clear(found, purpose):
        return await run(ctx, found[0].customer, purpose, payload)
    await state.remember(
        ctx,
        state.PENDING,
        {
            "purpose": purpose,
            "payload": payload,
            "query": query,
            "options": [f.customer.id for f in found],
        },
    )
    return [choice_card(ctx, query, found)]


def choice_card(ctx: HandlerContext, query: str, found: list[Found]) -> Reply:
    lines = tuple(
        (str(i), f"{f.customer.name}｜{detail(f.customer)}") for i, f in enumerate(found, 1)
    )
    card = Card(
        title=f"“{query}”找到 {len(found)} 个客户",
        description="回复序号或点按钮选择",
        task_id=task_id(ctx, "pick"),
        buttons=tuple(
            CardButton(text=f"{i}. {f.customer.name}"[:10], key=f"pick:{f.customer.id}")
            for i, f in enumerate(found, 1)
        ),
        lines=lines,
    )
    return ctx.card(card)


def detail(customer: Customer) -> str:
    """The one thing that tells two similar names apart: city, industry, or the pool."""
    parts = [p for p in (customer.city, customer.industry) if p]
    if customer.in_pool:
        parts.append("公海")
    return "·".join(parts) or f"#{customer.id}"


async def run(
    ctx: HandlerContext, customer: Customer, purpose: str, payload: dict[str, Any]
) -> list[Reply]:
    await state.remember(ctx, state.LAST_CUSTOMER, {"id": customer.id})
    return await _CONTINUATIONS[purpose](ctx, customer, payload)


async def pick(
    ctx: HandlerContext,
    *,
    number: int | None = None,
    customer_id: int | None = None,
    option_id: int | None = None,
) -> list[Reply] | None:
    """Answer the pending choice by number or by a tapped id; None if nothing waits for it."""
    pending = await state.recall(ctx, state.PENDING)
    if pending is None:
        return None
    options: list[int] = list(pending["options"])
    is_option = pending.get("entity") == "option"
    if number is not None:
        if not 1 <= number <= len(options):
            return [ctx.reply("customer/bad_choice", count=len(options))]
        chosen: int | None = options[number - 1]
    else:
        chosen = option_id if is_option else customer_id
    if chosen is None or chosen not in options:
        return None
    await state.forget(ctx, state.PENDING)
    if is_option:
        purpose = str(pending["purpose"])
        return await _OPTION_CONTINUATIONS[purpose](ctx, chosen, dict(pending["payload"]))
    customer = await get_visible(ctx.session, ctx.scope(), chosen)
    if customer is None:
        return [ctx.reply("customer/gone")]
    query = str(pending.get("query") or "")
    if query and not _names_it(customer, query):
        # Words that were not a name: the same words find this customer first next time.
        await conversation.remember_pick(
            ctx.session,
            user_id=ctx.user_id,
            query=learned_key(query),
            customer_id=chosen,
            now=ctx.now(),
        )
    return await run(ctx, customer, str(pending["purpose"]), dict(pending["payload"]))


def _names_it(customer: Customer, query: str) -> bool:
    core = normalize_company_name(query)
    names = {normalize_company_name(n) for n in (customer.name, *(customer.aliases or ()))}
    return core in names
