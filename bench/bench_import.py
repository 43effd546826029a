"""Import throughput and a manager's scoped customer list over 100k customers.

    .venv/bin/python -m bench.bench_import [--rows 100000] [--out docs/bench-import.md]

Builds a deterministic .xlsx of customers (names from bench/corpus.py) with about 2 %
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
import tempfile
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse
from xml.sax.saxutils import escape

from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]
from sqlalchemy import func, select, text

from bench.corpus import generate_customers
from crm_store import customers, staff
from crm_store.io import importer
from crm_store.migrate import upgrade
from crm_store.models import Customer
from crm_store.scope import load_scope
from crm_store.session import create_engine, session_factory

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
    file: str
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


def make_rows(rows: int, seed: int = 11) -> tuple[list[list[object]], int, int]:
    """The sheet's rows (header excluded), planted duplicates and planted bad rows."""
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
    for _ in range(n_dup):  # the same company written another way
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
    return lines, n_dup, n_bad


def write_openpyxl(path: Path, lines: list[list[object]]) -> None:
    """openpyxl's writer stores every string inline in the sheet, which is slow to read back."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(HEADERS)
    for line in lines:
        sheet.append(line)
    workbook.save(path)


_NS = "http://schemas.openxmlformats.org"
_PARTS = {
    "[Content_Types].xml": (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
        'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
        'worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
    ),
    "_rels/.rels": (
        f'<Relationships xmlns="{_NS}/package/2006/relationships"><Relationship Id="rId1" '
        f'Type="{_NS}/officeDocument/2006/relationships/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        f'<workbook xmlns="{_NS}/spreadsheetml/2006/main" '
        f'xmlns:r="{_NS}/officeDocument/2006/relationships"><sheets>'
        '<sheet name="客户" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        f'<Relationships xmlns="{_NS}/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_NS}/officeDocument/2006/relationships/worksheet" '
        'Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_NS}/officeDocument/2006/relationships/sharedStrings" '
        'Target="sharedStrings.xml"/></Relationships>'
    ),
}


def write_excel_like(path: Path, lines: list[list[object]]) -> None:
    """A sheet with a shared-string table, the way Excel and WPS save one."""
    strings: dict[str, int] = {}
    rows = []
    table: list[list[object]] = [list(HEADERS), *lines]
    for number, line in enumerate(table, start=1):
        cells = []
        for column, value in enumerate(line, start=1):
            if value in (None, ""):
                continue
            index = strings.setdefault(str(value), len(strings))
            cells.append(f'<c r="{get_column_letter(column)}{number}" t="s"><v>{index}</v></c>')
        rows.append(f'<row r="{number}">{"".join(cells)}</row>')
    sheet = (
        f'<worksheet xmlns="{_NS}/spreadsheetml/2006/main">'
        f'<dimension ref="A1:{get_column_letter(len(HEADERS))}{len(lines) + 1}"/>'
        f"<sheetData>{''.join(rows)}</sheetData></worksheet>"
    )
    shared = (
        f'<sst xmlns="{_NS}/spreadsheetml/2006/main" count="{len(strings)}" '
        f'uniqueCount="{len(strings)}">'
        + "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
        + "</sst>"
    )
    header = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in {
            **_PARTS,
            "xl/worksheets/sheet1.xml": sheet,
            "xl/sharedStrings.xml": shared,
        }.items():
            archive.writestr(name, header + body)


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


async def run_backend(backend: str, url: str, path: Path, file: str, rows: int) -> Result:
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
        file,
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


def table(results: list[Result], planted: tuple[int, int]) -> str:
    lines = [
        f"Import of {results[0].rows:,} customer rows from one .xlsx sheet (planted: "
        f"{planted[0]:,} duplicates, {planted[1]:,} bad rows), then the scoped customer list "
        f"over the result. {os.cpu_count()} CPUs.",
        "",
        "| backend | file | import s | rows/s | inserted | duplicates | bad rows "
        "| leader list ms | leader count ms (visible) | director list ms "
        "| director count ms (visible) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.file} | {r.seconds:.1f} | {r.rows / r.seconds:,.0f} "
            f"| {r.inserted:,} | {r.duplicates:,} | {r.bad_rows:,} | {r.leader_page_ms:.1f} "
            f"| {r.leader_count_ms:.1f} ({r.leader_visible:,}) | {r.director_page_ms:.1f} "
            f"| {r.director_count_ms:.1f} ({r.director_visible:,}) |"
        )
    lines += [
        "",
        "Files: *shared strings* is how Excel and WPS save a sheet; *inline strings* is how "
        "openpyxl writes one, about twice as slow to read. Import time includes reading the "
        "file, dedup, bad-row checks, pinyin keys, inserting customers, contacts and owner "
        "history, and the commit. list = customers.list_visible(limit=50, most recently "
        "updated first); count = customers.count_visible. Leader: one of 20 sales groups "
        "(本部门及下属); director: leader of the sales department above all groups.",
    ]
    return "\n".join(lines) + "\n"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args()
    lines, n_dup, n_bad = make_rows(args.rows)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        excel = workdir / "customers-excel.xlsx"
        write_excel_like(excel, lines)
        inline = workdir / "customers-openpyxl.xlsx"
        write_openpyxl(inline, lines)
        for number, (path, label) in enumerate(
            ((excel, "shared strings"), (inline, "inline strings"))
        ):
            url = f"sqlite:///{workdir / f'bench{number}.db'}"
            results.append(await run_backend("SQLite", url, path, label, args.rows))
        if not args.no_pg and pg_reachable():
            name = f"wecrm_bench_{os.getpid()}"
            url = await pg_database(name)
            try:
                results.append(
                    await run_backend("PostgreSQL", url, excel, "shared strings", args.rows)
                )
            finally:
                await pg_database(name, drop_only=True)
    markdown = table(results, (n_dup, n_bad))
    print(markdown)
    if args.out:
        args.out.write_text(markdown, encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
