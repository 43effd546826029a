"""One spelling per phone number, so 查重 matches however people typed it."""

from __future__ import annotations

import pytest

from crm_store.customers import normalize_phone


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("13800138000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("008613800138000", "13800138000"),
        ("86-13800138000", "13800138000"),
        ("１３８００１３８０００", "13800138000"),
        ("0571-88888888", "057188888888"),
        ("(021)12345678", "02112345678"),
        ("+1 415 555 0100", "+14155550100"),
        ("", None),
        (None, None),
    ],
)
def test_normalize_phone(typed: str | None, stored: str | None) -> None:
    assert normalize_phone(typed) == stored
