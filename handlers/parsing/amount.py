"""Deal amounts as reps write them: 50万, ¥120,000, 三十万, 1万5, 80k, 50-60万."""

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import cn2an

from handlers.parsing._chars import CN_DIGITS, after_number, fold_width

__all__ = ["find_amount", "parse_amount"]

_DIGITS = r"[0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?"
_UNIT = r"(?:千万|百万|十万|亿|万|千|百|[wWkK](?![A-Za-z]))"
_UNIT_VALUES = {
    "千万": 10**7,
    "百万": 10**6,
    "十万": 10**5,
    "亿": 10**8,
    "万": 10**4,
    "千": 10**3,
    "百": 10**2,
    "w": 10**4,
    "k": 10**3,
}
_CN_NUMERAL = (
    "[零〇一二两三四五六七八九十壹贰叁肆伍陆柒捌玖拾]"
    "[零〇一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟]*"
)
_AMOUNT = re.compile(
    r"(?P<cur>¥|￥|RMB|CNY|人民币)?[ \t]*"
    rf"(?:(?P<dig>{_DIGITS}(?:多|余)?{_UNIT}(?:[0-9]+{_UNIT})*(?:[0-9](?![0-9.]))?|{_DIGITS})"
    rf"|(?P<cn>{_CN_NUMERAL}))"
    r"(?P<yuan>[ \t]*(?:元整|元|块钱|块|圆))?"
)
_RANGE = re.compile(rf"(?P<low>{_DIGITS})[ \t]*(?:-|~|到|至)[ \t]*(?={_DIGITS}[ \t]*{_UNIT})")
_FOREIGN = re.compile(r"[ \t]*(?:美元|美金|欧元|日元|港元|港币|英镑|USD|EUR|HKD|JPY|GBP)")
_COUNTER_AFTER = re.compile(  # 50台, 2000人, 2027年: a count or a date, not money
    r"[ \t]*(?:[台个套件人次家位名份张条箱吨米天周年月日号点时分秒层楼栋折倍岁]"
    r"|[斤克辆间颗只支把本页期%]|平方|公里)"
)
_BARE_AFTER = re.compile(r"[:/\-.A-Za-z]")  # 15:30, 12/5, 2027-01, model numbers
_CENT = Decimal("0.01")


def _tidy(value: Decimal) -> Decimal:
    """Round to cents; whole amounts come back without a fraction."""
    cents = value.quantize(_CENT, rounding=ROUND_HALF_UP)
    if cents == cents.to_integral_value():
        return cents.quantize(Decimal(1))
    return cents.normalize()


def _digit_value(token: str) -> Decimal | None:
    """50万 / 1.2亿 / 1万5 / 1亿2000万 / 80k -> a number; a last bare digit is a tenth unit."""
    total = Decimal(0)
    last_unit: int | None = None
    for m in re.finditer(rf"({_DIGITS})(?:多|余)?({_UNIT})?", token):
        try:
            number = Decimal(m[1].replace(",", ""))
        except InvalidOperation:
            return None
        if m[2] is None:
            total += number * (last_unit // 10 if last_unit else 1)
            continue
        last_unit = _UNIT_VALUES[m[2].lower()]
        total += number * last_unit
    return total


def _amount_at(norm: str, m: re.Match[str]) -> tuple[Decimal, bool] | None:
    """The value of an amount token and whether it is marked as money (unit, sign or 元/块)."""
    if _FOREIGN.match(norm, m.end()):
        return None
    if m["dig"] is not None:
        value = _digit_value(m["dig"])
        marked = any(u in m["dig"] for u in ("万", "亿", "w", "W", "k", "K"))
    else:
        try:
            raw = cn2an.cn2an(m["cn"], "normal")
        except (ValueError, KeyError, IndexError):
            return None
        value = Decimal(str(raw))
        marked = any(u in m["cn"] for u in ("万", "亿"))
    if value is None:
        return None
    return value, marked or bool(m["cur"]) or bool(m["yuan"])


def parse_amount(text: str) -> Decimal | None:
    """A whole string that is an amount in yuan (50万, ¥120,000, 三十万); else None."""
    norm = fold_width(text).strip()
    m = _AMOUNT.fullmatch(norm)
    if m is None or not norm:
        return None
    found = _amount_at(norm, m)
    return None if found is None else _tidy(found[0])


def find_amount(text: str) -> tuple[Decimal, tuple[int, int]] | None:
    """The first amount in a sentence; bare numbers count only from 1000 up, or with 元/块."""
    norm = fold_width(text)
    for i in range(len(norm)):
        if not _amount_start_ok(norm, i):
            continue
        rng = _RANGE.match(norm, i)
        m = _AMOUNT.match(norm, rng.end() if rng else i)
        if m is None:
            continue
        found = _amount_at(norm, m)
        if found is None or not _looks_like_money(norm, m, *found):
            continue
        if rng is not None:
            low = _digit_value(rng["low"] + _unit_of(m["dig"] or ""))
            if low is not None:
                return _tidy(low), (i, m.end())
        return _tidy(found[0]), (m.start(), m.end())
    return None


def _amount_start_ok(norm: str, i: int) -> bool:
    """Amounts start at a number, a currency sign, never inside a number, word or ordinal."""
    here, prev = norm[i], norm[i - 1] if i else ""
    if not (
        here.isascii() and here.isdigit() or here in CN_DIGITS + "壹贰叁肆伍陆柒捌玖拾¥￥RC人"
    ):
        return False
    if not prev:
        return True
    if here in CN_DIGITS + "壹贰叁肆伍陆柒捌玖拾":
        return prev not in CN_DIGITS + "百千万亿第几"
    return (
        not (prev.isascii() and prev.isalnum())
        and prev not in "$€第"
        and not after_number(norm, i)
    )


def _looks_like_money(norm: str, m: re.Match[str], value: Decimal, marked: bool) -> bool:
    """Bare numbers are money only from 1000 up and not as counts, dates, phones or models."""
    if m["cur"] or m["yuan"]:
        return True
    if _COUNTER_AFTER.match(norm, m.end()):
        return False
    if marked:
        return True
    if _BARE_AFTER.match(norm, m.end()):
        return False
    digits = (m["dig"] or "").replace(",", "")
    if digits.startswith("0") or len(digits) > 10:
        return False  # 0571..., 13800138000: codes and phone numbers
    return value >= 1000


def _unit_of(token: str) -> str:
    """The first unit written in a digit token ('' if none), so 50-60万 reads as 50万."""
    unit = re.search(_UNIT, token)
    return unit.group() if unit else ""
