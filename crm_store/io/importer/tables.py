"""Reading a sheet: .xlsx or .csv (UTF-8 or GBK) as headers plus numbered rows, and which
column holds which field."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

__all__ = ["ImportFileError", "Table", "count_rows", "map_columns", "read_table"]


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, wrong type, no name column)."""


@dataclass
class Table:
    """A sheet as headers plus (row number, cells) pairs; row numbers are the sheet's own."""

    headers: list[str]
    rows: Iterator[tuple[int, list[Any]]]
    estimated_rows: int | None
    close: Callable[[], None] = lambda: None

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _blank(cells: Sequence[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) first; GB18030 covers the GBK files Excel writes in China."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            "无法识别文件编码，请另存为 UTF-8 或 GBK 的 CSV (unknown encoding)"
        ) from exc


def _csv_table(path: Path) -> Table:
    text = _decode(path.read_bytes())
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    lines = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    numbered = [(i, row) for i, row in enumerate(lines, start=1) if not _blank(row)]
    if not numbered:
        return Table([], iter(()), 0)
    body: list[tuple[int, list[Any]]] = [(i, list(row)) for i, row in numbered[1:]]
    return Table([str(h) for h in numbered[0][1]], iter(body), len(body))


def _xlsx_table(path: Path) -> Table:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged or foreign file
        raise ImportFileError(
            f"无法读取 Excel 文件 (cannot read xlsx): {type(exc).__name__}"
        ) from exc
    sheet = workbook.active
    if sheet is None:
        workbook.close()
        return Table([], iter(()), 0)
    numbered = (
        (number, list(cells))
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1)
        if not _blank(cells)
    )
    first = next(numbered, None)
    headers = [] if first is None else ["" if c is None else str(c) for c in first[1]]
    estimate = sheet.max_row - 1 if sheet.max_row else None
    return Table(headers, numbered, estimate, workbook.close)


def read_table(path: Path) -> Table:
    """Open a .xlsx or .csv file as a Table (close it, or use `with`); others are refused."""
    if not path.is_file():
        raise ImportFileError(f"文件不存在 (file not found): {path}")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return _csv_table(path)
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_table(path)
    raise ImportFileError(f"只支持 .xlsx 和 .csv 文件 (only .xlsx and .csv): {path.name}")


def count_rows(path: Path) -> int | None:
    """A cheap row estimate for a progress bar (None if the file does not say)."""
    try:
        with read_table(path) as table:
            return table.estimated_rows
    except ImportFileError:
        return None


def _header_key(text: str) -> str:
    key = unicodedata.normalize("NFKC", text).casefold()
    key = re.sub(r"\(.*?\)", "", key)
    return re.sub(r"[\s_\-*:：.]+", "", key)


def map_columns(
    headers: list[str], columns: dict[str, tuple[str, ...]]
) -> tuple[dict[str, int], list[str]]:
    """Which column holds which field; unknown or repeated headers are reported, not fatal."""
    lookup = {_header_key(s): name for name, synonyms in columns.items() for s in synonyms}
    found: dict[str, int] = {}
    unknown: list[str] = []
    for index, header in enumerate(headers):
        name = lookup.get(_header_key(header))
        if not header.strip():
            continue
        if name is None:
            unknown.append(header.strip())
        elif name in found:
            unknown.append(f"{header.strip()}（重复列，已忽略 duplicate column）")
        else:
            found[name] = index
    return found, unknown
