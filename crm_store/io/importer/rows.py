"""The row loop every import shares: plan each row, write the good ones in chunks, report the
rest; plus the staff lookup, the phone cell and the one audit row per import."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import audit
from crm_store.io.importer.report import BadRow, DuplicateRow, ImportReport
from crm_store.io.importer.tables import Table
from crm_store.io.importer.values import cell_text, row_values, too_long
from crm_store.models.org import Staff
from crm_store.phones import phone_problem, stored_phone

Progress = Callable[[int], None]
CHUNK = 5000
IMPORT_KEY_PREFIX = "import:"
_ENTITIES = {"customers": "customer", "leads": "lead", "followups": "followup"}


class Rejected(Exception):
    """A row that goes to the report instead of the database (bad, or a duplicate)."""

    def __init__(self, reason: str, known: Known | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.known = known


@dataclass(frozen=True)
class Known:
    """A record a new row may duplicate: in the database (id) or earlier in the file (row)."""

    id: int | None
    name: str
    owner: str | None
    row_number: int | None = None


class Row:
    """One data row, its cells looked up by field name."""

    __slots__ = ("cells", "columns", "number")

    def __init__(self, number: int, cells: list[Any], columns: dict[str, int]) -> None:
        self.number = number
        self.cells = cells
        self.columns = columns

    def raw(self, name: str) -> Any:
        index = self.columns.get(name)
        if index is None or index >= len(self.cells):
            return None
        return self.cells[index]

    def text(self, name: str) -> str:
        return cell_text(self.raw(name))


Planner = Callable[[Row], dict[str, Any]]
Flush = Callable[[list[dict[str, Any]]], Awaitable[None]]


async def run_rows(
    table: Table,
    columns: dict[str, int],
    report: ImportReport,
    *,
    plan: Planner,
    flush: Flush,
    name_field: str,
    progress: Progress | None,
) -> None:
    """Plan every row, write the planned ones in chunks; rejected rows go to the report."""
    pending: list[dict[str, Any]] = []
    for number, cells in table.rows:
        report.total_rows += 1
        row = Row(number, cells, columns)
        try:
            pending.append(plan(row))
        except Rejected as rejected:
            name = re.sub(r"\s+", " ", row.text(name_field))
            known = rejected.known
            if known is None:
                values = row_values(table.headers, cells)
                report.bad_rows.append(BadRow(number, rejected.reason, values, name))
            else:
                report.duplicates.append(
                    DuplicateRow(number, name, rejected.reason, known.id, known.name, known.owner)
                )
        if len(pending) >= CHUNK:
            report.inserted += len(pending)
            if not report.dry_run:
                await flush(pending)
            pending = []
        if progress is not None and report.total_rows % 1000 == 0:
            progress(1000)
    if pending:
        report.inserted += len(pending)
        if not report.dry_run:
            await flush(pending)
    if progress is not None and report.total_rows % 1000:
        progress(report.total_rows % 1000)


def duplicate(known: Known, how: str, what: str) -> Rejected:
    if known.row_number is not None:
        reason = f"与本文件第 {known.row_number} 行{how} (duplicate of row {known.row_number})"
    else:
        reason = f"与已有{what}{how} (duplicate of #{known.id})"
    return Rejected(reason, known)


# Staff lookup -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    userid: str
    name: str
    active: bool
    main_department_id: int | None


class StaffIndex:
    """Owners as people write them: a WeCom userid (any case) or a name that is unique."""

    def __init__(self, people: list[_Person]) -> None:
        self.by_userid = {p.userid.casefold(): p for p in people}
        self.by_name: dict[str, list[_Person]] = defaultdict(list)
        for person in people:
            self.by_name[person.name.strip().casefold()].append(person)

    @classmethod
    async def load(cls, session: AsyncSession) -> StaffIndex:
        rows = await session.execute(
            select(Staff.userid, Staff.name, Staff.active, Staff.main_department_id)
        )
        return cls([_Person(*row) for row in rows])

    def resolve(self, text: str, *, label: str = "负责人") -> _Person:
        """The person a cell names; an unknown or ambiguous name rejects the row."""
        key = text.strip().casefold()
        person = self.by_userid.get(key)
        if person is not None:
            return person
        named = self.by_name.get(key, [])
        candidates = [p for p in named if p.active] or named
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise Rejected(
                f"找不到{label}「{text}」：请填企业微信 userid 或员工姓名 (unknown person)"
            )
        ids = "、".join(sorted(p.userid for p in candidates))
        raise Rejected(f"{label}「{text}」对应多名员工（{ids}），请改填 userid (ambiguous)")


def row_phone(row: Row) -> str | None:
    """The phone cell in its stored form (crm_store.phones); a malformed one rejects the row."""
    raw = row.raw("phone")
    text = cell_text(raw)
    if not text:
        return None
    number = text
    if isinstance(raw, int | float) and not text.startswith(("1", "400", "800")):
        number = "0" + text  # Excel drops a landline's leading 0 when the cell is a number
    phone = stored_phone(number)
    if phone is None:
        raise Rejected(phone_problem(text))
    return phone


def check_lengths(values: dict[str, str | None]) -> None:
    problem = too_long(values)
    if problem:
        raise Rejected(problem)


async def bulk_insert(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    """A Core executemany on the table: the ORM's bulk path costs several times more per row."""
    await session.execute(insert(model.__table__), rows)


async def audit_import(
    session: AsyncSession, report: ImportReport, *, path: Path, actor_id: str, now: datetime
) -> None:
    """One summary row per import: a row per record would double the import's cost."""
    await audit.record(
        session,
        actor_id=actor_id,
        action="import",
        entity=_ENTITIES[report.kind],
        entity_id=path.name[:64],
        before=None,
        after={
            "file": path.name,
            "rows": report.total_rows,
            "inserted": report.inserted,
            "duplicates": len(report.duplicates),
            "bad_rows": len(report.bad_rows),
        },
        source_key=None,
        now=now,
    )
