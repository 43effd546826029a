"""Shared pieces of the benchmarks: credentials, percentiles, machine description, PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
from datetime import UTC, datetime

from sqlalchemy import text

from crm_store.session import create_engine

BENCH_CREDS: dict[str, str] = {
    "WECOM_CORP_ID": "wwbench000000000001",
    "WECOM_AGENT_ID": "1000002",
    "WECOM_SECRET": "bench-secret-not-a-real-one-0123456789",
    "WECOM_TOKEN": "benchToken",
    "WECOM_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
}
PG_ADMIN_URL = os.environ.get(
    "WECRM_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(samples: list[float]) -> tuple[float, float, float]:
    """p50, p99 and mean in milliseconds of samples in seconds."""
    return (
        percentile(samples, 50) * 1000,
        percentile(samples, 99) * 1000,
        statistics.fmean(samples) * 1000 if samples else float("nan"),
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = f"{models[0]} x{len(models)}" if models else cpu
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    return (
        f"{platform.node()}: {cpu}{mem}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def fresh_pg_database(name: str) -> str:
    """Drop and create a PostgreSQL database for one benchmark; returns its URL."""
    from urllib.parse import urlparse

    async def recreate() -> None:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()

    asyncio.run(recreate())
    return urlparse(PG_ADMIN_URL)._replace(path=f"/{name}").geturl()
