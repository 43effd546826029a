"""Bring customers, leads and follow-ups in from the spreadsheets teams already keep.

One pass over the file, no query per row: the existing names, phones and staff are loaded once
into dicts, each row is checked against them (and against the rows before it), and the good
rows go in with bulk INSERTs in chunks. A bad row is skipped whole, so nothing partial of it is
written; duplicates and bad rows come back in an ImportReport with the reason in Chinese. The
caller owns the transaction: it commits once at the end, or rolls back (a dry run writes
nothing at all).

Modules: `tables` (files, headers), `values` (cells), `rows` (the shared row loop), one per
entity (`customers`, `leads`, `followups`) and `report`.
"""

from crm_store.io.importer.customers import CUSTOMER_COLUMNS, import_customers
from crm_store.io.importer.followups import FOLLOWUP_COLUMNS, followup_key, import_followups
from crm_store.io.importer.leads import LEAD_COLUMNS, LEAD_STATUSES, import_leads
from crm_store.io.importer.report import (
    REPORT_HEADERS,
    BadRow,
    DuplicateRow,
    ImportReport,
    write_report,
)
from crm_store.io.importer.tables import ImportFileError, Table, count_rows, read_table
from crm_store.io.importer.values import core_name, parse_local_datetime, split_list

__all__ = [
    "CUSTOMER_COLUMNS",
    "FOLLOWUP_COLUMNS",
    "LEAD_COLUMNS",
    "LEAD_STATUSES",
    "REPORT_HEADERS",
    "BadRow",
    "DuplicateRow",
    "ImportFileError",
    "ImportReport",
    "Table",
    "core_name",
    "count_rows",
    "followup_key",
    "import_customers",
    "import_followups",
    "import_leads",
    "parse_local_datetime",
    "read_table",
    "split_list",
    "write_report",
]
