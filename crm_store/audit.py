"""One audit row per write: who, what, before and after, and which message caused it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models.audit import AuditEntry

SYSTEM_ACTOR = "system"


def jsonable(value: Any) -> Any:
    """Turn model values into JSON (datetimes as ISO text, Decimals as strings, sets sorted)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    raise TypeError(f"cannot audit a value of type {type(value).__name__}")


def snapshot(row: Any, fields: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The named attributes of a model as JSON, for the before/after of an audit row."""
    return {name: jsonable(getattr(row, name)) for name in fields}


async def record(
    session: AsyncSession,
    *,
    actor_id: str,
    action: str,
    entity: str,
    entity_id: str | int,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    source_key: str | None,
    now: datetime,
) -> AuditEntry:
    """Add the row to the caller's transaction: it commits or rolls back with the write."""
    entry = AuditEntry(
        actor_id=actor_id,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        before=jsonable(before) if before is not None else None,
        after=jsonable(after) if after is not None else None,
        source_key=source_key,
        at=now,
    )
    session.add(entry)
    return entry
