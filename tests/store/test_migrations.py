"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from crm_store.migrate import alembic_config, current_revision, head_revision, upgrade
from crm_store.models import Base
from crm_store.session import create_engine


def _differences(url: str) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:

                def compare(sync_connection: Connection) -> list[Any]:
                    context = MigrationContext.configure(
                        sync_connection, opts={"compare_type": True}
                    )
                    return list(compare_metadata(context, Base.metadata))

                return await connection.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(url: str) -> set[str]:
    async def run() -> set[str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_migrated_database_matches_the_models(db_url: str) -> None:
    assert asyncio.run(current_revision(db_url)) == head_revision()
    assert _differences(db_url) == []


def test_downgrade_to_base_and_upgrade_again_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    upgrade(url)
    assert {"customers", "staff", "tickets", "audit_log"} <= _tables(url)
    command.downgrade(alembic_config(url), "0001")
    assert _tables(url) & {"customers", "staff", "tickets"} == set()
    command.downgrade(alembic_config(url), "base")
    assert _tables(url) <= {"alembic_version"}
    upgrade(url)
    assert asyncio.run(current_revision(url)) == head_revision()
    assert _differences(url) == []
