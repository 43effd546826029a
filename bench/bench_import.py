"""Import throughput and a manager's scoped customer list over 100k customers.

    .venv/bin/python bench/bench_import.py [--rows 100000] [--out docs/bench-import.md]

Builds a deterministic .xlsx of customers (names from tests/lookup_corpus.py) with about 2 %
duplicates and 1 % bad rows, imports it into a fresh SQLite file and, when one is reachable,
a fresh PostgreSQL database at 127.0.0.1 (dropped afterwards), then times
customers.list_visible / count_visible for a department leader and a sales director.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

from openpyxl import Workbook
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crm_store import customers, importer, staff  # noqa: E402
from crm_store.migrate import upgrade  # noqa: E402
from crm_store.models import Customer  # noqa: E402
from crm_store.scope import load_scope  # noqa: E402
from crm_store.session import create_engine, session_factory  # noqa: E402
from tests.lookup_corpus import generate_customers  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "WECRM_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
GROUPS = 20
REPS = 400
HEADERS = ["客户名称", "负责人", "行业", "城市", "电话", "联系人", "来源", "标签", "别名"]


@dataclass
class Result:
    backend: str
    rows: int
    seconds: float
    inserted: int
    duplicates: int
    bad_rows: int
    leader_page_ms: float
    leader_count_ms: float
    leader_visible: int
    director_page_ms: float
    director_count_ms: float
    director_visible: int


def make_workbook(path: Path, rows: int, seed: int = 11) -> tuple[int, int]:
    """Write the file; returns (planted duplicates, planted bad rows)."""
    rng = random.Random(seed)
    n_dup = rows * 2 // 100
    n_bad = rows // 100
    base = generate_customers(rows - n_dup - n_bad, seed=seed)
    lines: list[list[object]] = []
    for i, customer in enumerate(base):
        phone = f"13{i:09d}" if rng.random() < 0.6 else ""
        lines.append(
            [
                customer.name,
                customer.owner_id if rng.random() < 0.9 else "",
                rng.choice(["制造", "零售", "物流", "软件", "医药", ""]),
                rng.choice(["杭州", "上海", "深圳", "成都", ""]),
                phone,
                f"联系人{i}" if rng.random() < 0.5 else "",
                rng.choice(["展会", "官网", "转介绍", ""]),
                rng.choice(["重点", "VIP,老客户", "", ""]),
                "、".join(customer.aliases),
            ]
        )
    for _ in range(n_dup):  # same company, written another way
        original = rng.choice(lines[: len(base)])
        name = str(original[0])
        variant = "北京" + name if rng.random() < 0.5 else name.replace("有限公司", "公司")
        lines.append([variant, original[1], "", "", "", "", "", "", ""])
    for k in range(n_bad):
        kind = k % 3
        if kind == 0:
            lines.append(["", f"rep{k % REPS:03d}", "", "", "", "", "", "", ""])
        elif kind == 1:
            lines.append([f"坏行公司{k}有限公司", "nobody-here", "", "", "", "", "", "", ""])
        else:
            lines.append([f"坏电话公司{k}有限公司", "", "", "", "12345", "", "", "", ""])
    rng.shuffle(lines)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(HEADERS)
    for line in lines:
        sheet.append(line)
    workbook.save(path)
    return n_dup, n_bad


async def seed_org(url: str) -> None:
    """Sales (2) with GROUPS groups; a leader per group, a director leading sales."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as session:
        await staff.upsert_department(session, department_id=1, name="公司", parent_id=0, now=NOW)
        await staff.upsert_department(
            session, department_id=2, name="销售部", parent_id=1, now=NOW
        )
        for g in range(GROUPS):
            await staff.upsert_department(
                session, department_id=10 + g, name=f"销售{g + 1}组", parent_id=2, now=NOW
            )
        for r in range(REPS):
            group = 10 + r % GROUPS
            await staff.upsert_staff(
                session, userid=f"rep{r:03d}", name=f"销售{r:03d}", department_ids=[group], now=NOW
            )
        for g in range(GROUPS):
            await staff.upsert_staff(
                session,
                userid=f"lead{g:02d}",
                name=f"组长{g:02d}",
                department_ids=[10 + g],
                leader_in=[10 + g],
                now=NOW,
            )
        await staff.upsert_staff(
            session, userid="director", name="总监", department_ids=[2], leader_in=[2], now=NOW
        )
        await session.commit()
    await engine.dispose()


async def timed_list(url: str, userid: str) -> tuple[float, float, int]:
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as session:
        scope = await load_scope(session, userid, now=NOW)
        assert scope is not None
        await customers.list_visible(session, scope, limit=50)  # warm the plan cache
        start = time.perf_counter()
        page = await customers.list_visible(session, scope, limit=50)
        page_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        count = await customers.count_visible(session, scope)
        count_ms = (time.perf_counter() - start) * 1000
        assert len(page) == min(50, count)
    await engine.dispose()
    return page_ms, count_ms, count


async def run_backend(backend: str, url: str, path: Path, rows: int) -> Result:
    await asyncio.to_thread(upgrade, url)
    await seed_org(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as session:
        start = time.perf_counter()
        report = await importer.import_customers(session, path=path, actor_id="bench", now=NOW)
        await session.commit()
        seconds = time.perf_counter() - start
        stored = await session.scalar(select(func.count()).select_from(Customer))
        assert stored == report.inserted, (stored, report.inserted)
    if backend == "PostgreSQL":
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    await engine.dispose()
    leader = await timed_list(url, "lead00")
    director = await timed_list(url, "director")
    return Result(
        backend,
        rows,
        seconds,
        report.inserted,
        len(report.duplicates),
        len(report.bad_rows),
        *leader,
        *director,
    )


def pg_reachable() -> bool:
    parsed = urlparse(PG_ADMIN_URL)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5432), 1):
            return True
    except OSError:
        return False


async def pg_database(name: str, *, drop_only: bool = False) -> str:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if not drop_only:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return urlparse(PG_ADMIN_URL)._replace(path=f"/{name}").geturl()


def table(results: list[Result], planted: tuple[int, int], build_seconds: float) -> str:
    lines = [
        f"Import of {results[0].rows:,} customer rows from .xlsx (planted: {planted[0]:,} "
        f"duplicates, {planted[1]:,} bad rows; building the file took {build_seconds:.1f} s).",
        "",
        "| backend | import s | rows/s | inserted | duplicates | bad rows "
        "| leader list ms | leader count ms (visible) | director list ms "
        "| director count ms (visible) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.seconds:.1f} | {r.rows / r.seconds:,.0f} | {r.inserted:,} "
            f"| {r.duplicates:,} | {r.bad_rows:,} | {r.leader_page_ms:.1f} "
            f"| {r.leader_count_ms:.1f} ({r.leader_visible:,}) | {r.director_page_ms:.1f} "
            f"| {r.director_count_ms:.1f} ({r.director_visible:,}) |"
        )
    lines += [
        "",
        "list = customers.list_visible(limit=50, most recently updated first); count = "
        "customers.count_visible. Leader: one of 20 sales groups (本部门及下属); director: "
        "leader of the sales department above all groups.",
    ]
    return "\n".join(lines) + "\n"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "customers.xlsx"
        start = time.perf_counter()
        planted = make_workbook(path, args.rows)
        build_seconds = time.perf_counter() - start
        results = [
            await run_backend("SQLite", f"sqlite:///{workdir / 'bench.db'}", path, args.rows)
        ]
        if not args.no_pg and pg_reachable():
            name = f"wecrm_bench_{os.getpid()}"
            url = await pg_database(name)
            try:
                results.append(await run_backend("PostgreSQL", url, path, args.rows))
            finally:
                await pg_database(name, drop_only=True)
    markdown = table(results, planted, build_seconds)
    print(markdown)
    if args.out:
        args.out.write_text(markdown, encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
