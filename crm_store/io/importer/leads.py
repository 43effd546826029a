"""Leads: a known phone, or the same name at the same company, is a duplicate."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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
    check_lengths,
    duplicate,
    row_phone,
    run_rows,
)
from crm_store.io.importer.tables import ImportFileError, map_columns, read_table
from crm_store.models.sales import Lead, LeadStatus
from crm_store.names import normalize_company_name

__all__ = ["LEAD_COLUMNS", "LEAD_STATUSES", "import_leads"]

LEAD_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("名称", "姓名", "线索名称", "联系人", "name", "lead"),
    "company": ("公司", "公司名称", "单位", "company"),
    "phone": ("电话", "手机", "手机号", "联系电话", "phone", "mobile", "tel"),
    "source": ("来源", "渠道", "线索来源", "source", "channel"),
    "owner": ("负责人", "销售", "owner", "sales", "userid"),
    "status": ("状态", "线索状态", "status"),
}
LEAD_STATUSES: dict[str, tuple[str, ...]] = {
    LeadStatus.NEW.value: ("新建", "新线索", "未跟进", "未处理", "new"),
    LeadStatus.CONTACTED.value: ("已联系", "跟进中", "联系中", "contacted"),
    LeadStatus.CONVERTED.value: ("已转化", "已转客户", "转化", "converted"),
    LeadStatus.INVALID.value: ("无效", "无效线索", "invalid"),
}


def _lead_status(text: str) -> str:
    if not text:
        return LeadStatus.NEW.value
    key = text.strip().casefold()
    for code, words in LEAD_STATUSES.items():
        if key in {w.casefold() for w in words}:
            return code
    choices = "、".join(words[0] for words in LEAD_STATUSES.values())
    raise Rejected(f"未知的线索状态「{text}」，可选：{choices} (unknown status)")


def _lead_key(name: str, company_core: str, phone: str | None) -> str:
    digest = hashlib.sha256(f"{name.casefold()}|{company_core}|{phone or ''}".encode())
    return IMPORT_KEY_PREFIX + digest.hexdigest()


class _LeadIndex:
    """Leads already known: by phone, and by name at a company."""

    def __init__(self) -> None:
        self.by_phone: dict[str, Known] = {}
        self.by_name: dict[tuple[str, str], Known] = {}
        self.keys: set[str] = set()

    @classmethod
    async def load(cls, session: AsyncSession) -> _LeadIndex:
        index = cls()
        rows = await session.execute(
            select(Lead.id, Lead.name, Lead.company, Lead.phone, Lead.owner_id, Lead.source_key)
        )
        for lead_id, name, company, phone, owner_id, source_key in rows:
            known = Known(lead_id, name, owner_id)
            index.add(name, normalize_company_name(company) if company else "", phone, known)
            if source_key:
                index.keys.add(source_key)
        return index

    def add(self, name: str, company_core: str, phone: str | None, known: Known) -> None:
        if phone:
            self.by_phone.setdefault(phone, known)
        self.by_name.setdefault((name.casefold(), company_core), known)

    def match(self, name: str, company_core: str, phone: str | None) -> Rejected | None:
        if phone and phone in self.by_phone:
            return duplicate(self.by_phone[phone], f"电话相同 {phone} (same phone)", "线索")
        known = self.by_name.get((name.casefold(), company_core))
        if known is not None:
            return duplicate(known, "同名同公司 (same name and company)", "线索")
        return None


async def import_leads(
    session: AsyncSession,
    *,
    path: Path,
    actor_id: str,
    now: datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import leads; a lead with a known phone, or the same name at the same company, is a dup."""
    with read_table(path) as table:
        columns, unknown = map_columns(table.headers, LEAD_COLUMNS)
        if "name" not in columns:
            raise ImportFileError(
                "找不到线索名称列：表头需要「名称」「姓名」或「name」之一 (no name column)"
            )
        report = ImportReport(kind="leads", unknown_columns=unknown, dry_run=dry_run)
        staff = await StaffIndex.load(session)
        index = await _LeadIndex.load(session)

        def plan(row: Row) -> dict[str, Any]:
            name = re.sub(r"\s+", " ", row.text("name"))
            if not name:
                raise Rejected("缺少线索名称 (name is empty)")
            company = row.text("company") or None
            source = row.text("source") or None
            owner_text = row.text("owner")
            owner = staff.resolve(owner_text) if owner_text else None
            phone = row_phone(row)
            status = _lead_status(row.text("status"))
            check_lengths({"lead_name": name, "company": company, "source": source})
            company_core = normalize_company_name(company) if company else ""
            duplicate = index.match(name, company_core, phone)
            if duplicate is not None:
                raise duplicate
            owner_id = owner.userid if owner else None
            index.add(name, company_core, phone, Known(None, name, owner_id, row.number))
            return {
                "name": name,
                "company": company,
                "phone": phone,
                "source_channel": source,
                "status": status,
                "owner_id": owner_id,
                "source_key": _lead_key(name, company_core, phone),
                "created_at": now,
            }

        async def flush(rows: list[dict[str, Any]]) -> None:
            await bulk_insert(session, Lead, rows)

        await run_rows(
            table, columns, report, plan=plan, flush=flush, name_field="name", progress=progress
        )
    if not dry_run:
        await audit_import(session, report, path=path, actor_id=actor_id, now=now)
    return report
