"""One phone parser: chat, import and storage read every spelling the same way, so 查重 matches."""

from __future__ import annotations

import pytest

from crm_store import phones
from crm_store.customers import normalize_phone
from crm_store.phones import PhoneKind, find_phone, parse_phone, stored_phone
from handlers.parsing.customer_form import read_customer_form

# (as typed, as stored) — the stored form is digits only, an extension behind one dash.
SPELLINGS: list[tuple[str, str | None]] = [
    # mobiles
    ("13800138000", "13800138000"),
    ("138 0013 8000", "13800138000"),
    ("138-0013-8000", "13800138000"),
    ("138.0013.8000", "13800138000"),
    ("+86 138-0013-8000", "13800138000"),
    ("+86 138 0013 8000", "13800138000"),
    ("+8613800138000", "13800138000"),
    ("0086 13800138000", "13800138000"),
    ("0086-138-0013-8000", "13800138000"),
    ("86 13800138000", "13800138000"),
    ("86-13800138000", "13800138000"),
    ("１３８００１３８０００", "13800138000"),
    # landlines, with area codes in any common notation
    ("0571-88888888", "057188888888"),
    ("057188888888", "057188888888"),
    ("0571 8888 8888", "057188888888"),
    ("(0571)88888888", "057188888888"),
    ("（0571）88888888", "057188888888"),
    ("(021)12345678", "02112345678"),
    ("010-1234-5678", "01012345678"),
    ("0755 8601 3388", "075586013388"),
    ("0571-8888888", "05718888888"),
    ("+86 571 8888 8888", "057188888888"),
    ("+86-571-88888888", "057188888888"),
    ("+86 (0571) 8888-8888", "057188888888"),
    ("０５７１－８８８８８８８８", "057188888888"),
    # extensions
    ("0571-88888888转123", "057188888888-123"),
    ("0571-88888888 转 123", "057188888888-123"),
    ("0571-88888888-123", "057188888888-123"),
    ("010 1234 5678 分机 12", "01012345678-12"),
    ("0571-88888888 ext. 8", "057188888888-8"),
    # 400 / 800 service numbers
    ("4008001234", "4008001234"),
    ("400-800-1234", "4008001234"),
    ("400 800 1234", "4008001234"),
    ("800-820-8820", "8008208820"),
    ("４００－８００－１２３４", "4008001234"),
    ("400-800-1234转5", "4008001234-5"),
    # not a phone, everywhere
    ("12345", None),
    ("88888888", None),
    ("1380013800", None),
    ("23800138000", None),
    ("0571-888888", None),
    ("13800138000转1", None),
    ("+1 415 555 1234", None),
    ("+852 2345 6789", None),
]


def test_the_table_is_large_enough() -> None:
    assert len(SPELLINGS) >= 30


@pytest.mark.parametrize(("typed", "stored"), SPELLINGS)
def test_chat_import_and_storage_agree(typed: str, stored: str | None) -> None:
    """新客户 in chat, the import's phone cell and the store's normalize_phone: one answer."""
    chat = read_customer_form(f"宁波海天塑机有限公司 {typed}")
    assert chat.name == "宁波海天塑机有限公司"
    assert chat.phone == stored
    assert stored_phone(typed) == stored
    assert normalize_phone(typed) == stored


def test_a_spaced_phone_is_a_phone_not_a_contact() -> None:
    form = read_customer_form("宁波海天塑机有限公司 机械 138 0013 8000 张经理")
    assert (form.name, form.industry, form.phone, form.contact) == (
        "宁波海天塑机有限公司",
        "机械",
        "13800138000",
        "张经理",
    )
    assert form.sure


def test_a_landline_with_extension_in_chat_keeps_the_words_around_it() -> None:
    form = read_customer_form("杭州云栖科技 (0571)88888888转123 王总")
    assert (form.phone, form.contact, form.industry) == (
        "057188888888-123",
        "王总",
        None,
    )


@pytest.mark.parametrize(
    ("typed", "number", "extension", "kind"),
    [
        ("+86 138-0013-8000", "13800138000", "", PhoneKind.MOBILE),
        ("(0571)88888888转123", "0571-88888888", "123", PhoneKind.LANDLINE),
        ("400-800-1234", "4008001234", "", PhoneKind.SERVICE),
    ],
)
def test_parse_phone_parts(typed: str, number: str, extension: str, kind: PhoneKind) -> None:
    phone = parse_phone(typed)
    assert phone is not None
    assert (phone.number, phone.extension, phone.kind) == (number, extension, kind)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("电话：（0571）8888 8888转12，找李", "（0571）8888 8888转12"),
        ("2号楼 13800138000", "13800138000"),
        ("13800138000 2026", "13800138000"),
        ("客户说 +86 138 0013 8000 随时打", "+86 138 0013 8000"),
        ("订单号 12345 明天发", None),
        ("共 50 台，约 2000 元", None),
    ],
)
def test_find_phone_in_free_text(text: str, found: str | None) -> None:
    hit = find_phone(text)
    if found is None:
        assert hit is None
    else:
        assert hit is not None and text[hit[1][0] : hit[1][1]] == found


def test_import_problem_messages() -> None:
    assert "一格只能填一个号码" in phones.phone_problem("13800138000,13900139000")
    assert "座机需带区号" in phones.phone_problem("88888888")
    assert "应为手机号" in phones.phone_problem("12345")


def test_none_and_blank_are_no_phone() -> None:
    assert normalize_phone(None) is None
    assert normalize_phone("") is None
    assert stored_phone("   ") is None
