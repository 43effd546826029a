"""Team numbers for digests, computed in SQL under the asker's scope.

A digest covers a *team* (the people a manager's scope reaches, or one person) and a *window*
(a company day or week, as UTC instants). Every figure is an aggregate query over the team as
a whole, so one digest costs the same fixed number of queries for a team of three or of a
thousand; nothing here loops over people to query.

The team is re-read from the scope each time: someone who moved departments is counted in
their new team at the next digest (the issue's "scope is checked again at send time").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Executable, and_, case, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from crm_store import config_data
from crm_store.models.customer import Customer
from crm_store.models.org import Role, Staff, StaffDepartment
from crm_store.models.sales import (
    Followup,
    Opportunity,
    OpportunityStageHistory,
    OpportunityState,
    Task,
)
from crm_store.models.service import ACTIVE_STATUSES, Ticket, TicketSla
from crm_store.scope import Scope
from crm_store.tasks import TodoItem

__all__ = [
    "AT_RISK_SILENT_DAYS",
    "Digest",
    "RepNumbers",
    "RiskDeal",
    "ServiceNumbers",
    "StageLine",
    "Window",
    "day_window",
    "Morning",
    "StaleCustomer",
    "digest",
    "digest_recipients",
    "mornings",
    "team_of",
    "week_window",
]

AT_RISK_SILENT_DAYS = 30  # an open deal whose customer heard nothing for this long is at risk
AT_RISK_LISTED = 10  # the digest names the largest ones; the count covers them all
TEAM_ROLES = (Role.REP.value, Role.MANAGER.value)  # people who sell; service has its own KPIs
_CENT = Decimal("0.01")


def _money(value: Any) -> Decimal:
    """SQLite sums Numeric as float or int; PostgreSQL as Decimal: one shape for both."""
    return Decimal(str(value or 0)).quantize(_CENT)


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC, with the local dates it names (for titles)."""

    start: datetime
    end: datetime
    first_day: date
    last_day: date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def day_window(day: date, tz: ZoneInfo) -> Window:
    """One company day, midnight to midnight in the company's zone."""
    return Window(_midnight(day, tz), _midnight(day + timedelta(days=1), tz), day, day)


def week_window(day: date, tz: ZoneInfo) -> Window:
    """The Monday-to-Sunday week holding `day`."""
    monday = day - timedelta(days=day.weekday())
    sunday = monday + timedelta(days=6)
    return Window(_midnight(monday, tz), _midnight(sunday + timedelta(days=1), tz), monday, sunday)


@dataclass(frozen=True)
class RepNumbers:
    userid: str
    name: str
    followups: int = 0
    customers_added: int = 0
    stage_moves: int = 0
    deals_won: int = 0
    won_amount: Decimal = Decimal("0.00")

    @property
    def active(self) -> bool:
        """Anything logged in the window; a win counts (it is a stage move by someone)."""
        return bool(self.followups or self.customers_added or self.stage_moves or self.deals_won)


@dataclass(frozen=True)
class StageLine:
    """An open stage now, and how it changed over the window (moves in minus moves out)."""

    stage: str
    count: int
    amount: Decimal
    count_change: int
    amount_change: Decimal


@dataclass(frozen=True)
class ServiceNumbers:
    opened: int = 0
    resolved: int = 0
    overdue: int = 0  # still open past their earliest SLA deadline, at `now`
    breached: int = 0  # tickets with a target that ran out within the window
    first_response_minutes: float | None = None  # mean over first responses in the window
    satisfaction: float | None = None  # mean score of tickets resolved in the window
    rated: int = 0

    @property
    def empty(self) -> bool:
        return not (self.opened or self.resolved or self.overdue or self.breached or self.rated)


@dataclass(frozen=True)
class RiskDeal:
    opportunity_id: int
    title: str
    customer_name: str
    owner_name: str
    amount: Decimal | None
    stage: str
    silent_since: datetime  # the customer's last follow-up, or the deal's creation
    expected_close_date: date | None
    past_close: bool
    silent: bool


@dataclass(frozen=True)
class Digest:
    """Everything a manager digest shows, for one team and window, read at `now`."""

    window: Window
    now: datetime
    team: tuple[RepNumbers, ...]
    pipeline: tuple[StageLine, ...]
    service: ServiceNumbers
    at_risk: tuple[RiskDeal, ...]
    at_risk_total: int
    subtree: bool

    @property
    def idle(self) -> tuple[RepNumbers, ...]:
        return tuple(r for r in self.team if not r.active)

    @property
    def followups(self) -> int:
        return sum(r.followups for r in self.team)

    @property
    def customers_added(self) -> int:
        return sum(r.customers_added for r in self.team)

    @property
    def deals_won(self) -> int:
        return sum(r.deals_won for r in self.team)

    @property
    def won_amount(self) -> Decimal:
        return sum((r.won_amount for r in self.team), Decimal("0.00"))

    @property
    def pipeline_changed(self) -> bool:
        return any(s.count_change or s.amount_change for s in self.pipeline)

    @property
    def empty(self) -> bool:
        """Nothing happened and nothing needs attention: a pushed digest is not sent."""
        return not (
            any(r.active for r in self.team)
            or self.pipeline_changed
            or not self.service.empty
            or self.at_risk_total
        )


def _in(column: QueryableAttribute[Any], window: Window) -> ColumnElement[bool]:
    return and_(column >= window.start, column < window.end)


async def team_of(
    session: AsyncSession, scope: Scope, *, own_only: bool = False
) -> list[tuple[str, str]]:
    """(userid, name) of the active sellers the scope reaches, by name; one query.

    own_only gives the asker alone, whatever their role: a rep's digest is their own numbers.
    """
    actor = scope.actor
    query = select(Staff.userid, Staff.name).where(Staff.active.is_(True))
    if own_only:
        query = query.where(Staff.userid == actor.userid)
    else:
        query = query.where(Staff.role.in_(TEAM_ROLES))
        if actor.member_ids is not None:
            query = query.where(Staff.userid.in_(sorted(actor.member_ids)))
    rows = await session.execute(query.order_by(Staff.name, Staff.userid))
    return [(userid, name) for userid, name in rows]


async def _activity(
    session: AsyncSession, ids: list[str], window: Window, won_stages: Collection[str]
) -> dict[str, dict[str, tuple[int, Decimal]]]:
    """Four per-person counts in one UNION ALL: follow-ups, customers, moves, wins."""
    won = (
        select(
            literal("won").label("measure"),
            Opportunity.owner_id.label("who"),
            func.count().label("n"),
            func.coalesce(func.sum(Opportunity.amount), 0).label("amount"),
        )
        .join(OpportunityStageHistory, OpportunityStageHistory.opportunity_id == Opportunity.id)
        .where(
            Opportunity.owner_id.in_(ids),
            Opportunity.state == OpportunityState.WON.value,
            OpportunityStageHistory.to_stage.in_(sorted(won_stages)),
            _in(OpportunityStageHistory.at, window),
        )
        .group_by(Opportunity.owner_id)
    )
    followups = (
        select(literal("followups"), Followup.author_id, func.count(), literal(0))
        .where(Followup.author_id.in_(ids), _in(Followup.created_at, window))
        .group_by(Followup.author_id)
    )
    customers = (
        select(literal("customers"), Customer.owner_id, func.count(), literal(0))
        .where(Customer.owner_id.in_(ids), _in(Customer.created_at, window))
        .group_by(Customer.owner_id)
    )
    moves = (
        select(literal("moves"), OpportunityStageHistory.by_id, func.count(), literal(0))
        .where(
            OpportunityStageHistory.by_id.in_(ids),
            OpportunityStageHistory.from_stage.is_not(None),  # a deal's creation is no move
            _in(OpportunityStageHistory.at, window),
        )
        .group_by(OpportunityStageHistory.by_id)
    )
    found: dict[str, dict[str, tuple[int, Decimal]]] = defaultdict(dict)
    statement: Executable = union_all(won, followups, customers, moves)
    for measure, who, n, amount in await session.execute(statement):
        found[str(who)][str(measure)] = (int(n), _money(amount))
    return found


async def _pipeline(
    session: AsyncSession,
    scope: Scope,
    ids: list[str],
    window: Window,
    open_stages: list[str],
) -> tuple[StageLine, ...]:
    """Open deals by stage now (one query) and the window's moves in and out (one more)."""
    owned = and_(Opportunity.owner_id.in_(ids), scope.opportunity_amounts())
    now_rows = await session.execute(
        select(Opportunity.stage, func.count(), func.coalesce(func.sum(Opportunity.amount), 0))
        .where(owned, Opportunity.state == OpportunityState.OPEN.value)
        .group_by(Opportunity.stage)
    )
    current = {stage: (int(n), _money(total)) for stage, n, total in now_rows}
    moved = await session.execute(
        select(
            OpportunityStageHistory.from_stage,
            OpportunityStageHistory.to_stage,
            Opportunity.amount,
        )
        .join(Opportunity, Opportunity.id == OpportunityStageHistory.opportunity_id)
        .where(owned, _in(OpportunityStageHistory.at, window))
    )
    count_change: dict[str, int] = defaultdict(int)
    amount_change: dict[str, Decimal] = defaultdict(Decimal)
    for from_stage, to_stage, amount in moved:
        value = _money(amount)
        count_change[to_stage] += 1
        amount_change[to_stage] += value
        if from_stage is not None:
            count_change[from_stage] -= 1
            amount_change[from_stage] -= value
    closed = set(count_change) - set(open_stages) - set(current)
    stages = open_stages + sorted(set(current) - set(open_stages))
    lines = []
    for stage in stages:
        if stage in closed:
            continue
        count, total = current.get(stage, (0, _money(0)))
        change, money = count_change.get(stage, 0), amount_change.get(stage, Decimal(0))
        if count or change or money:
            lines.append(StageLine(stage, count, total, change, _money(money)))
    return tuple(lines)


def _team_tickets(scope: Scope, ids: list[str]) -> ColumnElement[bool]:
    """Tickets the scope reads that concern the team: their customers, or opened or worked by
    them. Someone who sees everything gets every ticket (the pool's and unlinked ones too)."""
    if scope.actor.sees_all:
        return scope.tickets()
    owned = select(Customer.id).where(Customer.owner_id.in_(ids)).correlate(None)
    return and_(
        scope.tickets(),
        or_(
            Ticket.customer_id.in_(owned),
            Ticket.opened_by.in_(ids),
            Ticket.assignee_id.in_(ids),
        ),
    )


async def _service(
    session: AsyncSession, scope: Scope, ids: list[str], window: Window
) -> ServiceNumbers:
    """Ticket counts in one query, first responses in one, breaches in one."""
    now = scope.now
    concern = _team_tickets(scope, ids)
    active = [s.value for s in ACTIVE_STATUSES]
    opened = _in(Ticket.created_at, window)
    resolved = _in(Ticket.resolved_at, window)
    overdue = and_(Ticket.status.in_(active), Ticket.sla_due_at < now)
    rated = and_(resolved, Ticket.satisfaction.is_not(None))

    def count(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = (
        await session.execute(
            select(
                count(opened),
                count(resolved),
                count(overdue),
                count(rated),
                func.coalesce(func.sum(case((rated, Ticket.satisfaction), else_=0)), 0),
            ).where(concern, or_(opened, resolved, overdue))
        )
    ).one()
    n_opened, n_resolved, n_overdue, n_rated, score = (int(v) for v in row)
    responses = await session.execute(
        select(Ticket.created_at, Ticket.first_response_at).where(
            concern, _in(Ticket.first_response_at, window)
        )
    )
    waits = [
        (first - created).total_seconds() / 60
        for created, first in responses
        if first is not None  # the WHERE says so; the column type does not
    ]
    ran_out = or_(
        and_(TicketSla.due_at > window.start, TicketSla.due_at <= min(window.end, now)),
        and_(TicketSla.breached.is_(True), _in(TicketSla.met_at, window)),
    )
    breached = await session.scalar(
        select(func.count(func.distinct(TicketSla.ticket_id)))
        .join(Ticket, Ticket.id == TicketSla.ticket_id)
        .where(concern, ran_out)
    )
    return ServiceNumbers(
        opened=n_opened,
        resolved=n_resolved,
        overdue=n_overdue,
        breached=int(breached or 0),
        first_response_minutes=sum(waits) / len(waits) if waits else None,
        satisfaction=score / n_rated if n_rated else None,
        rated=n_rated,
    )


async def _at_risk(
    session: AsyncSession, scope: Scope, ids: list[str], tz: ZoneInfo
) -> tuple[tuple[RiskDeal, ...], int]:
    """Open deals silent for 30 days or past their expected close: the largest, and how many."""
    now = scope.now
    today = now.astimezone(tz).date()
    silent_since = func.coalesce(Customer.last_followup_at, Opportunity.created_at)
    silent = silent_since < now - timedelta(days=AT_RISK_SILENT_DAYS)
    past_close = Opportunity.expected_close_date < today
    risky = and_(
        Opportunity.owner_id.in_(ids),
        Opportunity.state == OpportunityState.OPEN.value,
        scope.opportunity_amounts(),
        or_(silent, past_close),
    )
    total = await session.scalar(
        select(func.count())
        .select_from(Opportunity)
        .join(Customer, Customer.id == Opportunity.customer_id)
        .where(risky)
    )
    rows = await session.execute(
        select(
            Opportunity.id,
            Opportunity.title,
            Customer.name,
            Staff.name,
            Opportunity.amount,
            Opportunity.stage,
            Customer.last_followup_at,
            Opportunity.created_at,
            Opportunity.expected_close_date,
        )
        .join(Customer, Customer.id == Opportunity.customer_id)
        .join(Staff, Staff.userid == Opportunity.owner_id)
        .where(risky)
        .order_by(Opportunity.amount.is_(None), Opportunity.amount.desc(), Opportunity.id)
        .limit(AT_RISK_LISTED)
    )
    cutoff = now - timedelta(days=AT_RISK_SILENT_DAYS)
    deals = []
    for oid, title, customer, owner, amount, stage, last, created, close in rows:
        since = _aware(last) if last is not None else _aware(created)
        deals.append(
            RiskDeal(
                opportunity_id=oid,
                title=title,
                customer_name=customer,
                owner_name=owner,
                amount=None if amount is None else _money(amount),
                stage=stage,
                silent_since=since,
                expected_close_date=close,
                past_close=close is not None and close < today,
                silent=since < cutoff,
            )
        )
    return tuple(deals), int(total or 0)


def _aware(moment: datetime) -> datetime:
    """Plain datetime columns come back naive from SQLite; they hold UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _numbers(people: Iterable[tuple[str, str]], found: dict[str, Any]) -> tuple[RepNumbers, ...]:
    numbers = []
    for userid, name in people:
        mine = found.get(userid, {})
        zero = (0, Decimal("0.00"))
        numbers.append(
            RepNumbers(
                userid=userid,
                name=name,
                followups=mine.get("followups", zero)[0],
                customers_added=mine.get("customers", zero)[0],
                stage_moves=mine.get("moves", zero)[0],
                deals_won=mine.get("won", zero)[0],
                won_amount=mine.get("won", zero)[1],
            )
        )
    return tuple(numbers)


async def digest(
    session: AsyncSession,
    scope: Scope,
    *,
    window: Window,
    tz: ZoneInfo,
    own_only: bool = False,
    people: list[tuple[str, str]] | None = None,
) -> Digest:
    """The digest of the scope's team (or the asker alone) over `window`, read at scope.now.

    `people` narrows the team to some of its members (业绩 <人>); it must come from team_of.
    """
    team = people if people is not None else await team_of(session, scope, own_only=own_only)
    ids = [userid for userid, _ in team] or [scope.actor.userid]
    stages = await config_data.get_stages(session)
    open_stages = [s.name for s in stages if s.outcome is OpportunityState.OPEN]
    won_stages = [s.name for s in stages if s.outcome is OpportunityState.WON]
    found = await _activity(session, ids, window, won_stages)
    pipeline = await _pipeline(session, scope, ids, window, open_stages)
    service = (
        await _service(session, scope, ids, window)
        if not own_only and people is None
        else ServiceNumbers()
    )
    at_risk, total = await _at_risk(session, scope, ids, tz)
    return Digest(
        window=window,
        now=scope.now,
        team=_numbers(team, found),
        pipeline=pipeline,
        service=service,
        at_risk=at_risk,
        at_risk_total=total,
        subtree=not own_only and people is None,
    )


# Who is pushed what ---------------------------------------------------------------------------


async def digest_recipients(session: AsyncSession) -> list[str]:
    """Active managers and department leaders: the people a pushed digest goes to, by userid.

    Admins read everything and pull it when they want it; pushing the whole company to them
    every evening would be noise.
    """
    leaders = select(StaffDepartment.userid).where(StaffDepartment.is_leader.is_(True))
    query = (
        select(Staff.userid)
        .where(
            Staff.active.is_(True),
            Staff.role != Role.SERVICE.value,
            or_(Staff.role == Role.MANAGER.value, Staff.userid.in_(leaders)),
        )
        .order_by(Staff.userid)
    )
    return list(await session.scalars(query))


STALE_DAYS = 14  # a customer with no follow-up for this long is named in its owner's morning
MORNING_TASKS = 10
MORNING_CUSTOMERS = 5


@dataclass(frozen=True)
class StaleCustomer:
    customer_id: int
    name: str
    last_followup_at: datetime | None


@dataclass(frozen=True)
class Morning:
    """One rep's morning: open tasks due by tonight (overdue first), customers gone quiet."""

    userid: str
    tasks: tuple[TodoItem, ...]
    stale: tuple[StaleCustomer, ...]
    stale_total: int


async def mornings(
    session: AsyncSession,
    *,
    now: datetime,
    tz: ZoneInfo,
    stale_days: int = STALE_DAYS,
    userids: Collection[str] | None = None,
) -> list[Morning]:
    """Every active seller's morning in two queries; people with nothing to hear are left out."""
    end_of_today = datetime.combine(
        now.astimezone(tz).date() + timedelta(days=1), time(0), tzinfo=tz
    )
    sellers = select(Staff.userid).where(Staff.active.is_(True), Staff.role.in_(TEAM_ROLES))
    if userids is not None:
        sellers = sellers.where(Staff.userid.in_(sorted(userids)))
    due = await session.execute(
        select(Task.id, Task.owner_id, Task.title, Task.due_at, Task.customer_id, Customer.name)
        .outerjoin(Customer, Customer.id == Task.customer_id)
        .where(
            Task.owner_id.in_(sellers),
            Task.done_at.is_(None),
            Task.due_at < end_of_today,
        )
        .order_by(Task.owner_id, Task.due_at, Task.id)
    )
    tasks: dict[str, list[TodoItem]] = defaultdict(list)
    for task_id, owner, title, due_at, customer_id, customer_name in due:
        assert due_at is not None  # the WHERE says so
        due_at = _aware(due_at)
        tasks[owner].append(
            TodoItem(task_id, title, due_at, customer_id, customer_name, due_at < now)
        )
    quiet_since = func.coalesce(Customer.last_followup_at, Customer.created_at)
    stale_rows = await session.execute(
        select(Customer.id, Customer.owner_id, Customer.name, Customer.last_followup_at)
        .where(
            Customer.owner_id.in_(sellers),
            Customer.in_pool.is_(False),
            quiet_since < now - timedelta(days=stale_days),
        )
        .order_by(Customer.owner_id, quiet_since, Customer.id)
    )
    stale: dict[str, list[StaleCustomer]] = defaultdict(list)
    for customer_id, holder, name, last in stale_rows:
        stale[str(holder)].append(
            StaleCustomer(customer_id, name, None if last is None else _aware(last))
        )
    return [
        Morning(
            userid=userid,
            tasks=tuple(tasks.get(userid, ())[:MORNING_TASKS]),
            stale=tuple(stale.get(userid, ())[:MORNING_CUSTOMERS]),
            stale_total=len(stale.get(userid, ())),
        )
        for userid in sorted(set(tasks) | set(stale))
    ]
