"""Shared fixtures: real SQLite and PostgreSQL databases, real Redis, a fake clock.

Every database test runs on both backends. PostgreSQL and Redis must be running (the test
command `make test` starts them when it can); a missing service fails loudly instead of
silently shrinking the suite.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_store.clock import FakeClock
from crm_store.migrate import upgrade
from crm_store.models import Base
from crm_store.session import create_engine, session_factory

PG_ADMIN_URL = os.environ.get(
    "WECRM_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PG_TEST_DB = os.environ.get("WECRM_TEST_PG_DB", "wecrm_test")
REDIS_URL = os.environ.get("WECRM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1
        ):
            return True
    except OSError:
        return False


def _require(url: str, port: int, what: str) -> None:
    if not _reachable(url, port):
        pytest.fail(
            f"{what} is not reachable at {urlparse(url).netloc}: start it (make test "
            f"does) or point the WECRM_TEST_* variables at one",
            pytrace=False,
        )


def _pg_url(database: str) -> str:
    parsed = urlparse(PG_ADMIN_URL)
    return parsed._replace(path=f"/{database}").geturl()


@pytest.fixture(scope="session")
def pg_test_url() -> Iterator[str]:
    """A dedicated, freshly migrated PostgreSQL database for this test session."""
    _require(PG_ADMIN_URL, 5432, "PostgreSQL")
    # A database per test process, so two runs on one machine never collide.
    database = f"{PG_TEST_DB}_{os.getpid()}"

    async def _recreate() -> None:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{database}"'))
        await admin.dispose()

    asyncio.run(_recreate())
    url = _pg_url(database)
    upgrade(url)
    yield url

    async def _drop() -> None:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        await admin.dispose()

    asyncio.run(_drop())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied per test: migrations run once, tests stay isolated."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL, once per backend."""
    if request.param == "sqlite":
        target = tmp_path / "wecrm.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    url = request.getfixturevalue("pg_test_url")
    _truncate_pg(url)
    yield url


def _truncate_pg(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)

    async def _run() -> None:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await engine.dispose()

    asyncio.run(_run())


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def redis_available() -> str:
    _require(REDIS_URL, 6379, "Redis")
    return REDIS_URL


@pytest.fixture
async def redis_url(redis_available: str) -> AsyncIterator[str]:
    """A real Redis database, emptied before and after the test."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_available)
    await client.flushdb()
    yield redis_available
    await client.flushdb()
    await client.aclose()


@pytest.fixture(autouse=True)
def _no_real_wecom(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to reach the real WeCom, like PTB's OfflineRequest."""
    real_getaddrinfo = socket.getaddrinfo

    def guarded(host: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if isinstance(host, str | bytes) and "weixin.qq.com" in str(host):
            raise AssertionError(f"a test tried to reach the real WeCom ({host!r})")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
