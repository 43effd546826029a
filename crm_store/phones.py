"""One phone parser for chat, import and storage, so 查重 compares what people mean.

Mainland numbers only: mobiles (13800138000), landlines with an area code in any common
notation (0571-88888888, (0571)88888888, 0571 8888 8888, +86 571 88888888), 400/800 service
numbers and extensions (转123, 分机 123, ext. 123, -123). The store keeps digits only, with an
extension behind one dash (057188888888-123): the form it has always kept.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Phone",
    "PhoneKind",
    "find_phone",
    "parse_phone",
    "phone_problem",
    "readable_phone",
    "stored_phone",
]


class PhoneKind(StrEnum):
    MOBILE = "mobile"
    LANDLINE = "landline"
    SERVICE = "service"  # 400 / 800 numbers


@dataclass(frozen=True)
class Phone:
    """A parsed number: `number` as people read it (0571-88888888), extension apart."""

    number: str
    extension: str
    kind: PhoneKind

    @property
    def readable(self) -> str:
        """0571-88888888-123: the number as an admin reads it back."""
        return f"{self.number}-{self.extension}" if self.extension else self.number

    @property
    def stored(self) -> str:
        """057188888888-123: what the store keeps and 查重 compares."""
        digits = self.number.replace("-", "")
        return f"{digits}-{self.extension}" if self.extension else digits


_MOBILE = re.compile(r"1[3-9]\d{9}")
_SERVICE = re.compile(r"[48]00\d{7}")
_PHONE_CHARS = re.compile(r"[\d\s\-.()+]+")
_EXTENSION = re.compile(
    r"\s*(?:转|分机|ext\.?|x|#)\s*(\d{1,6})$|(?<=\d{7})-(\d{1,6})$", re.IGNORECASE
)


def parse_phone(text: str) -> Phone | None:
    """The phone that `text` is as a whole, or None if it is not exactly one phone."""
    text = unicodedata.normalize("NFKC", text).strip()
    extension = ""
    match = _EXTENSION.search(text)
    if match:
        extension = match.group(1) or match.group(2)
        text = text[: match.start()].rstrip(" -")
    if not text or not _PHONE_CHARS.fullmatch(text) or text.count("+") > 1:
        return None
    if "+" in text and not text.startswith("+"):
        return None
    international = text.startswith(("+", "0086"))
    digits = re.sub(r"\D", "", text)
    if text.startswith("+") and not digits.startswith("86"):
        return None  # a foreign number: this CRM keeps mainland numbers only
    if international:
        digits = digits.removeprefix("00").removeprefix("86")
    elif len(digits) == 13 and digits.startswith("86") and _MOBILE.fullmatch(digits[2:]):
        digits = digits[2:]
    if _MOBILE.fullmatch(digits):
        return Phone(digits, "", PhoneKind.MOBILE) if not extension else None
    if _SERVICE.fullmatch(digits):
        return Phone(digits, extension, PhoneKind.SERVICE)
    if international and not digits.startswith("0"):
        digits = "0" + digits
    if not digits.startswith("0") or digits.startswith("00"):
        return None
    # Area codes: 010 and 020-029 have three digits, all others four (0571, 0755...).
    area_length = 3 if digits[1] in "12" else 4
    area, local = digits[:area_length], digits[area_length:]
    if not re.fullmatch(r"\d{7,8}", local):
        return None
    return Phone(f"{area}-{local}", extension, PhoneKind.LANDLINE)


def stored_phone(text: str | None) -> str | None:
    """The phone as the store keeps it and 查重 compares it; None if `text` is not a phone."""
    if text is None:
        return None
    phone = parse_phone(text)
    return None if phone is None else phone.stored


def readable_phone(text: str) -> str | None:
    """The phone in its readable form (13800138000, 0571-88888888-123), or None."""
    phone = parse_phone(text)
    return None if phone is None else phone.readable


# Free text: fold full-width ASCII one character for one, so spans stay those of the input.
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_RUN = re.compile(
    r"(?<![0-9A-Za-z+])(?:\+|\()?[0-9][0-9 \t\-.()+]*[0-9]"
    r"(?:[ \t]*(?:转|分机|ext\.?|x|#)[ \t]*[0-9]{1,6})?(?![0-9])",
    re.IGNORECASE,
)


def find_phone(text: str) -> tuple[Phone, tuple[int, int]] | None:
    """The first phone in a sentence ("软件 138 0013 8000 王总") and its span in `text`.

    Within a run of digits and separators the leftmost, longest piece that is a phone wins,
    so a phone followed by another number is still found.
    """
    folded = text.translate(_FULLWIDTH)
    for run in _RUN.finditer(folded):
        piece = run.group()
        starts = [0] + [
            k for k in range(1, len(piece)) if piece[k - 1] in " \t" and piece[k] not in " \t"
        ]
        ends = [len(piece)] + [
            k for k in range(len(piece) - 1, 0, -1) if piece[k] in " \t" and piece[k - 1] != " "
        ]
        for start in starts:
            for end in ends:
                if end <= start:
                    continue
                phone = parse_phone(piece[start:end])
                if phone is not None:
                    return phone, (run.start() + start, run.start() + end)
    return None


def phone_problem(raw: str) -> str:
    """Why `raw` is not a phone, in words an admin can act on (for the import report)."""
    if re.search(r"[,，;；/、]", raw.strip()) and len(re.sub(r"\D", "", raw)) > 12:
        return f"电话格式不正确「{raw}」：一格只能填一个号码 (one phone number per cell)"
    digits = re.sub(r"\D", "", raw)
    if len(digits) in (7, 8) and not digits.startswith("0"):
        return (
            f"电话格式不正确「{raw}」：座机需带区号，如 0571-88888888 (landline needs area code)"
        )
    return (
        f"电话格式不正确「{raw}」：应为手机号 13800138000 或座机 0571-88888888 (malformed phone)"
    )
