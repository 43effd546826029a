"""Outbox repository: replies are rows first, WeCom calls later; per-user order is kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

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
    return bool(result.rowcount)


def _claimable(now: datetime) -> ColumnElement[bool]:
    earlier = aliased(OutboxMessage)
    is_head = ~exists().where(
        earlier.to_user == OutboxMessage.to_user,
        earlier.status.in_(_UNFINISHED),
        earlier.id < OutboxMessage.id,
    )
    ready = or_(
        and_(OutboxMessage.status == OUTBOX_PENDING, OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == OUTBOX_SENDING, OutboxMessage.lease_until < now),
    )
    return and_(ready, is_head)


async def claim_due(
    session: AsyncSession, *, relay_id: str, now: datetime, lease: timedelta, limit: int
) -> list[ClaimedReply]:
    """Claim the next due message of up to `limit` different users; the caller commits."""
    query = select(OutboxMessage.id).where(_claimable(now)).order_by(OutboxMessage.id).limit(limit)
    if supports_skip_locked(session):
        query = query.with_for_update(skip_locked=True, of=OutboxMessage)
    ids = list((await session.scalars(query)).all())
    claimed: list[ClaimedReply] = []
    for row_id in ids:
        result = await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, _claimable(now))
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
        )
        row = result.scalar_one_or_none()
        if row is not None:
            claimed.append(
                ClaimedReply(
                    id=row.id,
                    dedup_key=row.dedup_key,
                    to_user=row.to_user,
                    msgtype=row.msgtype,
                    payload=dict(row.payload),
                    attempts=row.attempts,
                    uncertain=row.uncertain,
                    lease_owner=relay_id,
                )
            )
    return claimed


def _owned(reply: ClaimedReply) -> ColumnElement[bool]:
    return and_(
        OutboxMessage.id == reply.id,
        OutboxMessage.status == OUTBOX_SENDING,
        OutboxMessage.lease_owner == reply.lease_owner,
    )


async def mark_sent(
    session: AsyncSession,
    *,
    reply: ClaimedReply,
    now: datetime,
    wecom_msgid: str | None,
    response_code: str | None,
) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(_owned(reply))
        .values(
            status=OUTBOX_SENT,
            sent_at=now,
            lease_owner=None,
            lease_until=None,
            wecom_msgid=wecom_msgid,
            response_code=response_code,
            last_error=None,
        )
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
