"""Character facts every parser shares: width folding, Chinese digits, "inside a number"."""

__all__ = ["CN_DIGITS", "after_number", "fold_width"]

_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
CN_DIGITS = "零〇一二两三四五六七八九十"


def fold_width(text: str) -> str:
    """Fold full-width ASCII to ASCII one character for one, so spans stay valid."""
    return text.translate(_FULLWIDTH)


def after_number(text: str, i: int) -> bool:
    """True when position i continues a number: 1.5, 2,000, 15:30, 2027-01, 12/5."""
    prev = text[i - 1]
    return prev in ".,:/-" and i >= 2 and text[i - 2].isascii() and text[i - 2].isdigit()
