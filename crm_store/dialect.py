"""The few statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def dialect_name(executor: AsyncSession | AsyncConnection) -> str:
    if isinstance(executor, AsyncConnection):
        return executor.dialect.name
    return executor.get_bind().dialect.name


def insert_ignore(
    session: AsyncSession | AsyncConnection, table: Table | Any, conflict_columns: list[str]
) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, the primitive behind every exactly-once write."""
    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=conflict_columns)


def supports_skip_locked(session: AsyncSession | AsyncConnection) -> bool:
    return dialect_name(session) == "postgresql"


def affected_rows(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched (SQLAlchemy types rowcount on CursorResult only)."""
    return cast("CursorResult[Any]", result).rowcount
