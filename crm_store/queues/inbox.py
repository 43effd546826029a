"""Inbox repository: accept callbacks once (in batches), claim with a lease, finish exactly once.

Per-user order: a row can be claimed only while it is the oldest unfinished row of its user,
so two workers never run one person's messages side by side ("2" answers the list before it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, String, and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from crm_store.dialect import insert_ignore, supports_skip_locked
from crm_store.models.messaging import (
    INBOX_DONE,
    INBOX_FAILED,
    INBOX_PENDING,
    INBOX_PROCESSING,
    InboxMessage,
)

_UNFINISHED = (INBOX_PENDING, INBOX_PROCESSING)


def _column_length(name: str) -> int:
    column_type = InboxMessage.__table__.c[name].type
    assert isinstance(column_type, String) and column_type.length is not None
    return column_type.length


MAX_DEDUP_KEY: Final = _column_length("dedup_key")
MAX_USER_ID: Final = _column_length("user_id")
MAX_KIND: Final = _column_length("kind")


def bounded_dedup_key(key: str) -> str:
    """The key as stored: readable when it fits the column, else "h:" + sha256 (any MsgId works).

    Idempotent, and a digest can never equal a raw key (those start with "msg:" or "evt:").
    """
    if len(key) <= MAX_DEDUP_KEY:
        return key
    return "h:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class NewMessage:
    """One delivered callback, as the ack path hands it to the inbox."""

    dedup_key: str
    user_id: str
    kind: str
    payload: str


@dataclass(frozen=True)
class ClaimedMessage:
    id: int
    dedup_key: str
    user_id: str
    kind: str
    payload: str
    attempts: int
    lease_owner: str


class LeaseLost(Exception):
    """Another worker took this message after our lease ran out: our effects must roll back."""


async def accept(
    session: AsyncSession | AsyncConnection,
    *,
    dedup_key: str,
    user_id: str,
    kind: str,
    payload: str,
    now: datetime,
) -> bool:
    """Insert a delivered message; False when this key was already accepted (a WeCom retry)."""
    message = NewMessage(dedup_key=dedup_key, user_id=user_id, kind=kind, payload=payload)
    return bool(await accept_many(session, [message], now=now))


async def accept_many(
    session: AsyncSession | AsyncConnection, messages: Sequence[NewMessage], *, now: datetime
) -> set[str]:
    """Insert a batch in one statement, in the caller's transaction; return the keys that were new.

    A key twice in the batch is one row; a key already stored is skipped (ON CONFLICT DO
    NOTHING ... RETURNING, which SQLite >= 3.35 and PostgreSQL both have).
    """
    rows: dict[str, dict[str, Any]] = {}
    for message in messages:
        key = bounded_dedup_key(message.dedup_key)
        rows.setdefault(
            key,
            {
                "dedup_key": key,
                "user_id": message.user_id[:MAX_USER_ID],
                "kind": message.kind[:MAX_KIND],
                "payload": message.payload,
                "status": INBOX_PENDING,
                "attempts": 0,
                "received_at": now,
            },
        )
    if not rows:
        return set()
    stmt = (
        insert_ignore(session, InboxMessage.__table__, ["dedup_key"])
        .values(list(rows.values()))
        .returning(InboxMessage.__table__.c.dedup_key)
    )
    result = await session.execute(stmt)
    return set(result.scalars().all())


def _claimable(now: datetime) -> ColumnElement[bool]:
    earlier = aliased(InboxMessage)
    is_head = ~exists().where(
        earlier.user_id == InboxMessage.user_id,
        earlier.status.in_(_UNFINISHED),
        earlier.id < InboxMessage.id,
    )
    ready = or_(
        InboxMessage.status == INBOX_PENDING,
        and_(InboxMessage.status == INBOX_PROCESSING, InboxMessage.lease_until < now),
    )
    return and_(ready, is_head)


async def claim_next(
    session: AsyncSession,
    *,
    worker_id: str,
    now: datetime,
    lease: timedelta,
    max_attempts: int,
    batch: int = 8,
) -> ClaimedMessage | None:
    """Claim the oldest claimable message; the caller commits the session right after."""
    query = (
        select(InboxMessage.id, InboxMessage.attempts)
        .where(_claimable(now))
        .order_by(InboxMessage.id)
        .limit(batch)
    )
    if supports_skip_locked(session):
        query = query.with_for_update(skip_locked=True, of=InboxMessage)
    for row_id, attempts in (await session.execute(query)).all():
        if attempts >= max_attempts:
            # A message that killed its worker max_attempts times is poison: park it.
            await session.execute(
                update(InboxMessage)
                .where(InboxMessage.id == row_id, _claimable(now))
                .values(
                    status=INBOX_FAILED,
                    finished_at=now,
                    lease_owner=None,
                    error=f"abandoned after {attempts} attempts (worker stopped each time)",
                )
            )
            continue
        claimed = await session.execute(
            update(InboxMessage)
            .where(InboxMessage.id == row_id, _claimable(now))
            .values(
                status=INBOX_PROCESSING,
                lease_owner=worker_id,
                lease_until=now + lease,
                attempts=InboxMessage.attempts + 1,
            )
            .returning(InboxMessage)
        )
        row = claimed.scalar_one_or_none()
        if row is not None:
            return ClaimedMessage(
                id=row.id,
                dedup_key=row.dedup_key,
                user_id=row.user_id,
                kind=row.kind,
                payload=row.payload,
                attempts=row.attempts,
                lease_owner=worker_id,
            )
    return None


async def mark_done(session: AsyncSession, *, message: ClaimedMessage, now: datetime) -> None:
    """Finish inside the handler's transaction; raises LeaseLost if the claim moved on."""
    result = await session.execute(
        update(InboxMessage)
        .where(
            InboxMessage.id == message.id,
            InboxMessage.status == INBOX_PROCESSING,
            InboxMessage.lease_owner == message.lease_owner,
        )
        .values(status=INBOX_DONE, finished_at=now, lease_owner=None, lease_until=None, error=None)
    )
    if result.rowcount != 1:
        raise LeaseLost(message.dedup_key)


async def mark_failed(
    session: AsyncSession, *, message: ClaimedMessage, now: datetime, error: str
) -> bool:
    """Record a handler error; False if another worker owns the message by now."""
    result = await session.execute(
        update(InboxMessage)
        .where(
            InboxMessage.id == message.id,
            InboxMessage.status == INBOX_PROCESSING,
            InboxMessage.lease_owner == message.lease_owner,
        )
        .values(
            status=INBOX_FAILED,
            finished_at=now,
            lease_owner=None,
            lease_until=None,
            error=error[:4000],
        )
    )
    return result.rowcount == 1


async def has_claimable(session: AsyncSession, *, now: datetime) -> bool:
    return bool(await session.scalar(select(exists().where(_claimable(now)))))


async def next_lease_expiry(session: AsyncSession) -> datetime | None:
    """When the earliest running lease ends: the latest moment to look again for dead workers."""
    return await session.scalar(
        select(InboxMessage.lease_until)
        .where(InboxMessage.status == INBOX_PROCESSING)
        .order_by(InboxMessage.lease_until)
        .limit(1)
    )
