"""What an import did: the report an admin reads, in Python and as a CSV for Excel."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["REPORT_HEADERS", "BadRow", "DuplicateRow", "ImportReport", "write_report"]


@dataclass(frozen=True)
class DuplicateRow:
    """A row not inserted because the record exists already (or came earlier in the file)."""

    row_number: int
    name: str
    reason: str
    existing_id: int | None
    existing_name: str
    existing_owner: str | None


@dataclass(frozen=True)
class BadRow:
    """A row skipped whole, with the reason an admin can fix and the cells as read."""

    row_number: int
    reason: str
    values: dict[str, str]
    name: str = ""


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    kind: str
    inserted: int = 0
    total_rows: int = 0
    duplicates: list[DuplicateRow] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    dry_run: bool = False


REPORT_HEADERS = (
    "行号",
    "类型",
    "名称",
    "原因",
    "已有记录ID",
    "已有名称",
    "已有负责人",
    "原始数据",
)


def write_report(report: ImportReport, path: Path) -> Path:
    """Duplicates and bad rows as a CSV an admin opens in Excel (UTF-8 with BOM)."""
    rows: list[tuple[int, list[str]]] = []
    for dup in report.duplicates:
        rows.append(
            (
                dup.row_number,
                [
                    str(dup.row_number),
                    "重复",
                    dup.name,
                    dup.reason,
                    "" if dup.existing_id is None else str(dup.existing_id),
                    dup.existing_name,
                    dup.existing_owner or "",
                    "",
                ],
            )
        )
    for bad in report.bad_rows:
        raw = "; ".join(f"{k}={v}" for k, v in bad.values.items())
        rows.append(
            (bad.row_number, [str(bad.row_number), "错误", bad.name, bad.reason, "", "", "", raw])
        )
    rows.sort(key=lambda item: item[0])
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REPORT_HEADERS)
        writer.writerows(row for _, row in rows)
        if report.unknown_columns:
            writer.writerow([])
            writer.writerow(["", "未识别的列", "、".join(report.unknown_columns)])
    return path
