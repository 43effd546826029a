"""Spreadsheets in and out: `importer` (customers, leads, follow-ups) and `exporter`."""
