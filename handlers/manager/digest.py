"""A digest as chat shows it: ordered markdown sections, the most important first.

The store computes the numbers (crm_store/kpi.py); this module only decides who gets which view
and words them. Sections with nothing in them are left out. The sections are joined by blank
lines into one markdown message; the outbox cuts a message over WeCom's 2,048 bytes at line
ends, so the head and the deals at risk always arrive first.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

import templates
from crm_store import kpi
from crm_store.models.org import Role
from crm_store.scope import Actor, Scope
from handlers.common.format import money

_WEEKDAYS = "一二三四五六日"
MANAGER_ROLES = frozenset({Role.MANAGER.value, Role.ADMIN.value})


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"


def sees_team(actor: Actor) -> bool:
    """Managers, admins and department leaders read their subtree; everyone else themself."""
    return actor.role in MANAGER_ROLES or bool(actor.led_department_ids)


def window_of(period: Period, day: date, tz: ZoneInfo) -> kpi.Window:
    return kpi.day_window(day, tz) if period is Period.DAY else kpi.week_window(day, tz)


async def build(
    session: AsyncSession,
    scope: Scope,
    *,
    period: Period,
    day: date,
    tz: ZoneInfo,
    people: list[tuple[str, str]] | None = None,
) -> kpi.Digest:
    """The digest the actor may read: their subtree if they lead one, else their own numbers."""
    return await kpi.digest(
        session,
        scope,
        window=window_of(period, day, tz),
        tz=tz,
        own_only=not sees_team(scope.actor),
        people=people,
    )


def _day(day: date) -> str:
    return f"{day.month}月{day.day}日（周{_WEEKDAYS[day.weekday()]}）"


def title_of(digest: kpi.Digest, period: Period) -> str:
    window = digest.window
    if period is Period.DAY:
        return f"日报 {_day(window.first_day)}"
    first, last = window.first_day, window.last_day
    return f"周报 {first.month}月{first.day}日–{last.month}月{last.day}日"


def signed(value: int) -> str:
    """A change in a count with its sign: +2 / -1 / ±0."""
    return f"{value:+d}" if value else "±0"


def signed_money(value: Decimal) -> str:
    """A change in money with its sign, written as amounts are: +80万 / -¥2."""
    if not value:
        return "±0"
    return ("+" if value > 0 else "-") + money(abs(value))


def _head(digest: kpi.Digest, title: str, who: str) -> str:
    return templates.render(
        "manager/digest_head",
        title=title,
        who=who,
        followups=digest.followups,
        customers=digest.customers_added,
        moves=sum(r.stage_moves for r in digest.team),
        won=digest.deals_won,
        won_amount=money(digest.won_amount),
    )


def _risk(digest: kpi.Digest, tz: ZoneInfo) -> str | None:
    if not digest.at_risk_total:
        return None
    now = digest.now
    deals = [
        {
            "customer": d.customer_name,
            "title": d.title,
            "owner": d.owner_name,
            "amount": money(d.amount),
            "stage": d.stage,
            "silent_days": (now - d.silent_since).days if d.silent else 0,
            "close": (
                f"{d.expected_close_date.month}月{d.expected_close_date.day}日"
                if d.past_close and d.expected_close_date
                else ""
            ),
        }
        for d in digest.at_risk
    ]
    more = digest.at_risk_total - len(deals)
    return templates.render(
        "manager/digest_risk", deals=deals, total=digest.at_risk_total, more=more
    )


def _service(digest: kpi.Digest) -> str | None:
    s = digest.service
    if s.empty:
        return None
    return templates.render(
        "manager/digest_service",
        s=s,
        first_response=None
        if s.first_response_minutes is None
        else round(s.first_response_minutes),
        satisfaction=None if s.satisfaction is None else f"{s.satisfaction:.1f}",
    )


def _idle(digest: kpi.Digest) -> str | None:
    if not digest.subtree or not digest.idle:
        return None
    return templates.render("manager/digest_idle", names=[r.name for r in digest.idle])


def rep_line(rep: kpi.RepNumbers) -> dict[str, Any]:
    return {
        "name": rep.name,
        "followups": rep.followups,
        "customers": rep.customers_added,
        "moves": rep.stage_moves,
        "won": rep.deals_won,
        "won_amount": money(rep.won_amount) if rep.deals_won else "",
    }


def _team(digest: kpi.Digest) -> str | None:
    active = [rep_line(r) for r in digest.team if r.active]
    if not digest.subtree or not active:
        return None
    return templates.render("manager/digest_team", reps=active)


def _pipeline(digest: kpi.Digest) -> str | None:
    if not digest.pipeline:
        return None
    stages = [
        {
            "stage": s.stage,
            "count": s.count,
            "amount": money(s.amount),
            "changed": bool(s.count_change or s.amount_change),
            "count_change": signed(s.count_change),
            "amount_change": signed_money(s.amount_change),
        }
        for s in digest.pipeline
    ]
    return templates.render("manager/digest_pipeline", stages=stages)


def sections(digest: kpi.Digest, *, period: Period, tz: ZoneInfo, who: str = "") -> list[str]:
    """The digest's sections in the order they matter; an empty digest has none at all."""
    if digest.empty:
        return []
    head = _head(digest, title_of(digest, period), who)
    rest = [_risk(digest, tz), _service(digest), _idle(digest), _team(digest), _pipeline(digest)]
    return [head, *(section for section in rest if section)]


def markdown(parts: list[str]) -> str:
    """Sections as one markdown message; blank lines between them are where a cut falls best."""
    return "\n\n".join(parts)
