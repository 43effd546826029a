"""Opportunities (商机): create, list, find and move through the configured stages.

Reads return OpportunityView, whose amount is None where the actor may not see it, so a reply
built from a view cannot leak an amount. Every stage change writes a history row unique on the
message key, so a WeCom retry moves nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import audit, config_data
from crm_store.config_data import Stage
from crm_store.customers import (
    UNDO_WINDOW,
    NotAllowed,
    UndoResult,
    audit_of,
    undo_outcome,
    written_since,
)
from crm_store.dialect import insert_ignore
from crm_store.models.audit import AuditEntry
from crm_store.models.customer import Customer
from crm_store.models.sales import Opportunity, OpportunityStageHistory, OpportunityState
from crm_store.scope import Scope

_TITLE_MAX = 200
_OPPORTUNITY_FIELDS = (
    "customer_id",
    "title",
    "amount",
    "stage",
    "probability",
    "owner_id",
    "state",
    "lost_reason",
)
_STAGE_FIELDS = ("stage", "probability", "state", "lost_reason")
# Closing a deal pins its probability whatever the stage table says.
_CLOSED_PROBABILITY = {OpportunityState.WON: 100, OpportunityState.LOST: 0}


class UnknownStage(ValueError):
    """A stage name that is neither a configured stage nor one of its synonyms."""

    def __init__(self, text: str, known: list[str]) -> None:
        super().__init__(f"unknown stage {text!r}; known: {', '.join(known)}")
        self.text = text
        self.known = known


class MoveOutcome(StrEnum):
    MOVED = "moved"
    SAME_STAGE = "same_stage"
    UNKNOWN_STAGE = "unknown_stage"
    NEEDS_LOST_REASON = "needs_lost_reason"
    NOT_FOUND = "not_found"
    NOT_ALLOWED = "not_allowed"
    ALREADY_DONE = "already_done"  # this message moved it already (a WeCom retry)


@dataclass(frozen=True)
class OpportunityView:
    """An opportunity as this actor may see it: amount None where it is not theirs to see."""

    id: int
    title: str
    stage: str
    probability: int
    amount: Decimal | None
    owner_id: str
    expected_close_date: date | None
    state: str
    customer_id: int | None = None
    customer_name: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class StageMove:
    outcome: MoveOutcome
    opportunity: OpportunityView | None
    from_stage: str | None
    to_stage: str | None
    known_stages: list[str]


# Reads ----------------------------------------------------------------------------------------


def _view(row: RowMapping) -> OpportunityView:
    return OpportunityView(
        id=row["id"],
        title=row["title"],
        stage=row["stage"],
        probability=row["probability"],
        amount=row["amount"],
        owner_id=row["owner_id"],
        expected_close_date=row["expected_close_date"],
        state=row["state"],
        customer_id=row["customer_id"],
        customer_name=row["customer_name"],
        updated_at=row["updated_at"],
    )


async def _views(
    session: AsyncSession,
    scope: Scope,
    *where: ColumnElement[bool],
    order: tuple[Any, ...] = (Opportunity.id,),
    limit: int | None = None,
) -> list[OpportunityView]:
    query = (
        select(
            Opportunity.id,
            Opportunity.title,
            Opportunity.stage,
            Opportunity.probability,
            scope.amount_column(),
            Opportunity.owner_id,
            Opportunity.expected_close_date,
            Opportunity.state,
            Opportunity.customer_id,
            Customer.name.label("customer_name"),
            Opportunity.updated_at,
        )
        .join(Customer, Customer.id == Opportunity.customer_id)
        .where(scope.opportunities(), *where)
        .order_by(*order)
    )
    if limit is not None:
        query = query.limit(limit)
    return [_view(row) for row in (await session.execute(query)).mappings()]


async def get_view(
    session: AsyncSession, *, scope: Scope, opportunity_id: int
) -> OpportunityView | None:
    """One opportunity through the actor's scope; a hidden one looks like a missing one."""
    views = await _views(session, scope, Opportunity.id == opportunity_id)
    return views[0] if views else None


async def open_opportunities(
    session: AsyncSession, *, scope: Scope, customer_id: int
) -> list[OpportunityView]:
    """A customer's open deals for the card, newest first, amounts only where visible."""
    return await _views(
        session,
        scope,
        Opportunity.customer_id == customer_id,
        Opportunity.state == OpportunityState.OPEN.value,
        order=(Opportunity.created_at.desc(), Opportunity.id.desc()),
    )


async def closed_opportunities(
    session: AsyncSession, *, scope: Scope, customer_id: int, since: datetime | None = None
) -> list[OpportunityView]:
    """A customer's won and lost deals (closed since `since`), the newest first."""
    where = [
        Opportunity.customer_id == customer_id,
        Opportunity.state != OpportunityState.OPEN.value,
    ]
    if since is not None:
        where.append(Opportunity.updated_at >= since)
    return await _views(
        session, scope, *where, order=(Opportunity.updated_at.desc(), Opportunity.id.desc())
    )


async def same_title(
    session: AsyncSession, *, scope: Scope, customer_id: int, title: str
) -> OpportunityView | None:
    """An open deal of this customer with the same title (spaces and case aside), if any."""
    wanted = "".join(title.split()).lower()
    for view in await open_opportunities(session, scope=scope, customer_id=customer_id):
        if "".join(view.title.split()).lower() == wanted:
            return view
    return None


async def find_opportunities(
    session: AsyncSession, *, scope: Scope, text: str, limit: int = 5, closed: bool = False
) -> list[OpportunityView]:
    """Deals in scope whose title or customer name contains `text` (阶段 <deal> <stage>): open
    ones, or with `closed` the won and lost ones (to reopen them).

    The actor's own deals come first, then the most recently touched.
    """
    wanted = text.strip().lower()
    if not wanted:
        return []
    matches = or_(
        func.lower(Opportunity.title).contains(wanted, autoescape=True),
        func.lower(Customer.name).contains(wanted, autoescape=True),
        func.lower(Customer.name_core).contains(wanted, autoescape=True),
    )
    mine_first = (
        Opportunity.owner_id != scope.actor.userid,
        Opportunity.updated_at.desc(),
        Opportunity.id.desc(),
    )
    return await _views(
        session,
        scope,
        (Opportunity.state != OpportunityState.OPEN.value)
        if closed
        else (Opportunity.state == OpportunityState.OPEN.value),
        matches,
        order=mine_first,
        limit=limit,
    )


async def pipeline_summary(
    session: AsyncSession, *, scope: Scope
) -> list[tuple[str, int, Decimal]]:
    """Per open stage in pipeline order: how many open deals and the sum of visible amounts.

    Counts follow the list scope; amounts the actor may not see count as a deal, not as money.
    Deals at a stage no longer configured come last, so a renamed stage never hides deals.
    """
    amount = scope.amount_column()
    rows = await session.execute(
        select(
            Opportunity.stage,
            func.count(Opportunity.id),
            func.coalesce(func.sum(amount), 0),
        )
        .where(Opportunity.state == OpportunityState.OPEN.value, scope.opportunities())
        .group_by(Opportunity.stage)
    )
    totals = {stage: (int(count), _money(total)) for stage, count, total in rows}
    stages = await config_data.get_stages(session)
    ordered = [s.name for s in stages if s.outcome is OpportunityState.OPEN]
    ordered += sorted(set(totals) - set(ordered))
    summary: list[tuple[str, int, Decimal]] = []
    for name in ordered:
        count, total = totals.get(name, (0, _money(0)))
        summary.append((name, count, total))
    return summary


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


# Writes ---------------------------------------------------------------------------------------


def _first_open(stages: list[Stage]) -> Stage:
    return next((s for s in stages if s.outcome is OpportunityState.OPEN), stages[0])


def _probability(stage: Stage) -> int:
    return _CLOSED_PROBABILITY.get(stage.outcome, stage.probability)


async def create_opportunity(
    session: AsyncSession,
    *,
    scope: Scope,
    customer_id: int,
    title: str,
    amount: Decimal | None,
    source_key: str,
    now: datetime,
    stage: str | None = None,
) -> tuple[Opportunity, bool]:
    """Open a deal owned by the actor on a customer they may change (商机).

    The same source_key again returns (the first deal, False). `stage` defaults to the first
    open stage; an unknown one raises UnknownStage with the known names.
    """
    existing = await session.scalar(
        select(Opportunity).where(Opportunity.source_key == source_key)
    )
    if existing is not None:
        return existing, False
    title = title.strip()
    if not title:
        raise ValueError("an opportunity needs a title")
    if amount is not None and amount < 0:
        raise ValueError("an amount cannot be negative")
    stages = await config_data.get_stages(session)
    chosen = _first_open(stages) if stage is None else config_data.resolve_stage(stages, stage)
    if chosen is None:
        raise UnknownStage(stage or "", [s.name for s in stages])
    writable = await session.scalar(
        select(Customer.id).where(Customer.id == customer_id, scope.customer_writable())
    )
    if writable is None:
        raise NotAllowed(f"{scope.actor.userid} may not add deals to customer {customer_id}")
    values = {
        "customer_id": customer_id,
        "title": title[:_TITLE_MAX],
        "amount": None if amount is None else amount.quantize(Decimal("0.01")),
        "stage": chosen.name,
        "probability": _probability(chosen),
        "owner_id": scope.actor.userid,
        "state": chosen.outcome.value,
        "source_key": source_key,
        "created_at": now,
        "updated_at": now,
    }
    opportunity_id = await session.scalar(
        insert_ignore(session, Opportunity.__table__, ["source_key"])
        .values(values)
        .returning(Opportunity.id)
    )
    if opportunity_id is None:  # a concurrent run of the same message got there first
        raced = await session.scalar(
            select(Opportunity).where(Opportunity.source_key == source_key)
        )
        assert raced is not None
        return raced, False
    opportunity = await session.get_one(Opportunity, opportunity_id)
    # The first history row: stage durations are measured from the deal's creation.
    session.add(
        OpportunityStageHistory(
            opportunity_id=opportunity_id,
            from_stage=None,
            to_stage=chosen.name,
            by_id=scope.actor.userid,
            at=now,
            source_key=source_key,
        )
    )
    await audit.record(
        session,
        actor_id=scope.actor.userid,
        action="opportunity.create",
        entity="opportunity",
        entity_id=opportunity_id,
        before=None,
        after=audit.snapshot(opportunity, _OPPORTUNITY_FIELDS),
        source_key=source_key,
        now=now,
    )
    await session.flush()
    return opportunity, True


async def _may_change(session: AsyncSession, scope: Scope, opportunity: Opportunity) -> bool:
    """Deals whose owner the actor's level reaches, or on a customer they may write (shares)."""
    found = await session.scalar(
        select(Opportunity.id).where(
            Opportunity.id == opportunity.id, scope.owned(Opportunity.owner_id)
        )
    )
    if found is not None:
        return True
    found = await session.scalar(
        select(Customer.id).where(
            Customer.id == opportunity.customer_id, scope.customer_writable()
        )
    )
    return found is not None


async def move_stage(
    session: AsyncSession,
    *,
    scope: Scope,
    opportunity_id: int,
    stage_text: str,
    source_key: str,
    now: datetime,
    lost_reason: str | None = None,
) -> StageMove:
    """Move a deal to the stage a person names (阶段 … 签了); only MOVED writes anything.

    Won and lost stages close the deal (probability 100 / 0); lost needs a reason. A retry of
    the same message answers ALREADY_DONE with the move it made.
    """
    stages = await config_data.get_stages(session)
    known = [s.name for s in stages]
    done = await session.scalar(
        select(OpportunityStageHistory).where(OpportunityStageHistory.source_key == source_key)
    )
    if done is not None:
        view = await get_view(session, scope=scope, opportunity_id=done.opportunity_id)
        return StageMove(MoveOutcome.ALREADY_DONE, view, done.from_stage, done.to_stage, known)

    opportunity = await session.scalar(
        select(Opportunity)
        .where(Opportunity.id == opportunity_id, scope.opportunities())
        .with_for_update(of=Opportunity)
    )
    if opportunity is None:
        return StageMove(MoveOutcome.NOT_FOUND, None, None, None, known)
    view = await get_view(session, scope=scope, opportunity_id=opportunity_id)
    current = opportunity.stage
    if not await _may_change(session, scope, opportunity):
        return StageMove(MoveOutcome.NOT_ALLOWED, view, current, None, known)
    target = config_data.resolve_stage(stages, stage_text)
    if target is None:
        return StageMove(MoveOutcome.UNKNOWN_STAGE, view, current, None, known)
    if target.name == current:
        return StageMove(MoveOutcome.SAME_STAGE, view, current, target.name, known)
    reason = (lost_reason or "").strip() or None
    if target.outcome is OpportunityState.LOST and reason is None:
        return StageMove(MoveOutcome.NEEDS_LOST_REASON, view, current, target.name, known)

    history_id = await session.scalar(
        insert_ignore(session, OpportunityStageHistory.__table__, ["source_key"])
        .values(
            opportunity_id=opportunity_id,
            from_stage=current,
            to_stage=target.name,
            by_id=scope.actor.userid,
            at=now,
            source_key=source_key,
        )
        .returning(OpportunityStageHistory.id)
    )
    if history_id is None:  # a concurrent run of the same message moved it
        return StageMove(MoveOutcome.ALREADY_DONE, view, current, target.name, known)
    before = audit.snapshot(opportunity, _STAGE_FIELDS)
    opportunity.stage = target.name
    opportunity.probability = _probability(target)
    opportunity.state = target.outcome
    opportunity.lost_reason = reason if target.outcome is OpportunityState.LOST else None
    opportunity.updated_at = now
    await session.flush()
    await audit.record(
        session,
        actor_id=scope.actor.userid,
        action="opportunity.stage",
        entity="opportunity",
        entity_id=opportunity_id,
        before=before,
        after=audit.snapshot(opportunity, _STAGE_FIELDS),
        source_key=source_key,
        now=now,
    )
    moved = await get_view(session, scope=scope, opportunity_id=opportunity_id)
    return StageMove(MoveOutcome.MOVED, moved, current, target.name, known)


class DealField(StrEnum):
    """What 改 may change on a deal."""

    AMOUNT = "amount"
    EXPECTED_CLOSE = "expected_close_date"
    TITLE = "title"


async def edit_opportunity(
    session: AsyncSession,
    *,
    scope: Scope,
    opportunity_id: int,
    field: DealField,
    value: Decimal | date | str,
    source_key: str,
    now: datetime,
) -> OpportunityView:
    """Change one field of a deal the actor may change, audited; a retry changes nothing."""
    opportunity = await session.scalar(
        select(Opportunity)
        .where(Opportunity.id == opportunity_id, scope.opportunities())
        .with_for_update(of=Opportunity)
    )
    if opportunity is None or not await _may_change(session, scope, opportunity):
        raise NotAllowed(f"{scope.actor.userid} may not change opportunity {opportunity_id}")
    done = await session.scalar(
        select(AuditEntry.id).where(AuditEntry.source_key == source_key).limit(1)
    )
    if done is None:
        fields = ("title", "amount", "expected_close_date")
        before = audit.snapshot(opportunity, fields)
        if field is DealField.AMOUNT:
            if not isinstance(value, Decimal) or value < 0:
                raise ValueError("an amount is a non-negative number")
            opportunity.amount = value.quantize(Decimal("0.01"))
        elif field is DealField.EXPECTED_CLOSE:
            if not isinstance(value, date):
                raise ValueError("an expected close date is a date")
            opportunity.expected_close_date = value
        else:
            title = str(value).strip()
            if not title:
                raise ValueError("a deal needs a title")
            opportunity.title = title[:_TITLE_MAX]
        opportunity.updated_at = now
        await session.flush()
        await audit.record(
            session,
            actor_id=scope.actor.userid,
            action=f"opportunity.edit.{field.value}",
            entity="opportunity",
            entity_id=opportunity_id,
            before=before,
            after=audit.snapshot(opportunity, fields),
            source_key=source_key,
            now=now,
        )
    view = await get_view(session, scope=scope, opportunity_id=opportunity_id)
    assert view is not None  # it was read through the same scope above
    return view


# Undo (撤销) -----------------------------------------------------------------------------------


async def _undo_start(
    session: AsyncSession,
    *,
    opportunity_id: int,
    action: str,
    undo_action: str,
    write_key: str,
    source_key: str,
    actor_id: str,
    now: datetime,
    window: timedelta,
) -> tuple[AuditEntry | None, UndoResult | None]:
    """The audit row of the write to take back, or why it cannot be taken back."""
    entry = await audit_of(
        session,
        entity="opportunity",
        entity_id=opportunity_id,
        action=action,
        source_key=write_key,
    )
    if entry is None:
        return None, UndoResult.NOT_FOUND
    again = await undo_outcome(
        session,
        entity="opportunity",
        entity_id=opportunity_id,
        undo_action=undo_action,
        after_id=entry.id,
        source_key=source_key,
    )
    if again is not None:
        return None, again
    if entry.actor_id != actor_id:
        return None, UndoResult.NOT_YOURS
    if now - entry.at > window:
        return None, UndoResult.TOO_LATE
    if await written_since(
        session, entity="opportunity", entity_id=opportunity_id, after_id=entry.id
    ):
        return None, UndoResult.CHANGED_SINCE
    return entry, None


async def undo_create_opportunity(
    session: AsyncSession,
    *,
    actor_id: str,
    opportunity_id: int,
    created_key: str,
    source_key: str,
    now: datetime,
    window: timedelta = UNDO_WINDOW,
) -> UndoResult:
    """Take back a deal one just opened (商机); refused once it moved or was edited."""
    entry, refused = await _undo_start(
        session,
        opportunity_id=opportunity_id,
        action="opportunity.create",
        undo_action="opportunity.undo_create",
        write_key=created_key,
        source_key=source_key,
        actor_id=actor_id,
        now=now,
        window=window,
    )
    if refused is not None:
        return refused
    opportunity = await session.scalar(
        select(Opportunity).where(Opportunity.id == opportunity_id).with_for_update()
    )
    if opportunity is None:
        return UndoResult.NOT_FOUND
    moves = await session.scalar(
        select(func.count())
        .select_from(OpportunityStageHistory)
        .where(OpportunityStageHistory.opportunity_id == opportunity_id)
    )
    if int(moves or 0) > 1:
        return UndoResult.CHANGED_SINCE
    before = {"id": opportunity.id, **audit.snapshot(opportunity, _OPPORTUNITY_FIELDS)}
    await session.execute(
        delete(OpportunityStageHistory).where(
            OpportunityStageHistory.opportunity_id == opportunity_id
        )
    )
    await session.execute(delete(Opportunity).where(Opportunity.id == opportunity_id))
    session.expunge(opportunity)
    await audit.record(
        session,
        actor_id=actor_id,
        action="opportunity.undo_create",
        entity="opportunity",
        entity_id=opportunity_id,
        before=before,
        after=None,
        source_key=source_key,
        now=now,
    )
    return UndoResult.UNDONE


async def undo_stage_move(
    session: AsyncSession,
    *,
    actor_id: str,
    opportunity_id: int,
    move_key: str,
    source_key: str,
    now: datetime,
    window: timedelta = UNDO_WINDOW,
) -> UndoResult:
    """Put a deal back in the stage it left (阶段 taken back); refused after a later change."""
    entry, refused = await _undo_start(
        session,
        opportunity_id=opportunity_id,
        action="opportunity.stage",
        undo_action="opportunity.undo_stage",
        write_key=move_key,
        source_key=source_key,
        actor_id=actor_id,
        now=now,
        window=window,
    )
    if refused is not None:
        return refused
    assert entry is not None
    opportunity = await session.scalar(
        select(Opportunity).where(Opportunity.id == opportunity_id).with_for_update()
    )
    if opportunity is None:
        return UndoResult.NOT_FOUND
    before = audit.snapshot(opportunity, _STAGE_FIELDS)
    old = entry.before or {}
    opportunity.stage = str(old.get("stage", opportunity.stage))
    opportunity.probability = int(old.get("probability", opportunity.probability))
    opportunity.state = OpportunityState(old.get("state", opportunity.state))
    opportunity.lost_reason = old.get("lost_reason")
    opportunity.updated_at = now
    await session.execute(
        delete(OpportunityStageHistory).where(OpportunityStageHistory.source_key == move_key)
    )
    await session.flush()
    await audit.record(
        session,
        actor_id=actor_id,
        action="opportunity.undo_stage",
        entity="opportunity",
        entity_id=opportunity_id,
        before=before,
        after=audit.snapshot(opportunity, _STAGE_FIELDS),
        source_key=source_key,
        now=now,
    )
    return UndoResult.UNDONE


async def undo_edit_opportunity(
    session: AsyncSession,
    *,
    actor_id: str,
    opportunity_id: int,
    edit_key: str,
    source_key: str,
    now: datetime,
    window: timedelta = UNDO_WINDOW,
) -> UndoResult:
    """Put back what 改 changed on a deal (amount, title, expected close date)."""
    entry, refused = await _undo_start(
        session,
        opportunity_id=opportunity_id,
        action="opportunity.edit.%",
        undo_action="opportunity.undo_edit",
        write_key=edit_key,
        source_key=source_key,
        actor_id=actor_id,
        now=now,
        window=window,
    )
    if refused is not None:
        return refused
    assert entry is not None
    opportunity = await session.scalar(
        select(Opportunity).where(Opportunity.id == opportunity_id).with_for_update()
    )
    if opportunity is None:
        return UndoResult.NOT_FOUND
    fields = ("title", "amount", "expected_close_date")
    before = audit.snapshot(opportunity, fields)
    old = entry.before or {}
    opportunity.title = str(old.get("title", opportunity.title))
    amount = old.get("amount")
    opportunity.amount = None if amount is None else Decimal(str(amount))
    closing = old.get("expected_close_date")
    opportunity.expected_close_date = None if closing is None else date.fromisoformat(closing)
    opportunity.updated_at = now
    await session.flush()
    await audit.record(
        session,
        actor_id=actor_id,
        action="opportunity.undo_edit",
        entity="opportunity",
        entity_id=opportunity_id,
        before=before,
        after=audit.snapshot(opportunity, fields),
        source_key=source_key,
        now=now,
    )
    return UndoResult.UNDONE
