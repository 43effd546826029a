"""Export customers, follow-ups, tickets and opportunities to CSV or Excel.

Customers and follow-ups use the very headers the importer reads (its first synonym of each
field), with owners as WeCom userids, so export → import into an empty database gives back the
same records. Tickets and opportunities are reports: they are made in chat (a ticket with its
SLA clocks and history), so no import reads them back. Times are written in the company's time
zone, as people read them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Literal

from openpyxl import Workbook
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_store import config_data
from crm_store.io.importer import CUSTOMER_COLUMNS, FOLLOWUP_COLUMNS
from crm_store.models.customer import Contact, Customer
from crm_store.models.sales import Followup, Opportunity, OpportunityState
from crm_store.models.service import ClockState, Ticket, TicketSla, TicketStatus

__all__ = ["EXPORT_KINDS", "ExportKind", "export", "write_table"]

ExportKind = Literal["customers", "followups", "tickets", "opportunities"]
EXPORT_KINDS: tuple[str, ...] = ("customers", "followups", "tickets", "opportunities")
LIST_JOIN = ","

TICKET_HEADERS = (
    "编号", "客户", "联系人", "提交人", "处理人", "优先级", "分类", "状态", "内容",
    "SLA到期", "SLA超时", "首次响应", "解决时间", "关闭时间", "处理结果", "满意度",
    "满意度备注", "合并到", "附件", "创建时间",
)  # fmt: skip
TICKET_STATUS_LABELS = {
    TicketStatus.OPEN.value: "待处理",
    TicketStatus.IN_PROGRESS.value: "处理中",
    TicketStatus.WAITING.value: "等待客户",
    TicketStatus.RESOLVED.value: "已解决",
    TicketStatus.CLOSED.value: "已关闭",
    TicketStatus.MERGED.value: "已合并",
}
OPPORTUNITY_HEADERS = (
    "客户", "标题", "金额", "阶段", "赢率", "预计成交日期", "负责人", "状态", "输单原因",
    "创建时间", "更新时间",
)  # fmt: skip
OPPORTUNITY_STATE_LABELS = {
    OpportunityState.OPEN.value: "进行中",
    OpportunityState.WON.value: "赢单",
    OpportunityState.LOST.value: "输单",
}


def _header(columns: dict[str, tuple[str, ...]], field: str) -> str:
    return columns[field][0]


def _local(moment: datetime | None, tz: tzinfo) -> str:
    """Local wall time; seconds only when there are some, so a round trip keeps them."""
    if moment is None:
        return ""
    local = moment.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M" if local.second == 0 else "%Y-%m-%d %H:%M:%S")


def write_table(path: Path, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write rows as .csv (UTF-8 with BOM, so Excel reads the Chinese) or .xlsx by extension."""
    count = 0
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet()
        sheet.append(list(headers))
        for row in rows:
            sheet.append(["" if v is None else v for v in row])
            count += 1
        workbook.save(path)
        return count
    if suffix != ".csv":
        raise ValueError(f"只支持导出 .csv 或 .xlsx (only .csv or .xlsx): {path.name}")
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
            count += 1
    return count


async def export(
    session: AsyncSession,
    *,
    kind: ExportKind | str,
    path: Path,
    tz: tzinfo,
    now: datetime | None = None,
) -> int:
    """Write every record of one kind to `path`; returns the number of rows written.

    `now` decides which running SLA clocks count as breached in the tickets export.
    """
    if kind == "customers":
        headers, rows = await _customers(session)
    elif kind == "followups":
        headers, rows = await _followups(session, tz)
    elif kind == "tickets":
        headers, rows = await _tickets(session, tz, now or datetime.now(UTC))
    elif kind == "opportunities":
        headers, rows = await _opportunities(session, tz)
    else:
        raise ValueError(f"unknown export kind {kind!r}; expected one of {EXPORT_KINDS}")
    return write_table(path, headers, rows)


async def _customers(session: AsyncSession) -> tuple[list[str], list[list[Any]]]:
    fields = (
        "name", "owner", "industry", "city", "phone", "contact", "source", "tags", "aliases",
        "level", "status",
    )  # fmt: skip
    headers = [_header(CUSTOMER_COLUMNS, f) for f in fields]
    # The first contact is the one the import's 联系人 column created.
    first_contact: dict[int, str] = {}
    for customer_id, name in await session.execute(
        select(Contact.customer_id, Contact.name).order_by(Contact.id)
    ):
        first_contact.setdefault(customer_id, name)
    rows = []
    for customer in await session.scalars(select(Customer).order_by(Customer.id)):
        rows.append(
            [
                customer.name,
                customer.owner_id,
                customer.industry,
                customer.city,
                customer.phone,
                first_contact.get(customer.id),
                customer.source_channel,
                LIST_JOIN.join(customer.tags or []),
                LIST_JOIN.join(customer.aliases or []),
                customer.level,
                customer.status,
            ]
        )
    return headers, rows


async def _followups(session: AsyncSession, tz: tzinfo) -> tuple[list[str], list[list[Any]]]:
    fields = ("customer", "author", "kind", "content", "next_step", "next_step_at", "created_at")
    headers = [_header(FOLLOWUP_COLUMNS, f) for f in fields]
    labels = {k.code: k.label for k in await config_data.get_followup_kinds(session)}
    query = (
        select(Followup, Customer.name)
        .join(Customer, Customer.id == Followup.customer_id)
        .order_by(Followup.created_at, Followup.id)
    )
    rows = [
        [
            customer_name,
            followup.author_id,
            labels.get(followup.kind, followup.kind),
            followup.content,
            followup.next_step,
            _local(followup.next_step_at, tz),
            _local(followup.created_at, tz),
        ]
        for followup, customer_name in await session.execute(query)
    ]
    return headers, rows


async def _breached(session: AsyncSession, now: datetime) -> set[int]:
    """Tickets with a clock that ended late or runs past its due time, in one query."""
    late = or_(
        TicketSla.breached.is_(True),
        and_(TicketSla.state == ClockState.RUNNING.value, TicketSla.due_at <= now),
    )
    return set(await session.scalars(select(TicketSla.ticket_id).where(late).distinct()))


async def _tickets(
    session: AsyncSession, tz: tzinfo, now: datetime
) -> tuple[list[str], list[list[Any]]]:
    contact = aliased(Contact)
    merged = aliased(Ticket)
    breached = await _breached(session, now)
    query = (
        select(Ticket, Customer.name, contact.name, merged.number)
        .outerjoin(Customer, Customer.id == Ticket.customer_id)
        .outerjoin(contact, contact.id == Ticket.contact_id)
        .outerjoin(merged, merged.id == Ticket.merged_into_id)
        .order_by(Ticket.id)
    )
    rows = [
        [
            ticket.number,
            customer_name,
            contact_name,
            ticket.opened_by,
            ticket.assignee_id,
            ticket.priority,
            ticket.category,
            TICKET_STATUS_LABELS.get(ticket.status, ticket.status),
            ticket.content,
            _local(ticket.sla_due_at, tz),
            "是" if ticket.id in breached else "否",
            _local(ticket.first_response_at, tz),
            _local(ticket.resolved_at, tz),
            _local(ticket.closed_at, tz),
            ticket.resolution,
            ticket.satisfaction,
            ticket.satisfaction_note,
            merged_number,
            len(ticket.attachments or []),
            _local(ticket.created_at, tz),
        ]
        for ticket, customer_name, contact_name, merged_number in await session.execute(query)
    ]
    return list(TICKET_HEADERS), rows


async def _opportunities(session: AsyncSession, tz: tzinfo) -> tuple[list[str], list[list[Any]]]:
    query = (
        select(Opportunity, Customer.name)
        .join(Customer, Customer.id == Opportunity.customer_id)
        .order_by(Opportunity.id)
    )
    rows = [
        [
            customer_name,
            deal.title,
            None if deal.amount is None else str(deal.amount),
            deal.stage,
            deal.probability,
            None if deal.expected_close_date is None else deal.expected_close_date.isoformat(),
            deal.owner_id,
            OPPORTUNITY_STATE_LABELS.get(deal.state, deal.state),
            deal.lost_reason,
            _local(deal.created_at, tz),
            _local(deal.updated_at, tz),
        ]
        for deal, customer_name in await session.execute(query)
    ]
    return list(OPPORTUNITY_HEADERS), rows
