"""Engines and sessions for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

CONNECT_TIMEOUT: Final = 5.0  # seconds to open a PostgreSQL connection
COMMAND_TIMEOUT: Final = 60.0  # seconds for one statement: long enough for an import batch
POOL_TIMEOUT: Final = 10.0  # seconds to wait for a free pooled connection


def async_url(url: str) -> str:
    """Accept the URLs people write (sqlite:///x, postgresql://...) and pick the async driver."""
    parsed = make_url(url)
    driver = {
        "sqlite": "sqlite+aiosqlite",
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
    }.get(parsed.drivername)
    if driver:
        parsed = parsed.set(drivername=driver)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        backend = parsed.get_backend_name()
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine with the settings each backend needs to be safe under concurrent writers."""
    url = async_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        # One connection per process: SQLite has one writer anyway, and waiting in the pool's
        # FIFO queue beats SQLite's busy handler, which sleeps up to 100 ms per retry.
        kwargs.setdefault("pool_size", 1)
        kwargs.setdefault("max_overflow", 0)
        kwargs.setdefault("pool_timeout", 60)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    # No pre-ping: it costs a round trip per checkout on the ack path. A connection that died
    # fails one request (503, so WeCom retries) and the pool replaces it.
    kwargs.setdefault("pool_recycle", 1800)
    # Bounded waits: a server that drops packets must fail a caller, not hang it (asyncpg's
    # own connect timeout is 60 s). Callers with a tighter budget add their own timeout.
    kwargs.setdefault("pool_timeout", POOL_TIMEOUT)
    connect_args = {
        "timeout": CONNECT_TIMEOUT,
        "command_timeout": COMMAND_TIMEOUT,
        **kwargs.pop("connect_args", {}),
    }
    return create_async_engine(url, connect_args=connect_args, **kwargs)


def _configure_sqlite(engine: AsyncEngine) -> None:
    # BEGIN IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
    # writes fails with SQLITE_BUSY instead of waiting when another writer got in between.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
