"""The few statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def insert_ignore(session: AsyncSession, table: Table | Any, conflict_columns: list[str]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, the primitive behind every exactly-once write."""
    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=conflict_columns)


def supports_skip_locked(session: AsyncSession) -> bool:
    return dialect_name(session) == "postgresql"
