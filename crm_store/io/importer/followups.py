"""Follow-up history onto existing customers; future next steps become to-dos, as in chat."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import config_data
from crm_store.followups import task_key
from crm_store.io.importer.report import ImportReport
from crm_store.io.importer.rows import (
    IMPORT_KEY_PREFIX,
    Known,
    Progress,
    Rejected,
    Row,
    StaffIndex,
    audit_import,
    bulk_insert,
    duplicate,
    run_rows,
)
from crm_store.io.importer.tables import ImportFileError, map_columns, read_table
from crm_store.io.importer.values import parse_local_datetime
from crm_store.models.customer import Customer
from crm_store.models.sales import Followup, Task, TaskSource
from crm_store.names import normalize_company_name

__all__ = ["FOLLOWUP_COLUMNS", "followup_key", "import_followups"]

FOLLOWUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "customer": ("客户", "客户名称", "公司名称", "名称", "customer", "customer name"),
    "author": ("负责人", "作者", "跟进人", "记录人", "author", "owner", "userid"),
    "kind": ("方式", "跟进方式", "类型", "kind", "type"),
    "content": ("内容", "跟进内容", "记录", "content", "note"),
    "next_step": ("下一步", "下一步计划", "next step", "next"),
    "next_step_at": ("下次跟进时间", "下次跟进", "下一步时间", "next step time", "next step at"),
    "created_at": (
        "时间",
        "跟进时间",
        "创建时间",
        "日期",
        "created",
        "created at",
        "time",
        "date",
    ),
}


def followup_key(customer_core: str, author_id: str, when: datetime | None, content: str) -> str:
    """The same row always gives the same key, so importing a file twice adds nothing."""
    moment = when.astimezone(UTC).isoformat() if when else ""
    digest = hashlib.sha256(f"{customer_core}|{author_id}|{moment}|{content}".encode())
    return IMPORT_KEY_PREFIX + digest.hexdigest()


@dataclass
class _CustomerRef:
    id: int
    name: str
    last_followup_at: datetime | None
    next_followup_at: datetime | None


async def import_followups(
    session: AsyncSession,
    *,
    path: Path,
    actor_id: str,
    now: datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
    tz: tzinfo,
) -> ImportReport:
    """Import follow-up history onto existing customers; future next steps become to-dos."""
    with read_table(path) as table:
        columns, unknown = map_columns(table.headers, FOLLOWUP_COLUMNS)
        if "customer" not in columns or "content" not in columns:
            raise ImportFileError(
                "跟进记录表头需要「客户」和「内容」列 (customer and content columns are required)"
            )
        report = ImportReport(kind="followups", unknown_columns=unknown, dry_run=dry_run)
        staff = await StaffIndex.load(session)
        kinds = await config_data.get_followup_kinds(session)
        by_core: dict[str, list[_CustomerRef]] = defaultdict(list)
        by_id: dict[int, _CustomerRef] = {}
        for customer_id, name, core, last, upcoming in await session.execute(
            select(
                Customer.id, Customer.name, Customer.name_core, Customer.last_followup_at,
                Customer.next_followup_at,
            )
        ):  # fmt: skip
            ref = _CustomerRef(customer_id, name, last, upcoming)
            by_core[core].append(ref)
            by_id[customer_id] = ref
        known_keys: dict[str, Known] = {}
        for key, followup_id, customer_name, author_id in await session.execute(
            select(Followup.source_key, Followup.id, Customer.name, Followup.author_id)
            .join(Customer, Customer.id == Followup.customer_id)
            .where(Followup.source_key.like(f"{IMPORT_KEY_PREFIX}%"))
        ):
            if key is not None:
                known_keys[key] = Known(followup_id, customer_name, author_id)

        def plan(row: Row) -> dict[str, Any]:
            customer_text = row.text("customer")
            content = row.text("content")
            if not customer_text:
                raise Rejected("缺少客户名称 (customer is empty)")
            if not content:
                raise Rejected("缺少跟进内容 (content is empty)")
            core = normalize_company_name(customer_text) or customer_text.strip().casefold()
            matches = by_core.get(core, [])
            if not matches:
                raise Rejected(f"找不到客户「{customer_text}」：请先导入客户 (unknown customer)")
            if len(matches) > 1:
                ids = "、".join(f"#{m.id}" for m in matches)
                raise Rejected(f"客户「{customer_text}」对应多个客户（{ids}）(ambiguous customer)")
            customer = matches[0]
            author_text = row.text("author")
            if not author_text:
                raise Rejected("缺少负责人/作者 (author is empty)")
            author = staff.resolve(author_text, label="作者")
            kind_text = row.text("kind")
            kind = config_data.resolve_followup_kind(kinds, kind_text) if kind_text else None
            if kind_text and kind is None:
                choices = "、".join(k.label for k in kinds)
                raise Rejected(f"未知的跟进方式「{kind_text}」，可选：{choices} (unknown kind)")
            try:
                next_step_at = parse_local_datetime(row.raw("next_step_at"), tz)
                created_at = parse_local_datetime(row.raw("created_at"), tz)
            except ValueError as exc:
                raise Rejected(
                    f"时间格式不正确「{exc}」：应为 2026-01-31 14:30 (malformed time)"
                ) from None
            key = followup_key(core, author.userid, created_at, content)
            if key in known_keys:
                raise duplicate(known_keys[key], "相同的跟进记录 (same follow-up)", "跟进记录")
            known_keys[key] = Known(None, customer.name, author.userid, row.number)
            return {
                "customer_id": customer.id,
                "author_id": author.userid,
                "kind": kind.code if kind else "other",
                "content": content,
                "next_step": row.text("next_step") or None,
                "next_step_at": next_step_at,
                "source_key": key,
                "created_at": created_at or now,
            }

        async def flush(rows: list[dict[str, Any]]) -> None:
            await bulk_insert(session, Followup, rows)
            await _followup_effects(session, rows, by_id, now)

        await run_rows(
            table,
            columns,
            report,
            plan=plan,
            flush=flush,
            name_field="customer",
            progress=progress,
        )
    if not dry_run:
        await audit_import(session, report, path=path, actor_id=actor_id, now=now)
    return report


async def _followup_effects(
    session: AsyncSession,
    followups: list[dict[str, Any]],
    customers: dict[int, _CustomerRef],
    now: datetime,
) -> None:
    """Future next steps become tasks, as followups.log_followup makes them; the customer's
    last/next follow-up times move only forward/earlier. A past next step in imported history
    is taken as done: it would only be an overdue reminder."""
    tasks = [
        {
            "owner_id": row["author_id"],
            "customer_id": row["customer_id"],
            "title": (row["next_step"] or row["content"][:50])[:200],
            "due_at": row["next_step_at"],
            "source": TaskSource.FOLLOWUP.value,
            "source_key": task_key(row["source_key"]),
            "created_at": now,
        }
        for row in followups
        if row["next_step_at"] is not None and row["next_step_at"] > now
    ]
    if tasks:
        await bulk_insert(session, Task, tasks)
    touched: set[int] = set()
    for row in followups:
        customer = customers[row["customer_id"]]
        if customer.last_followup_at is None or row["created_at"] > customer.last_followup_at:
            customer.last_followup_at = row["created_at"]
            touched.add(customer.id)
    for task in tasks:
        customer = customers[task["customer_id"]]
        if customer.next_followup_at is None or task["due_at"] < customer.next_followup_at:
            customer.next_followup_at = task["due_at"]
            touched.add(customer.id)
    if touched:
        await session.execute(
            update(Customer),
            [
                {
                    "id": customer_id,
                    "last_followup_at": customers[customer_id].last_followup_at,
                    "next_followup_at": customers[customer_id].next_followup_at,
                }
                for customer_id in sorted(touched)
            ],
        )
