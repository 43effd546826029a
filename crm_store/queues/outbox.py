"""Outbox repository: replies are rows first, WeCom calls later; per-user order is kept."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Result,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.util import AliasedClass

from crm_store.dialect import insert_ignore, supports_skip_locked
from crm_store.models.messaging import (
    OUTBOX_DEAD,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    OutboxMessage,
)

_UNFINISHED = (OUTBOX_PENDING, OUTBOX_SENDING)


@dataclass(frozen=True)
class ClaimedReply:
    id: int
    dedup_key: str
    to_user: str
    msgtype: str
    payload: dict[str, Any]
    attempts: int
    uncertain: bool
    lease_owner: str
    created_at: datetime


async def enqueue(
    session: AsyncSession,
    *,
    dedup_key: str,
    to_user: str,
    msgtype: str,
    payload: dict[str, Any],
    now: datetime,
    not_before: datetime | None = None,
) -> bool:
    """Owe a message; the same dedup key twice is one message (a retried handler, a re-run job)."""
    stmt = insert_ignore(session, OutboxMessage.__table__, ["dedup_key"]).values(
        dedup_key=dedup_key,
        to_user=to_user,
        msgtype=msgtype,
        payload=payload,
        status=OUTBOX_PENDING,
        attempts=0,
        uncertain=False,
        next_attempt_at=not_before or now,
        created_at=now,
    )
    result = await session.execute(stmt)
    return _rowcount(result) > 0


def _claimable(
    now: datetime, row: type[OutboxMessage] | AliasedClass[OutboxMessage] = OutboxMessage
) -> ColumnElement[bool]:
    """Due (or its sender's lease ran out) and the oldest unfinished message to its recipient."""
    earlier = aliased(OutboxMessage)
    is_head = ~exists().where(
        earlier.to_user == row.to_user,
        earlier.status.in_(_UNFINISHED),
        earlier.id < row.id,
    )
    ready = or_(
        and_(row.status == OUTBOX_PENDING, row.next_attempt_at <= now),
        and_(row.status == OUTBOX_SENDING, row.lease_until < now),
    )
    # Literal, so that both databases see the partial index's own predicate (0006).
    unfinished = row.status.in_([literal_column("'pending'"), literal_column("'sending'")])
    return and_(unfinished, ready, is_head)


async def claim_due(
    session: AsyncSession, *, relay_id: str, now: datetime, lease: timedelta, limit: int
) -> list[ClaimedReply]:
    """Claim the next due message of up to `limit` different users in one statement; the
    caller commits. One message per recipient at a time keeps each person's order."""
    if limit < 1:
        return []
    # An alias, so that the subquery is not correlated to the UPDATE's own table.
    candidate = aliased(OutboxMessage)
    heads = (
        select(candidate.id).where(_claimable(now, candidate)).order_by(candidate.id).limit(limit)
    )
    if supports_skip_locked(session):
        heads = heads.with_for_update(skip_locked=True, of=candidate)
    # A materialized CTE runs once: as an IN-subquery, PostgreSQL may run it per outer row,
    # and SKIP LOCKED then yields different rows each time (more than `limit` get claimed).
    chosen = heads.cte("heads").prefix_with("MATERIALIZED", dialect="postgresql")
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(select(chosen.c.id)), _claimable(now))
        .values(
            status=OUTBOX_SENDING,
            lease_owner=relay_id,
            lease_until=now + lease,
            attempts=OutboxMessage.attempts + 1,
            # Taken over from a relay that died mid-send: it may have reached WeCom.
            uncertain=case(
                (OutboxMessage.status == OUTBOX_SENDING, True), else_=OutboxMessage.uncertain
            ),
        )
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )
    return [
        ClaimedReply(
            id=row.id,
            dedup_key=row.dedup_key,
            to_user=row.to_user,
            msgtype=row.msgtype,
            payload=dict(row.payload),
            attempts=row.attempts,
            uncertain=row.uncertain,
            lease_owner=relay_id,
            created_at=row.created_at,
        )
        for row in sorted(result.scalars().all(), key=lambda r: r.id)
    ]


def _owned(reply: ClaimedReply) -> ColumnElement[bool]:
    return and_(
        OutboxMessage.id == reply.id,
        OutboxMessage.status == OUTBOX_SENDING,
        OutboxMessage.lease_owner == reply.lease_owner,
    )


@dataclass(frozen=True)
class Delivered:
    """One successful send, for `mark_sent_many`."""

    reply: ClaimedReply
    sent_at: datetime
    wecom_msgid: str | None = None
    response_code: str | None = None
    note: str | None = None


async def mark_sent(
    session: AsyncSession,
    *,
    reply: ClaimedReply,
    now: datetime,
    wecom_msgid: str | None,
    response_code: str | None,
    note: str | None = None,
) -> None:
    await mark_sent_many(
        session,
        [Delivered(reply, now, wecom_msgid=wecom_msgid, response_code=response_code, note=note)],
    )


async def mark_sent_many(session: AsyncSession, delivered: list[Delivered]) -> None:
    """Record many sends with one executemany: the relay's common case, written in bulk."""
    if not delivered:
        return
    table = cast(Table, OutboxMessage.__table__)
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.status == OUTBOX_SENDING,
            table.c.lease_owner == bindparam("b_owner"),
        )
        .values(
            status=OUTBOX_SENT,
            sent_at=bindparam("b_sent_at"),
            lease_owner=None,
            lease_until=None,
            wecom_msgid=bindparam("b_msgid"),
            response_code=bindparam("b_code"),
            last_error=bindparam("b_note"),
        )
    )
    await session.execute(
        statement,
        [
            {
                "b_id": d.reply.id,
                "b_owner": d.reply.lease_owner,
                "b_sent_at": d.sent_at,
                "b_msgid": d.wecom_msgid,
                "b_code": d.response_code,
                "b_note": d.note,
            }
            for d in delivered
        ],
    )


async def reschedule(
    session: AsyncSession,
    *,
    reply: ClaimedReply,
    at: datetime,
    error: str | None,
    uncertain: bool = False,
    count_attempt: bool = True,
) -> None:
    """Try again at `at`; pacing delays pass count_attempt=False so they never dead-letter."""
    values: dict[str, Any] = {
        "status": OUTBOX_PENDING,
        "next_attempt_at": at,
        "lease_owner": None,
        "lease_until": None,
        "last_error": error,
    }
    if uncertain:
        values["uncertain"] = True
    if not count_attempt:
        values["attempts"] = OutboxMessage.attempts - 1
    await session.execute(update(OutboxMessage).where(_owned(reply)).values(**values))


async def mark_dead(
    session: AsyncSession, *, reply: ClaimedReply, now: datetime, reason: str
) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(_owned(reply))
        .values(
            status=OUTBOX_DEAD,
            sent_at=None,
            lease_owner=None,
            lease_until=None,
            last_error=reason[:4000],
        )
    )


async def renew(
    session: AsyncSession, *, relay_id: str, ids: Iterable[int], now: datetime, lease: timedelta
) -> set[int]:
    """Extend this relay's leases on `ids` (its heartbeat); returns the ids it still holds."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(wanted),
            OutboxMessage.status == OUTBOX_SENDING,
            OutboxMessage.lease_owner == relay_id,
        )
        .values(lease_until=now + lease)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    return set(result.scalars().all())


async def release(
    session: AsyncSession,
    *,
    relay_id: str,
    ids: Iterable[int] | None,
    now: datetime,
    uncertain: bool,
) -> int:
    """Hand messages back (a relay shutting down; None: all it holds): due again at once, the
    attempt uncounted. `uncertain` marks sends that were under way, so that the next attempt
    asks WeCom to deduplicate."""
    owned = and_(OutboxMessage.status == OUTBOX_SENDING, OutboxMessage.lease_owner == relay_id)
    if ids is not None:
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        owned = and_(owned, OutboxMessage.id.in_(wanted))
    values: dict[str, Any] = {
        "status": OUTBOX_PENDING,
        "next_attempt_at": now,
        "lease_owner": None,
        "lease_until": None,
        "attempts": case((OutboxMessage.attempts > 0, OutboxMessage.attempts - 1), else_=0),
    }
    if uncertain:
        values["uncertain"] = True
    result = await session.execute(
        update(OutboxMessage)
        .where(owned)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


def _rowcount(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


async def sent_windows(
    session: AsyncSession, *, users: set[str], since: datetime
) -> dict[str, list[datetime]]:
    """Each recipient's send times since `since`, oldest first: pacing for a whole batch."""
    if not users:
        return {}
    rows = await session.execute(
        select(OutboxMessage.to_user, OutboxMessage.sent_at)
        .where(
            OutboxMessage.to_user.in_(sorted(users)),
            OutboxMessage.status == OUTBOX_SENT,
            OutboxMessage.sent_at >= since,
        )
        .order_by(OutboxMessage.sent_at)
    )
    windows: dict[str, list[datetime]] = {}
    for to_user, sent_at in rows.all():
        if sent_at is not None:
            windows.setdefault(to_user, []).append(sent_at)
    return windows


async def sent_since(session: AsyncSession, *, to_user: str, since: datetime) -> list[datetime]:
    """Send times to one user since `since`, oldest first: the pacing window."""
    rows = await session.scalars(
        select(OutboxMessage.sent_at)
        .where(
            OutboxMessage.to_user == to_user,
            OutboxMessage.status == OUTBOX_SENT,
            OutboxMessage.sent_at >= since,
        )
        .order_by(OutboxMessage.sent_at)
    )
    return [t for t in rows.all() if t is not None]


async def next_due(session: AsyncSession) -> datetime | None:
    """The earliest moment anything pending becomes due (or a sending lease ends)."""
    pending = await session.scalar(
        select(func.min(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.status == OUTBOX_PENDING
        )
    )
    leased = await session.scalar(
        select(func.min(OutboxMessage.lease_until)).where(OutboxMessage.status == OUTBOX_SENDING)
    )
    moments = [m for m in (pending, leased) if m is not None]
    return min(moments) if moments else None


async def counts_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    )
    return {status: count for status, count in rows.all()}


@dataclass(frozen=True)
class OwedMessage:
    """One row as the admin sees it in `wecrm outbox list`."""

    id: int
    to_user: str
    msgtype: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime


async def list_unsent(
    session: AsyncSession, *, dead_only: bool = False, limit: int = 50
) -> list[OwedMessage]:
    """Messages not delivered (yet), oldest first: what an operator looks at in an outage."""
    statuses = (OUTBOX_DEAD,) if dead_only else (OUTBOX_PENDING, OUTBOX_SENDING, OUTBOX_DEAD)
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.status.in_(statuses))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    return [
        OwedMessage(
            id=r.id,
            to_user=r.to_user,
            msgtype=r.msgtype,
            status=r.status,
            attempts=r.attempts,
            last_error=r.last_error,
            created_at=r.created_at,
            next_attempt_at=r.next_attempt_at,
        )
        for r in rows.all()
    ]


async def retry_dead(session: AsyncSession, *, ids: list[int] | None, now: datetime) -> list[int]:
    """Dead letters back to pending with a fresh count and age (None: every dead letter).

    The age restarts too, so the relay's give-up-after clock counts from the retry.
    """
    statement = update(OutboxMessage).where(OutboxMessage.status == OUTBOX_DEAD)
    if ids is not None:
        statement = statement.where(OutboxMessage.id.in_(sorted(set(ids))))
    result = await session.execute(
        statement.values(
            status=OUTBOX_PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            last_error=None,
        )
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(result.scalars().all())
