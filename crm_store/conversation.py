"""Conversation slots with expiry, written in the same transaction as the message's effects."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.dialect import dialect_name
from crm_store.models.chat import ConversationState, LearnedPick


async def put(
    session: AsyncSession,
    *,
    user_id: str,
    slot: str,
    value: dict[str, Any],
    expires_at: datetime,
    now: datetime,
) -> None:
    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    stmt = insert(ConversationState).values(
        user_id=user_id, slot=slot, value=value, expires_at=expires_at, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["user_id", "slot"],
        set_={"value": value, "expires_at": expires_at, "updated_at": now},
    )
    await session.execute(stmt)


async def get(
    session: AsyncSession, *, user_id: str, slot: str, now: datetime
) -> dict[str, Any] | None:
    """The slot's value, or None when unset or expired."""
    row = await session.get(ConversationState, (user_id, slot))
    if row is None or row.expires_at <= now:
        return None
    return dict(row.value)


async def live_slots(
    session: AsyncSession, *, user_id: str, slots: Collection[str], now: datetime
) -> list[tuple[str, dict[str, Any], datetime]]:
    """(slot, value, updated_at) of the named slots that hold a value now, newest first."""
    if not slots:
        return []
    rows = await session.execute(
        select(ConversationState.slot, ConversationState.value, ConversationState.updated_at)
        .where(
            ConversationState.user_id == user_id,
            ConversationState.slot.in_(sorted(slots)),
            ConversationState.expires_at > now,
        )
        .order_by(ConversationState.updated_at.desc(), ConversationState.slot)
    )
    return [(slot, dict(value), updated) for slot, value, updated in rows.all()]


async def clear(session: AsyncSession, *, user_id: str, slot: str) -> None:
    await session.execute(
        delete(ConversationState).where(
            ConversationState.user_id == user_id, ConversationState.slot == slot
        )
    )


async def remember_pick(
    session: AsyncSession, *, user_id: str, query: str, customer_id: int, now: datetime
) -> None:
    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    stmt = insert(LearnedPick).values(
        user_id=user_id, query=query[:100], customer_id=customer_id, hits=1, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["user_id", "query", "customer_id"],
        set_={"hits": LearnedPick.hits + 1, "updated_at": now},
    )
    await session.execute(stmt)


async def learned_for(session: AsyncSession, *, user_id: str, query: str) -> dict[int, float]:
    """Customer ids this person picked for these exact words, weighted by how often."""
    rows = await session.execute(
        select(LearnedPick.customer_id, LearnedPick.hits).where(
            LearnedPick.user_id == user_id, LearnedPick.query == query[:100]
        )
    )
    return {customer_id: float(hits) for customer_id, hits in rows.all()}
