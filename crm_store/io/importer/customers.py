"""Customers: exact, phone and near-identical-name duplicates against the database and the
file itself; pinyin keys computed in a helper process for big files."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from rapidfuzz import fuzz, process
from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.io.importer.report import ImportReport
from crm_store.io.importer.rows import (
    Flush,
    Known,
    Progress,
    Rejected,
    Row,
    StaffIndex,
    audit_import,
    bulk_insert,
    check_lengths,
    duplicate,
    row_phone,
    run_rows,
)
from crm_store.io.importer.tables import ImportFileError, map_columns, read_table
from crm_store.io.importer.values import core_name, split_list
from crm_store.models.customer import Contact, Customer, CustomerOwnerHistory, OwnerChange
from crm_store.names import pinyin_keys

__all__ = ["CUSTOMER_COLUMNS", "import_customers"]

logger = logging.getLogger(__name__)

FUZZY_CUTOFF = 92.0
PARALLEL_MIN_ROWS = 20_000  # below this, starting the pinyin helper costs more than it saves
# Column synonyms per field, compared after _header_key(); the first one is what export writes.
CUSTOMER_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("名称", "客户名称", "公司名称", "企业名称", "客户", "name", "customer", "company"),
    "owner": ("负责人", "销售", "归属人", "跟进人", "owner", "sales", "userid"),
    "industry": ("行业", "所属行业", "industry"),
    "city": ("城市", "所在城市", "地区", "city"),
    "phone": ("电话", "手机", "手机号", "联系电话", "电话号码", "phone", "mobile", "tel"),
    "contact": ("联系人", "联系人姓名", "contact", "contact name"),
    "source": ("来源", "渠道", "客户来源", "来源渠道", "source", "channel"),
    "tags": ("标签", "tags", "tag", "labels"),
    "aliases": ("别名", "简称", "aliases", "alias"),
    "level": ("级别", "客户级别", "等级", "level", "grade"),
    "status": ("状态", "客户状态", "status"),
}
_NUMERALS = re.compile(r"[0-9零〇一二三四五六七八九十百千万两壹贰叁肆伍陆柒捌玖拾佰仟]+")


def _joined(words: list[str], limit: int) -> str:
    out = ""
    for word in dict.fromkeys(words):
        candidate = f"{out} {word}" if out else word
        if len(candidate) > limit:
            break
        out = candidate
    return out


class _NameIndex:
    """Exact core names and phones, plus buckets for the fuzzy check.

    Near-identical names (ratio ≥ 92) have nearly equal lengths and, unless the edit is right
    at the start, the same first two characters, so each core is filed under (prefix, length)
    and compared only with the cores of neighbouring lengths in its prefix. (Suffixes make
    poor buckets: thousands of cores end in 科技 or 贸易.)
    """

    def __init__(self) -> None:
        self.by_core: dict[str, Known] = {}
        self.by_phone: dict[str, Known] = {}
        self.buckets: dict[tuple[str, int], list[str]] = defaultdict(list)

    def add(self, core: str, known: Known, *, phone: str | None = None) -> None:
        if core and core not in self.by_core:
            self.by_core[core] = known
            if len(core) >= 5:
                self.buckets[(core[:2], len(core))].append(core)
        if phone and phone not in self.by_phone:
            self.by_phone[phone] = known

    def near(self, core: str) -> tuple[Known, float] | None:
        """The most similar known core at ratio ≥ 92 (short cores never get that close)."""
        if len(core) < 5:
            return None
        spread = int(len(core) * 0.09) + 1
        best: tuple[str, float] | None = None
        for length in range(len(core) - spread, len(core) + spread + 1):
            choices = self.buckets.get((core[:2], length))
            if not choices:
                continue
            cutoff = FUZZY_CUTOFF if best is None else best[1]
            numbers = _NUMERALS.findall(core)
            for choice, score, _ in process.extract(
                core, choices, scorer=fuzz.ratio, score_cutoff=cutoff, limit=5
            ):
                # 第一分店 and 第二分店, or 3号厂 and 4号厂, are different places.
                if _NUMERALS.findall(choice) == numbers and (best is None or score > best[1]):
                    best = (choice, score)
                    break
        return None if best is None else (self.by_core[best[0]], best[1])

    def match(self, core: str, phone: str | None) -> Rejected | None:
        """Why this customer is already known, if it is."""
        if core in self.by_core:
            return duplicate(self.by_core[core], "重名（规范化名称相同 same name）", "客户")
        if phone and phone in self.by_phone:
            return duplicate(self.by_phone[phone], f"电话相同 {phone} (same phone)", "客户")
        near = self.near(core)
        if near is not None:
            how = f"名称几乎相同（相似度 {near[1]:.0f} near-identical name）"
            return duplicate(near[0], how, "客户")
        return None


async def _load_customer_index(session: AsyncSession) -> _NameIndex:
    index = _NameIndex()
    rows = await session.execute(
        select(
            Customer.id, Customer.name, Customer.name_core, Customer.owner_id, Customer.phone
        ).order_by(Customer.id)
    )
    for customer_id, name, core, owner_id, phone in rows:
        index.add(core, Known(customer_id, name, owner_id), phone=phone)
    return index


async def import_customers(
    session: AsyncSession,
    *,
    path: Path,
    actor_id: str,
    now: datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a customer list; duplicates and bad rows are reported, never half-written."""
    with read_table(path) as table:
        columns, unknown = map_columns(table.headers, CUSTOMER_COLUMNS)
        if "name" not in columns:
            raise ImportFileError(
                "找不到客户名称列：表头需要「名称」「客户名称」或「name」之一 (no name column)"
            )
        report = ImportReport(kind="customers", unknown_columns=unknown, dry_run=dry_run)
        staff = await StaffIndex.load(session)
        index = await _load_customer_index(session)

        def plan(row: Row) -> dict[str, Any]:
            return _plan_customer(row, staff, index, now)

        async def insert(rows: list[dict[str, Any]]) -> None:
            await _insert_customers(session, rows, actor_id=actor_id, now=now)

        parallel = (table.estimated_rows or 0) >= PARALLEL_MIN_ROWS and not dry_run
        async with _PinyinPipeline(insert, parallel=parallel) as pipeline:
            await run_rows(
                table,
                columns,
                report,
                plan=plan,
                flush=pipeline.put,
                name_field="name",
                progress=progress,
            )
            await pipeline.drain()
    if not dry_run:
        await audit_import(session, report, path=path, actor_id=actor_id, now=now)
    return report


def _plan_customer(
    row: Row, staff: StaffIndex, index: _NameIndex, now: datetime
) -> dict[str, Any]:
    """The insert values for one row; raises Rejected for a bad or duplicate row."""
    name = re.sub(r"\s+", " ", row.text("name"))
    if not name:
        raise Rejected("缺少客户名称 (name is empty)")
    owner_text = row.text("owner")
    owner = staff.resolve(owner_text) if owner_text else None
    phone = row_phone(row)
    values: dict[str, str | None] = {
        key: row.text(key) or None
        for key in ("industry", "city", "contact", "source", "level", "status")
    }
    tags = split_list(row.text("tags"))
    aliases = [a for a in split_list(row.text("aliases")) if a != name]
    check_lengths({"name": name, **values})
    for tag in tags:
        check_lengths({"tag": tag})

    core = core_name(name)
    duplicate = index.match(core, phone)
    if duplicate is not None:
        raise duplicate
    owner_id = owner.userid if owner else None
    index.add(core, Known(None, name, owner_id, row.number), phone=phone)
    return {
        "name": name,
        "name_core": core,
        "pinyin": "",  # filled in by _PinyinPipeline, off the main loop
        "initials": "",
        "aliases": aliases,
        "owner_id": owner_id,
        "department_id": owner.main_department_id if owner else None,
        "industry": values["industry"],
        "city": values["city"],
        "phone": phone,
        "source_channel": values["source"],
        "level": values["level"],
        "status": values["status"],
        "tags": tags,
        # 公海: a customer nobody owns is in the public pool from the start.
        "in_pool": owner is None,
        "pool_entered_at": None if owner else now,
        "created_at": now,
        "updated_at": now,
        "_contact": values["contact"],
    }


_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])
# Runs in a helper process; imports only crm_store.names. ASCII JSON lines both ways, so the
# child's locale does not matter.
_PINYIN_WORKER = """
import json, sys
from crm_store.names import pinyin_keys
for line in sys.stdin:
    sys.stdout.write(json.dumps([pinyin_keys(core) for core in json.loads(line)]) + "\\n")
    sys.stdout.flush()
"""


class _PinyinPipeline:
    """Pinyin keys cost more than everything else an import does per row, so for a big file
    a helper process computes them for one chunk while this one reads, checks and inserts
    the next. A small import, one CPU, or a helper that fails computes them inline."""

    def __init__(self, insert: Flush, *, parallel: bool) -> None:
        self._insert = insert
        self._parallel = parallel and (os.cpu_count() or 1) > 1
        self._worker: asyncio.subprocess.Process | None = None
        self._alive = True
        self._pending: tuple[list[dict[str, Any]], list[str], bool] | None = None

    async def __aenter__(self) -> _PinyinPipeline:
        if self._parallel:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")) if p
            )}  # fmt: skip
            try:
                self._worker = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", _PINYIN_WORKER,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    env=env, limit=1 << 26,
                )  # fmt: skip
            except OSError as exc:
                logger.warning("no pinyin helper process (%s); computing inline", exc)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        worker, self._worker = self._worker, None
        if worker is None:
            return
        if worker.stdin is not None:
            worker.stdin.close()
        if exc_info[0] is not None and worker.returncode is None:
            worker.kill()
        await worker.wait()

    async def put(self, rows: list[dict[str, Any]]) -> None:
        """Hand this chunk's names to the helper, then insert the chunk before it."""
        cores = [row["name_core"] for row in rows]
        sent = False
        if self._worker is not None and self._alive and self._worker.stdin is not None:
            # No drain(): the transport buffers, so a busy helper never blocks our reading.
            self._worker.stdin.write(json.dumps(cores).encode() + b"\n")
            sent = True
        await self.drain()
        self._pending = (rows, cores, sent)

    async def drain(self) -> None:
        """Insert the chunk still waiting for its keys."""
        if self._pending is None:
            return
        rows, cores, sent = self._pending
        self._pending = None
        keys = await self._from_worker() if sent else None
        if keys is None or len(keys) != len(rows):
            keys = [pinyin_keys(core) for core in cores]
        for row, (spellings, initials) in zip(rows, keys, strict=True):
            row["pinyin"] = _joined(spellings, 1000)
            row["initials"] = _joined(initials, 200)
        await self._insert(rows)

    async def _from_worker(self) -> list[tuple[list[str], list[str]]] | None:
        worker = self._worker
        if worker is None or worker.stdout is None or not self._alive:
            return None
        line = await worker.stdout.readline()
        if not line:
            logger.warning("the pinyin helper process exited; computing inline")
            self._alive = False
            return None
        return [(list(full), list(short)) for full, short in json.loads(line)]


async def _insert_customers(
    session: AsyncSession, rows: list[dict[str, Any]], *, actor_id: str, now: datetime
) -> None:
    contacts = [row.pop("_contact") for row in rows]
    # RETURNING id with the core name, unique among the rows an import inserts, so the order
    # of the returned rows does not matter. (Asking for parameter order makes SQLAlchemy
    # insert one row per statement on SQLite; reading ids back by name defeats PostgreSQL's
    # planner on a table that has just grown.)
    table = cast(Table, Customer.__table__)
    returned = await session.execute(insert(table).returning(table.c.name_core, table.c.id), rows)
    id_of: dict[str, int] = {core: customer_id for core, customer_id in returned}
    ids = [id_of[row["name_core"]] for row in rows]
    contact_rows = [
        {"customer_id": customer_id, "name": contact, "phone": row["phone"], "created_at": now}
        for customer_id, row, contact in zip(ids, rows, contacts, strict=True)
        if contact
    ]
    if contact_rows:
        await bulk_insert(session, Contact, contact_rows)
    history = [
        {
            "customer_id": customer_id,
            "from_owner_id": None,
            "to_owner_id": row["owner_id"],
            "reason": OwnerChange.CREATE.value,
            "at": now,
            "by_id": actor_id,
        }
        for customer_id, row in zip(ids, rows, strict=True)
        if row["owner_id"]
    ]
    if history:
        await bulk_insert(session, CustomerOwnerHistory, history)
