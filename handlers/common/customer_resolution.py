"""Turn what a person typed into one customer: pick it, list the candidates, or say none matched.

A command that needs a customer names a step (a member of its router's StrEnum) and a typed
draft; when the person has to choose, both wait in the PENDING slot and run once they answer
"2" or tap. Any audience can use it: sales today, service tickets next.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Literal, TypeVar

from crm_store import conversation
from crm_store.customers import get_visible, owner_names
from crm_store.models import Customer
from crm_store.names import normalize_company_name
from crm_store.search import Found, learned_key
from handlers.kit.cards import CardKey
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Card, CardButton, Reply
from handlers.kit.routing import Router
from handlers.kit.state import StaleState, from_json, to_json

D = TypeVar("D")
STRONG_KINDS = frozenset({"exact", "alias", "learned", "phone"})  # a contact name may repeat
MAX_CHOICES = 5
_NUMBER = re.compile(r"(?:第)?([1-9])(?:个)?")

router = Router("choice", audience="common", title="通用")


@dataclass(frozen=True)
class NoDraft:
    """The draft of a step that needs nothing but the customer (show, claim)."""


@dataclass(frozen=True)
class PendingChoice:
    purpose: str
    payload: dict[str, Any]
    query: str
    options: tuple[int, ...]
    entity: Literal["customer", "option"] = "customer"


@dataclass(frozen=True)
class LastCustomer:
    id: int


@dataclass(frozen=True)
class Suggested:
    """The bot's own "您要找的是不是：…？": 是 / 对 / a number takes it up."""

    purpose: str
    payload: dict[str, Any]
    options: tuple[int, ...]


PENDING = router.slot("pending", PendingChoice, ttl=timedelta(minutes=10))
SUGGESTED = router.slot("suggested", Suggested, ttl=timedelta(minutes=10))
YES = frozenset({"是", "是的", "对", "对的", "嗯", "好", "好的", "就是", "没错", "yes", "y", "ok"})
LAST_CUSTOMER = router.slot("last_customer", LastCustomer, ttl=timedelta(minutes=30))


@dataclass(frozen=True)
class PickCustomer(CardKey, prefix="pick", legacy="pick:"):
    customer_id: int


@dataclass(frozen=True)
class PickOption(CardKey, prefix="opt", legacy="opt:"):
    option_id: int


class CommonStep(StrEnum):
    SHOW = "show"  # what a tap on a customer does when no command waits for it


@dataclass(frozen=True)
class _Step:
    run: Callable[[HandlerContext, Any, Any], Awaitable[list[Reply]]]
    draft: type[Any]
    on_option: bool


_STEPS: dict[str, _Step] = {}


def continues(
    step: StrEnum, draft: type[D]
) -> Callable[
    [Callable[[HandlerContext, Customer, D], Awaitable[list[Reply]]]],
    Callable[[HandlerContext, Customer, D], Awaitable[list[Reply]]],
]:
    """Register what happens once a customer is chosen for `step`."""

    def register(
        fn: Callable[[HandlerContext, Customer, D], Awaitable[list[Reply]]],
    ) -> Callable[[HandlerContext, Customer, D], Awaitable[list[Reply]]]:
        _register(step, _Step(fn, draft, on_option=False))
        return fn

    return register


def continues_with_option(
    step: StrEnum, draft: type[D]
) -> Callable[
    [Callable[[HandlerContext, int, D], Awaitable[list[Reply]]]],
    Callable[[HandlerContext, int, D], Awaitable[list[Reply]]],
]:
    """Register what happens once a non-customer option (a deal, a task) is chosen."""

    def register(
        fn: Callable[[HandlerContext, int, D], Awaitable[list[Reply]]],
    ) -> Callable[[HandlerContext, int, D], Awaitable[list[Reply]]]:
        _register(step, _Step(fn, draft, on_option=True))
        return fn

    return register


def _register(step: StrEnum, entry: _Step) -> None:
    if step.value in _STEPS:
        raise ValueError(f"two continuations for step {step.value!r}")
    _STEPS[step.value] = entry


def task_id(ctx: HandlerContext, kind: str) -> str:
    """A card's task_id: unique per message and card kind, stable under WeCom retries."""
    digest = hashlib.sha1(f"{ctx.message.key}:{kind}".encode()).hexdigest()[:16]
    return f"{kind}-{digest}"


async def offer_options(
    ctx: HandlerContext,
    *,
    step: StrEnum,
    draft: Any,
    title: str,
    options: list[tuple[int, str]],
) -> Reply:
    """A numbered choice among things that are not customers (e.g. two deals of one customer)."""
    await ctx.state.put(
        PENDING,
        PendingChoice(
            purpose=step.value,
            payload=to_json(draft),
            query="",
            options=tuple(option_id for option_id, _ in options),
            entity="option",
        ),
    )
    card = Card(
        title=title,
        description=ctx.render("customer/choose_hint"),
        task_id=task_id(ctx, step.value),
        buttons=tuple(
            CardButton(text=f"{i}. {label}"[:10], key=PickOption(option_id).pack())
            for i, (option_id, label) in enumerate(options, 1)
        ),
        lines=tuple((str(i), label) for i, (_, label) in enumerate(options, 1)),
    )
    return ctx.card(card)


def _is_clear(found: list[Found], step: StrEnum) -> bool:
    """One clear winner; a write never goes to a customer found only by a fuzzy guess."""
    if step is not CommonStep.SHOW and found[0].hit.kind == "fuzzy":
        return False
    if len(found) == 1:
        return True
    first, second = found[0].hit, found[1].hit
    return first.kind in STRONG_KINDS and second.kind not in STRONG_KINDS


async def resolve(ctx: HandlerContext, query: str, *, step: StrEnum, draft: Any) -> list[Reply]:
    """Find the customer for `query` and run the step, or ask the person to choose."""
    found = await ctx.search.search(ctx.session, scope=ctx.scope(), query=query, limit=MAX_CHOICES)
    if not found:
        near = await ctx.search.search(
            ctx.session, scope=ctx.scope(), query=query, limit=3, suggest=True
        )
        if near:
            await ctx.state.put(
                SUGGESTED,
                Suggested(step.value, to_json(draft), tuple(f.customer.id for f in near)),
            )
        return [
            ctx.reply(
                "customer/not_found",
                query=query,
                suggestions=[f.customer.name for f in near],
                may_create=may_run(ctx, "新客户"),
            )
        ]
    if _is_clear(found, step):
        return await run(ctx, found[0].customer, step.value, to_json(draft))
    await ctx.state.put(
        PENDING,
        PendingChoice(
            purpose=step.value,
            payload=to_json(draft),
            query=query,
            options=tuple(f.customer.id for f in found),
        ),
    )
    return [await choice_card(ctx, query, found)]


def may_run(ctx: HandlerContext, word: str) -> bool:
    """Whether a hint may suggest `word`: only commands this reader may run."""
    command = ctx.catalogue.find_command(word)
    return command is not None and command.allows(ctx.role)


async def choice_card(ctx: HandlerContext, query: str, found: list[Found]) -> Reply:
    owners = await owner_names(ctx.session, [f.customer.owner_id for f in found])
    lines = tuple(
        (str(i), f"{f.customer.name}｜{detail(ctx, f.customer, owners)}")
        for i, f in enumerate(found, 1)
    )
    card = Card(
        title=ctx.render("customer/choice_title", query=query, count=len(found)),
        description=ctx.render("customer/choose_hint"),
        task_id=task_id(ctx, "pick"),
        buttons=tuple(
            CardButton(text=f"{i}. {f.customer.name}"[:10], key=PickCustomer(f.customer.id).pack())
            for i, f in enumerate(found, 1)
        ),
        lines=lines,
    )
    return ctx.card(card)


def detail(ctx: HandlerContext, customer: Customer, owners: dict[str, str]) -> str:
    """What tells two similar names apart: city, industry, the pool; else the owner or the
    day it was created (never an internal id)."""
    parts = [p for p in (customer.city, customer.industry) if p]
    if customer.in_pool:
        parts.append("公海")
    if parts:
        return "·".join(parts)
    if customer.owner_id and customer.owner_id in owners:
        return ctx.render("customer/owned_by", owner=owners[customer.owner_id])
    created = customer.created_at.astimezone(ctx.tz)
    return ctx.render(
        "customer/created_on", year=created.year, month=created.month, day=created.day
    )


async def run(
    ctx: HandlerContext, customer: Customer, step: str, payload: dict[str, Any]
) -> list[Reply]:
    """Continue `step` on the chosen customer with its stored draft."""
    await ctx.state.put(LAST_CUSTOMER, LastCustomer(customer.id))
    entry = _STEPS.get(step)
    if entry is None or entry.on_option:
        return [ctx.reply("errors/start_again")]
    return await entry.run(ctx, customer, _draft(entry, payload))


def _draft(entry: _Step, payload: dict[str, Any]) -> Any:
    try:
        return from_json(entry.draft, payload)
    except (TypeError, ValueError) as exc:
        raise StaleState(PENDING.name) from exc


async def pick(
    ctx: HandlerContext,
    *,
    number: int | None = None,
    customer_id: int | None = None,
    option_id: int | None = None,
) -> list[Reply] | None:
    """Answer the pending choice by number or by a tapped id; None if nothing waits for it."""
    pending = await ctx.state.get(PENDING)
    if pending is None:
        return None
    options = list(pending.options)
    is_option = pending.entity == "option"
    if number is not None:
        if not 1 <= number <= len(options):
            return [ctx.reply("customer/bad_choice", count=len(options))]
        chosen: int | None = options[number - 1]
    else:
        chosen = option_id if is_option else customer_id
    if chosen is None or chosen not in options:
        return None
    await ctx.state.clear(PENDING)
    entry = _STEPS.get(pending.purpose)
    if entry is None or entry.on_option != is_option:
        return [ctx.reply("errors/start_again")]
    if is_option:
        return await entry.run(ctx, chosen, _draft(entry, pending.payload))
    customer = await get_visible(ctx.session, ctx.scope(), chosen)
    if customer is None:
        return [ctx.reply("customer/gone")]
    if pending.query and not _names_it(customer, pending.query):
        # Words that were not a name: the same words find this customer first next time.
        await conversation.remember_pick(
            ctx.session,
            user_id=ctx.user_id,
            query=learned_key(pending.query),
            customer_id=chosen,
            now=ctx.now(),
        )
    return await run(ctx, customer, pending.purpose, pending.payload)


def _names_it(customer: Customer, query: str) -> bool:
    core = normalize_company_name(query)
    names = {normalize_company_name(n) for n in (customer.name, *(customer.aliases or ()))}
    return core in names


async def last_customer(ctx: HandlerContext) -> Customer | None:
    """The customer this person looked at last, if they may still see it."""
    last = await ctx.state.get(LAST_CUSTOMER)
    if last is None:
        return None
    return await get_visible(ctx.session, ctx.scope(), last.id)


@router.answers_to(PENDING)
async def answer_choice(
    ctx: HandlerContext, text: str, _pending: PendingChoice
) -> list[Reply] | None:
    """A bare "2" (or "第2个") answers the list sent just before it."""
    match = _NUMBER.fullmatch(text.strip())
    if match is None:
        return None
    return await pick(ctx, number=int(match.group(1)))


@router.answers_to(SUGGESTED)
async def answer_suggestion(
    ctx: HandlerContext, text: str, suggested: Suggested
) -> list[Reply] | None:
    """是 / 对 takes the one suggestion; a number picks among several."""
    said = text.strip().rstrip("。.!！").lower()
    options = list(suggested.options)
    chosen: int | None = None
    if said in YES and len(options) == 1:
        chosen = options[0]
    else:
        match = _NUMBER.fullmatch(said)
        if match is not None and 1 <= int(match.group(1)) <= len(options):
            chosen = options[int(match.group(1)) - 1]
    if chosen is None:
        return None
    await ctx.state.clear(SUGGESTED)
    customer = await get_visible(ctx.session, ctx.scope(), chosen)
    if customer is None:
        return [ctx.reply("customer/gone")]
    return await run(ctx, customer, suggested.purpose, suggested.payload)


@router.card(PickCustomer)
async def tap_customer(ctx: HandlerContext, key: PickCustomer) -> list[Reply]:
    """A tap on a candidate: continue the waiting command, or just show that customer."""
    picked = await pick(ctx, customer_id=key.customer_id)
    if picked is not None:
        return picked
    customer = await get_visible(ctx.session, ctx.scope(), key.customer_id)
    if customer is None:
        return [ctx.reply("customer/gone")]
    return await run(ctx, customer, CommonStep.SHOW.value, {})


@router.card(PickOption)
async def tap_option(ctx: HandlerContext, key: PickOption) -> list[Reply]:
    return await pick(ctx, option_id=key.option_id) or [ctx.reply("sales/choice_expired")]
