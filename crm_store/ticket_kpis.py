"""Service figures for the manager digests: volume, SLA health, first response, satisfaction.

Read under the asker's scope (a manager sees the tickets of their subtree's customers and
people), in two queries whatever the number of tickets: the counts and the satisfaction
aggregate in one, the first-response times in the other.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models.service import (
    ACTIVE_STATUSES,
    ClockState,
    SlaTarget,
    Ticket,
    TicketSla,
    TicketStatus,
)
from crm_store.scope import Scope

_ACTIVE = tuple(s.value for s in ACTIVE_STATUSES)


@dataclass(frozen=True)
class ServiceKpis:
    """One period [since, until) of service work as its manager reads it."""

    opened: int  # tickets opened in the period (duplicates merged away not counted)
    resolved: int  # tickets resolved in the period
    overdue: int  # open at `until` with a deadline already passed
    breached: int  # opened in the period and late on any target (met late, or still running)
    median_first_response_seconds: float | None  # SLA time: business hours where counted
    first_responses: int  # how many first responses the median is taken over
    mean_satisfaction: float | None  # 1–5, over tickets resolved in the period and rated
    rated: int


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def service_kpis(
    session: AsyncSession, scope: Scope, *, since: datetime, until: datetime
) -> ServiceKpis:
    """The period's figures under `scope`; empty periods give zeros and None averages."""
    in_period = and_(Ticket.created_at >= since, Ticket.created_at < until)
    resolved_in_period = and_(Ticket.resolved_at >= since, Ticket.resolved_at < until)
    late_clock = exists().where(
        TicketSla.ticket_id == Ticket.id,
        (TicketSla.breached.is_(True))
        | and_(TicketSla.state == ClockState.RUNNING.value, TicketSla.due_at <= until),
    )
    rated = and_(resolved_in_period, Ticket.satisfaction.is_not(None))
    counts = (
        await session.execute(
            select(
                _count(and_(in_period, Ticket.status != TicketStatus.MERGED.value)),
                _count(resolved_in_period),
                _count(and_(Ticket.status.in_(_ACTIVE), Ticket.sla_due_at <= until)),
                _count(and_(in_period, Ticket.status != TicketStatus.MERGED.value, late_clock)),
                func.avg(case((rated, Ticket.satisfaction))),
                _count(rated),
            ).where(scope.tickets())
        )
    ).one()
    first = list(
        await session.scalars(
            select(TicketSla.used_seconds)
            .join(Ticket, Ticket.id == TicketSla.ticket_id)
            .where(
                TicketSla.target == SlaTarget.FIRST_RESPONSE.value,
                TicketSla.state == ClockState.MET.value,
                TicketSla.met_at >= since,
                TicketSla.met_at < until,
                scope.tickets(),
            )
        )
    )
    mean = counts[4]
    return ServiceKpis(
        opened=int(counts[0]),
        resolved=int(counts[1]),
        overdue=int(counts[2]),
        breached=int(counts[3]),
        median_first_response_seconds=float(statistics.median(first)) if first else None,
        first_responses=len(first),
        mean_satisfaction=None if mean is None else round(float(mean), 2),
        rated=int(counts[5]),
    )
