"""Inbox repository: accept callbacks once (in batches), claim with a lease, finish exactly once.

Per-user order: a row can be claimed only while it is the oldest unfinished row of its user,
so two workers never run one person's messages side by side ("2" answers the list before it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Result,
    String,
    and_,
    case,
    exists,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.util import AliasedClass

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


def _claimable(
    now: datetime, row: type[InboxMessage] | AliasedClass[InboxMessage] = InboxMessage
) -> ColumnElement[bool]:
    """Ready (pending, or its lease ran out) and the oldest unfinished row of its user."""
    earlier = aliased(InboxMessage)
    is_head = ~exists().where(
        earlier.user_id == row.user_id,
        earlier.status.in_(_UNFINISHED),
        earlier.id < row.id,
    )
    ready = or_(
        row.status == INBOX_PENDING,
        and_(row.status == INBOX_PROCESSING, row.lease_until < now),
    )
    # Literal, so that both databases see the partial index's own predicate (0006).
    unfinished = row.status.in_([literal_column("'pending'"), literal_column("'processing'")])
    return and_(unfinished, ready, is_head)


def _claimed(row: InboxMessage, worker_id: str) -> ClaimedMessage:
    return ClaimedMessage(
        id=row.id,
        dedup_key=row.dedup_key,
        user_id=row.user_id,
        kind=row.kind,
        payload=row.payload,
        attempts=row.attempts,
        lease_owner=worker_id,
    )


async def claim_batch(
    session: AsyncSession,
    *,
    worker_id: str,
    now: datetime,
    lease: timedelta,
    max_attempts: int,
    limit: int,
) -> list[ClaimedMessage]:
    """Claim the heads of up to `limit` users in one statement; the caller commits right after.

    Every claimed row is its user's oldest unfinished one, so a batch never holds two messages
    of one person. A row claimed more than `max_attempts` times killed its worker each time:
    it is parked as failed instead of being handed out again.
    """
    # An alias, so that the subquery is not correlated to the UPDATE's own table.
    candidate = aliased(InboxMessage)
    heads = (
        select(candidate.id).where(_claimable(now, candidate)).order_by(candidate.id).limit(limit)
    )
    if supports_skip_locked(session):
        heads = heads.with_for_update(skip_locked=True, of=candidate)
    # A materialized CTE runs once: as an IN-subquery, PostgreSQL may run it per outer row,
    # and SKIP LOCKED then yields different rows each time (more than `limit` get claimed).
    chosen = heads.cte("heads").prefix_with("MATERIALIZED", dialect="postgresql")
    result = await session.execute(
        update(InboxMessage)
        .where(InboxMessage.id.in_(select(chosen.c.id)), _claimable(now))
        .values(
            status=INBOX_PROCESSING,
            lease_owner=worker_id,
            lease_until=now + lease,
            attempts=InboxMessage.attempts + 1,
        )
        .returning(InboxMessage)
        .execution_options(synchronize_session=False)
    )
    rows = sorted(result.scalars().all(), key=lambda r: r.id)
    poison = [r for r in rows if r.attempts > max_attempts]
    for row in poison:
        await session.execute(
            update(InboxMessage)
            .where(InboxMessage.id == row.id, InboxMessage.lease_owner == worker_id)
            .values(
                status=INBOX_FAILED,
                finished_at=now,
                lease_owner=None,
                lease_until=None,
                error=f"abandoned after {row.attempts - 1} attempts (worker stopped each time)",
            )
        )
    return [_claimed(r, worker_id) for r in rows if r.attempts <= max_attempts]


async def claim_next(
    session: AsyncSession,
    *,
    worker_id: str,
    now: datetime,
    lease: timedelta,
    max_attempts: int,
    batch: int = 8,
) -> ClaimedMessage | None:
    """Claim the oldest claimable message (None also when it parked a poison message)."""
    claimed = await claim_batch(
        session,
        worker_id=worker_id,
        now=now,
        lease=lease,
        max_attempts=max_attempts,
        limit=min(batch, 1),
    )
    return claimed[0] if claimed else None


def _held(message: ClaimedMessage) -> ColumnElement[bool]:
    """Still ours: processing and leased to this worker. A lease that ran out but that nobody
    took over still counts (on SQLite, nobody can while our transaction holds the writer)."""
    return and_(
        InboxMessage.id == message.id,
        InboxMessage.status == INBOX_PROCESSING,
        InboxMessage.lease_owner == message.lease_owner,
    )


async def renew(
    session: AsyncSession, *, worker_id: str, ids: Iterable[int], now: datetime, lease: timedelta
) -> set[int]:
    """Extend this worker's leases on `ids` (its heartbeat); returns the ids it still holds."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    result = await session.execute(
        update(InboxMessage)
        .where(
            InboxMessage.id.in_(wanted),
            InboxMessage.status == INBOX_PROCESSING,
            InboxMessage.lease_owner == worker_id,
        )
        .values(lease_until=now + lease)
        .returning(InboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    return set(result.scalars().all())


async def release(session: AsyncSession, *, worker_id: str, ids: Iterable[int] | None) -> int:
    """Hand messages back untouched (a worker shutting down): claimable again at once, and
    the attempt does not count, since nothing of it was committed."""
    owned = and_(InboxMessage.status == INBOX_PROCESSING, InboxMessage.lease_owner == worker_id)
    if ids is not None:
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        owned = and_(owned, InboxMessage.id.in_(wanted))
    result = await session.execute(
        update(InboxMessage)
        .where(owned)
        .values(
            status=INBOX_PENDING,
            lease_owner=None,
            lease_until=None,
            attempts=case((InboxMessage.attempts > 0, InboxMessage.attempts - 1), else_=0),
        )
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


DEFERRED_OWNER: Final = "deferred"


async def defer(
    session: AsyncSession,
    *,
    worker_id: str,
    ids: Iterable[int],
    until: datetime,
    count_attempt: bool = False,
) -> int:
    """Hand messages back to be tried again at `until` (a dependency such as WeCom's user/get
    is away): nobody claims them before, order is kept, and the attempt counts only when
    asked (an unexpected error: after max_attempts the message is parked, not retried forever)."""
    wanted = sorted(set(ids))
    if not wanted:
        return 0
    result = await session.execute(
        update(InboxMessage)
        .where(
            InboxMessage.status == INBOX_PROCESSING,
            InboxMessage.lease_owner == worker_id,
            InboxMessage.id.in_(wanted),
        )
        .values(
            lease_owner=DEFERRED_OWNER,
            lease_until=until,
            attempts=InboxMessage.attempts
            if count_attempt
            else case((InboxMessage.attempts > 0, InboxMessage.attempts - 1), else_=0),
        )
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


async def mark_done(session: AsyncSession, *, message: ClaimedMessage, now: datetime) -> None:
    """Finish inside the handler's transaction; raises LeaseLost if another worker took it over."""
    result = await session.execute(
        update(InboxMessage)
        .where(_held(message))
        .values(status=INBOX_DONE, finished_at=now, lease_owner=None, lease_until=None, error=None)
    )
    if _rowcount(result) != 1:
        raise LeaseLost(message.dedup_key)


async def mark_failed(
    session: AsyncSession, *, message: ClaimedMessage, now: datetime, error: str
) -> bool:
    """Record a handler error; False if another worker owns the message by now."""
    result = await session.execute(
        update(InboxMessage)
        .where(_held(message))
        .values(
            status=INBOX_FAILED,
            finished_at=now,
            lease_owner=None,
            lease_until=None,
            error=error[:4000],
        )
    )
    return _rowcount(result) == 1


def _rowcount(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


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
