"""Tickets: opened from chat, assigned by a rule, worked through allowed transitions to closed.

Every write runs under the actor's scope (`scope.tickets()`: a rep never touches a ticket they
may not see), leaves a ticket event and an audit row carrying the message key, and is a no-op
when that message already made it (a WeCom retry or a re-run after a lost lease).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, nulls_last, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import audit, media, sla, tasks
from crm_store.models.customer import Customer
from crm_store.models.org import Department, Role, Staff, StaffDepartment
from crm_store.models.service import (
    ACTIVE_STATUSES,
    Priority,
    SlaTarget,
    Ticket,
    TicketEvent,
    TicketSla,
    TicketStatus,
)
from crm_store.models.settings import CrmSetting
from crm_store.scope import Scope
from crm_store.ticket_kpis import ServiceKpis as ServiceKpis
from crm_store.ticket_kpis import service_kpis as service_kpis

KEY_SERVICE_RULES = "service_rules"
_ACTIVE = tuple(s.value for s in ACTIVE_STATUSES)
_AUDITED = ("status", "assignee_id", "priority", "category", "merged_into_id", "satisfaction")
_KEY_MAX = 128


class Action(StrEnum):
    TAKE = "take"
    TRANSFER = "transfer"
    NOTE = "note"
    REPLY = "reply"
    WAIT = "wait"
    RESUME = "resume"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    PRIORITY = "priority"
    MERGE = "merge"
    RATE = "rate"


_OPEN, _WORK, _WAIT = TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.WAITING
_DONE, _CLOSED = TicketStatus.RESOLVED, TicketStatus.CLOSED
# The transition table: from which statuses each command may run (anything else is refused).
ALLOWED: dict[Action, frozenset[TicketStatus]] = {
    Action.TAKE: frozenset({_OPEN, _WORK, _WAIT}),
    Action.TRANSFER: frozenset({_OPEN, _WORK, _WAIT}),
    Action.NOTE: frozenset({_OPEN, _WORK, _WAIT, _DONE, _CLOSED}),
    Action.REPLY: frozenset({_OPEN, _WORK, _WAIT}),
    Action.WAIT: frozenset({_OPEN, _WORK}),
    Action.RESUME: frozenset({_WAIT}),
    Action.RESOLVE: frozenset({_OPEN, _WORK, _WAIT}),
    Action.CLOSE: frozenset({_DONE}),
    Action.REOPEN: frozenset({_DONE, _CLOSED}),
    Action.PRIORITY: frozenset({_OPEN, _WORK, _WAIT}),
    Action.MERGE: frozenset({_OPEN, _WORK, _WAIT}),
    Action.RATE: frozenset({_DONE, _CLOSED}),
}


class Refused(Exception):
    """The command does not apply; nothing was written. `reason` picks the explanation."""

    def __init__(self, reason: str, *, status: str | None = None, number: str = "") -> None:
        super().__init__(reason)
        self.reason = reason  # not_found | status | already_yours | same_person | no_person | ...
        self.status = status
        self.number = number


# Service rules: assignment and the loop back to sales ----------------------------------------


@dataclass(frozen=True)
class ServiceRules:
    """How a new ticket is assigned, and who gets the call-back task when it is resolved."""

    assignment: Literal["opener", "round_robin", "queue"] = "round_robin"
    department_id: int | None = None  # the service department (round robin, breach leader)
    cap: int | None = 20  # open tickets an agent may hold before the round robin skips them
    queue_owner: str | None = None  # for "queue": everything goes to this person
    callback_to: Literal["owner", "agent"] = "owner"


async def get_rules(session: AsyncSession) -> ServiceRules:
    row = await session.get(CrmSetting, KEY_SERVICE_RULES)
    if row is None:
        return ServiceRules()
    data: dict[str, Any] = row.value
    return ServiceRules(
        assignment=data.get("assignment", "round_robin"),
        department_id=data.get("department_id"),
        cap=data.get("cap"),
        queue_owner=data.get("queue_owner"),
        callback_to=data.get("callback_to", "owner"),
    )


async def set_rules(session: AsyncSession, *, rules: ServiceRules, by: str, now: datetime) -> None:
    """`wecrm config assignment ...`: validated, stored, audited."""
    if rules.assignment not in ("opener", "round_robin", "queue"):
        raise ValueError(f"unknown assignment rule {rules.assignment!r}")
    if rules.assignment == "queue" and not rules.queue_owner:
        raise ValueError("a queue needs its owner")
    if rules.cap is not None and rules.cap <= 0:
        raise ValueError("the cap must be positive")
    if rules.callback_to not in ("owner", "agent"):
        raise ValueError("the call-back goes to the owner or the agent")
    if rules.queue_owner and await session.get(Staff, rules.queue_owner) is None:
        raise ValueError(f"no such person {rules.queue_owner!r}")
    if (
        rules.department_id is not None
        and await session.get(Department, rules.department_id) is None
    ):
        raise ValueError(f"no such department {rules.department_id}")
    value = {
        "assignment": rules.assignment,
        "department_id": rules.department_id,
        "cap": rules.cap,
        "queue_owner": rules.queue_owner,
        "callback_to": rules.callback_to,
    }
    row = await session.get(CrmSetting, KEY_SERVICE_RULES)
    before = None if row is None else {"value": row.value}
    if row is None:
        session.add(CrmSetting(key=KEY_SERVICE_RULES, value=value, updated_at=now, updated_by=by))
    else:
        row.value, row.updated_at, row.updated_by = value, now, by
    await audit.record(
        session,
        actor_id=by,
        action="settings.set",
        entity="crm_settings",
        entity_id=KEY_SERVICE_RULES,
        before=before,
        after={"value": value},
        source_key=None,
        now=now,
    )


async def service_agents(session: AsyncSession, rules: ServiceRules) -> list[str]:
    """Active service staff (of the service department, when one is configured), in order."""
    query = select(Staff.userid).where(Staff.active.is_(True), Staff.role == Role.SERVICE.value)
    if rules.department_id is not None:
        query = query.where(
            Staff.userid.in_(
                select(StaffDepartment.userid).where(
                    StaffDepartment.department_id == rules.department_id
                )
            )
        )
    return list(await session.scalars(query.order_by(Staff.userid)))


async def open_counts(session: AsyncSession, userids: list[str]) -> dict[str, int]:
    rows = await session.execute(
        select(Ticket.assignee_id, func.count())
        .where(Ticket.assignee_id.in_(userids), Ticket.status.in_(_ACTIVE))
        .group_by(Ticket.assignee_id)
    )
    return {userid: int(n) for userid, n in rows.all() if userid}


async def choose_assignee(
    session: AsyncSession, *, rules: ServiceRules, opener: str
) -> str | None:
    """The rule's pick; None leaves the ticket in the queue (everyone at their cap)."""
    if rules.assignment == "opener":
        return opener
    if rules.assignment == "queue":
        return rules.queue_owner
    agents = await service_agents(session, rules)
    if not agents:
        return opener
    counts = await open_counts(session, agents)
    last = await session.scalar(
        select(Ticket.auto_assignee_id)
        .where(Ticket.auto_assignee_id.in_(agents))
        .order_by(Ticket.id.desc())
        .limit(1)
    )
    start = agents.index(last) + 1 if last in agents else 0
    for step in range(len(agents)):
        candidate = agents[(start + step) % len(agents)]
        if rules.cap is None or counts.get(candidate, 0) < rules.cap:
            return candidate
    return None


# Opening ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    ticket: Ticket
    created: bool  # False: this message opened it before, nothing was written now


async def by_source(session: AsyncSession, source_key: str) -> Ticket | None:
    return await session.scalar(select(Ticket).where(Ticket.source_key == source_key))


async def open_ticket(
    session: AsyncSession,
    *,
    scope: Scope,
    customer: Customer,
    content: str,
    priority: Priority,
    category: str,
    attachments: list[dict[str, Any]],
    source_key: str,
    now: datetime,
    tz: ZoneInfo,
) -> Opened:
    """A new ticket with its SLA clocks running, its assignee chosen by the rule and its media
    queued for fetching."""
    existing = await by_source(session, source_key)
    if existing is not None:
        return Opened(existing, created=False)
    opener = scope.actor.userid
    rules = await get_rules(session)
    assignee = await choose_assignee(session, rules=rules, opener=opener)
    ticket = Ticket(
        number=f"~{uuid.uuid4().hex[:30]}",
        customer_id=customer.id,
        opened_by=opener,
        assignee_id=assignee,
        auto_assignee_id=assignee if rules.assignment == "round_robin" else None,
        priority=priority.value,
        category=category,
        status=TicketStatus.OPEN.value,
        content=content,
        attachments=attachments,
        source_key=source_key[:_KEY_MAX],
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    await session.flush()
    ticket.number = str(ticket.id)
    policy = await sla.get_policy(session, tz=tz)
    clocks: dict[str, TicketSla] = {}
    sla.start(clocks, ticket, SlaTarget.FIRST_RESPONSE.value, policy, now)
    sla.start(clocks, ticket, SlaTarget.RESOLUTION.value, policy, now)
    budget, business = policy.budget(ticket.priority, SlaTarget.NEXT_RESPONSE.value)
    clocks[SlaTarget.NEXT_RESPONSE.value] = TicketSla(
        ticket_id=ticket.id,
        target=SlaTarget.NEXT_RESPONSE.value,
        state="off",
        budget_seconds=budget,
        business_hours=business,
        used_seconds=0,
        breached=False,
    )
    session.add_all(clocks.values())
    ticket.sla_due_at = sla.earliest_due(clocks.values())
    media.enqueue(session, ticket=ticket, attachments=attachments, now=now)
    await _log(session, ticket, "opened", opener, content, source_key, now, before=None)
    return Opened(ticket, created=True)


# Reading ------------------------------------------------------------------------------------


async def get_visible(session: AsyncSession, scope: Scope, ticket_id: int) -> Ticket | None:
    """The ticket only if `scope` may see it: to anyone else it does not exist."""
    return await session.scalar(select(Ticket).where(Ticket.id == ticket_id, scope.tickets()))


def _breached_first(now: datetime) -> tuple[Any, ...]:
    breached = case((Ticket.sla_due_at <= now, 0), else_=1)
    return (breached, nulls_last(Ticket.sla_due_at.asc()), Ticket.id)


async def assigned_open(
    session: AsyncSession, *, scope: Scope, assignee_id: str, now: datetime, limit: int
) -> list[Ticket]:
    """我的工单: open tickets by SLA due time, breached first."""
    query = (
        select(Ticket)
        .where(Ticket.assignee_id == assignee_id, Ticket.status.in_(_ACTIVE), scope.tickets())
        .order_by(*_breached_first(now))
        .limit(limit)
    )
    return list(await session.scalars(query))


async def of_customer(
    session: AsyncSession, *, scope: Scope, customer_id: int, now: datetime, limit: int
) -> list[Ticket]:
    """A customer's tickets: open ones first (breached first), then the most recent others."""
    is_open = case((Ticket.status.in_(_ACTIVE), 0), else_=1)
    query = (
        select(Ticket)
        .where(Ticket.customer_id == customer_id, scope.tickets())
        .order_by(is_open, *_breached_first(now)[:1], Ticket.created_at.desc(), Ticket.id.desc())
        .limit(limit)
    )
    return list(await session.scalars(query))


async def events_of(session: AsyncSession, ticket_id: int) -> list[TicketEvent]:
    return list(
        await session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket_id)
            .order_by(TicketEvent.at, TicketEvent.id)
        )
    )


# Working it ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """What a command did: the ticket now, its status before, and whether anything was written."""

    ticket: Ticket
    before_status: str
    before_assignee: str | None
    written: bool


async def _log(
    session: AsyncSession,
    ticket: Ticket,
    kind: str,
    actor_id: str,
    note: str | None,
    source_key: str,
    now: datetime,
    *,
    before: dict[str, Any] | None,
) -> None:
    """The ticket event and the audit row of one write, both keyed by the message."""
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            kind=kind,
            actor_id=actor_id,
            note=note,
            source_key=source_key[:_KEY_MAX],
            at=now,
        )
    )
    await audit.record(
        session,
        actor_id=actor_id,
        action=f"ticket.{kind}",
        entity="ticket",
        entity_id=ticket.id,
        before=before,
        after={**audit.snapshot(ticket, _AUDITED), **({"note": note} if note else {})},
        source_key=source_key[:_KEY_MAX],
        now=now,
    )


async def _already(session: AsyncSession, ticket_id: int, kind: str, source_key: str) -> bool:
    found = await session.scalar(
        select(TicketEvent.id)
        .where(
            TicketEvent.ticket_id == ticket_id,
            TicketEvent.kind == kind,
            TicketEvent.source_key == source_key[:_KEY_MAX],
        )
        .limit(1)
    )
    return found is not None


async def _load(session: AsyncSession, scope: Scope, ticket_id: int, action: Action) -> Ticket:
    ticket = await get_visible(session, scope, ticket_id)
    if ticket is None:
        raise Refused("not_found", number=str(ticket_id))
    if TicketStatus(ticket.status) not in ALLOWED[action]:
        raise Refused("status", status=ticket.status, number=ticket.number)
    return ticket


class _Work:
    """One command on one ticket: load it under scope, check the table, write, log."""

    def __init__(
        self,
        session: AsyncSession,
        scope: Scope,
        *,
        source_key: str,
        now: datetime,
        tz: ZoneInfo,
    ) -> None:
        self.session, self.scope, self.key, self.now, self.tz = session, scope, source_key, now, tz
        self.actor = scope.actor.userid

    async def run(
        self, ticket_id: int, action: Action, kind: str, note: str | None, apply: Any
    ) -> Change:
        ticket = await _load(self.session, self.scope, ticket_id, action)
        before = audit.snapshot(ticket, _AUDITED)
        status, assignee = ticket.status, ticket.assignee_id
        if await _already(self.session, ticket.id, kind, self.key):
            return Change(ticket, status, assignee, written=False)
        policy = await sla.get_policy(self.session, tz=self.tz)
        clocks = await sla.clocks_of(self.session, ticket.id)
        await apply(ticket, clocks, policy)
        ticket.sla_due_at = sla.earliest_due(clocks.values())
        ticket.updated_at = self.now
        await _log(self.session, ticket, kind, self.actor, note, self.key, self.now, before=before)
        return Change(ticket, status, assignee, written=True)


def _work(
    session: AsyncSession, scope: Scope, source_key: str, now: datetime, tz: ZoneInfo
) -> _Work:
    return _Work(session, scope, source_key=source_key, now=now, tz=tz)


async def take(
    session: AsyncSession,
    *,
    scope: Scope,
    ticket_id: int,
    source_key: str,
    now: datetime,
    tz: ZoneInfo,
) -> Change:
    """接单: the actor works it now."""
    me = scope.actor.userid

    async def apply(t: Ticket, _c: dict[str, TicketSla], _p: sla.SlaPolicy) -> None:
        if t.assignee_id == me and t.status != TicketStatus.OPEN.value:
            raise Refused("already_yours", status=t.status, number=t.number)
        t.assignee_id = me
        if t.status == TicketStatus.OPEN.value:
            t.status = TicketStatus.IN_PROGRESS

    return await _work(session, scope, source_key, now, tz).run(
        ticket_id, Action.TAKE, "taken", None, apply
    )


async def transfer(
    session: AsyncSession,
    *,
    scope: Scope,
    ticket_id: int,
    to_userid: str,
    source_key: str,
    now: datetime,
    tz: ZoneInfo,
) -> Change:
    """转: another active person works it (they are told by the caller)."""
    person = await session.get(Staff, to_userid)
    if person is None or not person.active:
        raise Refused("no_person", number=str(ticket_id))

    async def apply(t: Ticket, _c: dict[str, TicketSla], _p: sla.SlaPolicy) -> None:
        if t.assignee_id == to_userid:
            raise Refused("same_person", status=t.status, number=t.number)
        t.assignee_id = to_userid

    return await _work(session, scope, source_key, now, tz).run(
        ticket_id, Action.TRANSFER, "transferred", f"→ {person.name}", apply
    )


async def note(
    session: AsyncSession,
    *,
    scope: Scope,
    ticket_id: int,
    text: str,
    source_key: str,
    now: datetime,
    tz: ZoneInfo,
) -> Change:
    """备注: an internal note; the customer never sees it and no SLA moves."""

    async def apply(_t: Ticket, _c: dict[str, TicketSla], _p: sla.SlaPolicy) -> None:
        return None

    return await _work(session, scope, source_key, now, tz).run(
        ticket_id, Action.NOTE, "note", text, apply
    )


async def reply(
    session: AsyncSession,
    *,
    scope: Scope,
    ticket_id: int,
    text: str,
    source_key: str,
    now: datetime,
    tz: ZoneInfo,
) -> Change:
    """回复: what was told to the customer; it meets the first response, or the next one."""
    me = scope.actor.userid

    async def apply(t: Ticket, c: dict[str, TicketSla], p: sla.SlaPolicy) -> None:
        first = c.get(SlaTarget.FIRST_RESPONSE.value)
        if t.first_response_at is None:
            t.first_response_at = now
            sla.meet(first, p, now)
        else:
            sla.meet(c.get(SlaTarget.NEXT_RESPONSE.value), p, now)
        t.last_response_at = now
        if t.status == TicketStatus.OPEN.value:
            t.status = TicketStatus.IN_PROGRESS
            t.assignee_id = t.assignee_id or me

    return await _work(session, scope, source_key, now, tz).run(
        ticket_id, Action.REPLY, "reply", text, apply
    )


async def wait(
    session: AsyncSession,
    *,
    scope: Scope,
    ticket_id: int,
    source_key: str,
    now: datetime,
    tz: ZoneInfo,
) -> Change:
    """等待: waiting on the customer; every running clock pauses."""

    async def apply(t: Ticket, c: dict[str, TicketSla], p: sla.SlaPolicy) -> None:
        t.status = TicketStatus.WAITING
        sla.pause_all(c.values(), p, now)

    return await _work(session, scope, source_key, now, tz).run(
        ticket_id, Action.WAIT, "waiting", None, apply
    )


async def resume(
    session: AsyncSession,
    *,
    scope: Scope,
    ticket_id: int,
    source_key: str,
    now: datetime,
    tz: ZoneInfo,
) -> Change:
    """继续: the customer came back; the clocks run again and a next response is due."""

    async def apply(t: Ticket, c: dict[str, TicketSla], p: sla.SlaPolicy) -> None:
        t.status = TicketStatus.IN_PROGRESS if t.assignee_id else TicketStatus.OPEN
        sla.resume_all(c.values(), p, now)
        if t.first_response_at is not None:
            sla.start(c, t, SlaTarget.NEXT_RESPONSE.value, p, now)

    return await _work(session, scope, source_key, now, tz).run(
        ticket_id, Action.RESUME, "resumed", None, apply
    )


async def resolve(
    session: AsyncSession,
    *,
    scope: Scope,
    ticket_id: int,
    text: str,
    source_key: str,
    now: datetime,
    tz: ZoneInfo,
) -> Change:
    """解决: what was done; the resolution target is met and the other clocks stop."""
    me = scope.actor.userid

    async def apply(t: Ticket, c: dict[str, TicketSla], p: sla.SlaPolicy) -> None:
        t.status = TicketStatus.RESOLVED
        t.resolution = text
        t.resolved_at = now
        t.assignee_id = t.assignee_id or me
        sla.meet(c.get(SlaTarget.RESOLUTION.value), p, now)
        sla.stop(c.get(SlaTarget.FIRST_RESPONSE.value), p, now)
        sla.stop(c.get(SlaTarget.NEXT_RESPONSE.value), p, now)

    return await _work(session, scope, source_key, now, tz).run(
        ticket_id, Action.RESOLVE, "resolved", text, apply
    )


async def close(
    session: AsyncSession,
    *,
    scope: Scope,
    ticket_id: int,
    source_key: str,
    now: datetime,
    tz: ZoneInfo,
) -> Change:
    """关闭: a resolved ticket is done with."""

    async def apply(t: Ticket, _c: dict[str, TicketSla], _p: sla.SlaPolicy) -> None:
        t.status = TicketStatus.CLOSED
        t.closed_at = now

    return await _work(session, scope, source_key, now, tz).run(
        ticket_id, Action.CLOSE, "closed", None, apply
    )


async def reopen(
    session: AsyncSession,
    *,
    scope: Scope,
    ticket_id: int,
    text: str,
    source_key: str,
    now: datetime,
    tz: ZoneInfo,
) -> Change:
    """重开: the problem is back; resolution runs on with its used time, a next response is due."""

    async def apply(t: Ticket, c: dict[str, TicketSla], p: sla.SlaPolicy) -> None:
        t.status = TicketStatus.IN_PROGRESS if t.assignee_id else TicketStatus.OPEN
        t.resolved_at = t.closed_at = None
        sla.resume(c.get(SlaTarget.RESOLUTION.value), p, now)
        sla.start(c, t, SlaTarget.NEXT_RESPONSE.value, p, now)
        session.add_all(c.values())

    return await _work(session, scope, source_key, now, tz).run(
        ticket_id, Action.REOPEN, "reopened", text, apply
    )


async def set_priority(
    session: AsyncSession,
    *,
    scope: Scope,
    ticket_id: int,
    priority: Priority,
    source_key: str,
    now: datetime,
    tz: ZoneInfo,
) -> Change:
    """优先级: new budgets for every clock not met, keeping the time already used."""

    async def apply(t: Ticket, c: dict[str, TicketSla], p: sla.SlaPolicy) -> None:
        if t.priority == priority.value:
            raise Refused("same_priority", status=t.status, number=t.number)
        t.priority = priority
        sla.rebudget(c.values(), t, p, now)

    return await _work(session, scope, source_key, now, tz).run(
        ticket_id, Action.PRIORITY, "priority", priority.value, apply
    )


async def merge(
    session: AsyncSession,
    *,
    scope: Scope,
    ticket_id: int,
    into_id: int,
    source_key: str,
    now: datetime,
    tz: ZoneInfo,
) -> Change:
    """合并 #N #M: N is a duplicate; it folds into M with its history kept and its clocks off."""
    if ticket_id == into_id:
        raise Refused("same_ticket", number=str(ticket_id))
    target = await _load(session, scope, into_id, Action.MERGE)

    async def apply(t: Ticket, c: dict[str, TicketSla], p: sla.SlaPolicy) -> None:
        t.status = TicketStatus.MERGED
        t.merged_into_id = target.id
        for clock in c.values():
            sla.stop(clock, p, now)
        target.attachments = [*(target.attachments or []), *(t.attachments or [])]
        target.updated_at = now

    change = await _work(session, scope, source_key, now, tz).run(
        ticket_id, Action.MERGE, "merged_into", f"#{target.number}", apply
    )
    if change.written:
        source = change.ticket
        await _log(
            session,
            target,
            "merged_from",
            scope.actor.userid,
            f"#{source.number}：{source.content}",
            source_key,
            now,
            before=None,
        )
    return change


async def rate(
    session: AsyncSession,
    *,
    scope: Scope,
    ticket_id: int,
    score: int,
    remark: str,
    source_key: str,
    now: datetime,
    tz: ZoneInfo,
) -> Change:
    """满意度: the customer's 1–5 once the ticket is resolved (a later rating replaces it)."""
    if not 1 <= score <= 5:
        raise Refused("bad_score", number=str(ticket_id))

    async def apply(t: Ticket, _c: dict[str, TicketSla], _p: sla.SlaPolicy) -> None:
        t.satisfaction = score
        t.satisfaction_note = remark or None

    note_text = f"{score}分" + (f"：{remark}" if remark else "")
    return await _work(session, scope, source_key, now, tz).run(
        ticket_id, Action.RATE, "rated", note_text, apply
    )


# The loop back to sales -----------------------------------------------------------------------


async def create_callback(
    session: AsyncSession,
    *,
    ticket: Ticket,
    customer: Customer | None,
    source_key: str,
    now: datetime,
    tz: ZoneInfo,
) -> tuple[int, str] | None:
    """The 回访 task a resolution creates, for the owner or the agent as configured."""
    rules = await get_rules(session)
    owner = customer.owner_id if customer is not None and not customer.in_pool else None
    person = owner if rules.callback_to == "owner" and owner else ticket.assignee_id or owner
    if person is None:
        return None
    staff = await session.get(Staff, person)
    if staff is None or not staff.active:
        return None
    policy = await sla.get_policy(session, tz=tz)
    due = policy.hours.add(now, policy.hours.day_seconds)  # one business day later
    name = customer.name if customer is not None else ""
    task_id, _ = await tasks.create_task(
        session,
        owner_id=person,
        title=f"回访{name}：工单#{ticket.number}（{ticket.content[:30]}）",
        due_at=due,
        customer_id=customer.id if customer is not None else None,
        source="ticket",
        source_key=f"{source_key[: _KEY_MAX - 9]}:callback",
        now=now,
    )
    return task_id, person


async def find_staff(session: AsyncSession, text: str) -> str | None:
    """An active colleague by exact name or userid (转 #12 李四)."""
    wanted = text.strip().lstrip("@")
    return await session.scalar(
        select(Staff.userid)
        .where(Staff.active.is_(True), (Staff.name == wanted) | (Staff.userid == wanted))
        .order_by(Staff.userid)
        .limit(1)
    )


async def service_leaders(
    session: AsyncSession, *, userids: set[str], department_id: int | None
) -> dict[str | None, list[str]]:
    """Leaders to tell about a breach, per assignee (None: an unassigned ticket); two queries.

    The configured service department's leaders when there is one, else the leaders of the
    assignee's own departments.
    """
    leaders_of: dict[int, list[str]] = {}
    member_of: dict[str, set[int]] = {}
    rows = await session.execute(
        select(StaffDepartment.userid, StaffDepartment.department_id).where(
            StaffDepartment.userid.in_(sorted(userids))
        )
    )
    for userid, dept in rows.all():
        member_of.setdefault(userid, set()).add(dept)
    wanted = {d for ds in member_of.values() for d in ds}
    if department_id is not None:
        wanted.add(department_id)
    leader_rows = await session.execute(
        select(StaffDepartment.department_id, StaffDepartment.userid)
        .join(Staff, Staff.userid == StaffDepartment.userid)
        .where(
            StaffDepartment.department_id.in_(sorted(wanted)),
            StaffDepartment.is_leader.is_(True),
            Staff.active.is_(True),
        )
        .order_by(StaffDepartment.userid)
    )
    for dept, userid in leader_rows.all():
        leaders_of.setdefault(dept, []).append(userid)
    fixed = leaders_of.get(department_id, []) if department_id is not None else []
    result: dict[str | None, list[str]] = {None: fixed}
    for userid in userids:
        found = fixed or sorted(
            {u for d in member_of.get(userid, ()) for u in leaders_of.get(d, [])}
        )
        result[userid] = [u for u in found if u != userid]
    return result
