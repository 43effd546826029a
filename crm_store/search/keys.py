"""How a name becomes index keys: character pairs, syllable pairs, initials and latin words.

Syllables are numbered (about 420 of them), so a syllable pair is one small int; a character's
readings, initials and fuzzy sounds are worked out once per distinct character and cached.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from functools import lru_cache

from crm_store.names import (
    AREA_WORDS,
    ENGLISH_LEGAL_WORDS,
    GENERIC_WORDS,
    LEGAL_SUFFIXES,
    REGION_PREFIXES,
    SYLLABLES,
    char_readings,
    pinyin_keys,
)

SYL_NAMES: tuple[str, ...] = tuple(sorted(SYLLABLES))
SYL_ID: dict[str, int] = {s: i for i, s in enumerate(SYL_NAMES)}
SYL_EXTENSIONS: dict[str, tuple[int, ...]] = {}
"""Every syllable a typed beginning may grow into: "zh" → zha, zhai, ..., zhuo."""
for _syl in SYL_NAMES:
    for _end in range(1, len(_syl) + 1):
        SYL_EXTENSIONS.setdefault(_syl[:_end], ())
        SYL_EXTENSIONS[_syl[:_end]] += (SYL_ID[_syl],)
HEAD = 1 << 18  # marks a "name starts with this syllable" key among the syllable-pair keys
WORD = re.compile(r"[a-z0-9]+")
WORD_HINT = re.compile(r"[A-Za-z0-9\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")


def canonical(syllable: str) -> str:
    """Fold the sounds IMEs call fuzzy (z/zh, c/ch, s/sh, n/l, -n/-ng) onto one spelling."""
    for retro, flat in (("zh", "z"), ("ch", "c"), ("sh", "s")):
        if syllable.startswith(retro):
            syllable = flat + syllable[2:]
    if syllable.startswith("l"):
        syllable = "n" + syllable[1:]
    if syllable.endswith("ng"):
        syllable = syllable[:-1]
    return syllable


LEGAL_SPELLINGS: tuple[str, ...] = tuple(
    sorted({pinyin_keys(s)[0][0] for s in LEGAL_SUFFIXES}, key=len, reverse=True)
)
FUZZY_GROUPS: dict[str, tuple[int, ...]] = {}
for _syl in SYL_NAMES:
    FUZZY_GROUPS.setdefault(canonical(_syl), ())
    FUZZY_GROUPS[canonical(_syl)] += (SYL_ID[_syl],)
del _syl, _end


class CharInfo:
    """What the scorer needs to know about one character, computed once per distinct char."""

    __slots__ = ("canon", "initials", "readings", "sounds")

    def __init__(self, char: str) -> None:
        readings = tuple(r for r in char_readings(char) if r)
        self.readings: tuple[str, ...] = readings or (char,)
        self.sounds: frozenset[object] = (
            frozenset(SYL_ID[r] for r in readings) if readings else frozenset((char,))
        )
        self.canon: frozenset[object] = (
            frozenset(canonical(r) for r in readings) if readings else frozenset((char,))
        )
        self.initials: tuple[str, ...] = tuple(dict.fromkeys(r[0] for r in self.readings))


_CHARS: dict[str, CharInfo] = {}


def char_info(char: str) -> CharInfo:
    """The cached CharInfo of `char`."""
    info = _CHARS.get(char)
    if info is None:
        info = _CHARS[char] = CharInfo(char)
    return info


_SYLLABLE_IDS: dict[str, tuple[int, ...]] = {}


def syllable_ids(char: str) -> tuple[int, ...]:
    """Syllable numbers of a Han character's readings, most common first; () for others."""
    ids = _SYLLABLE_IDS.get(char)
    if ids is None:
        ids = _SYLLABLE_IDS[char] = tuple(SYL_ID[r] for r in char_readings(char) if r)
    return ids


def words(text: str) -> list[str]:
    """Latin and digit words ("Alibaba Group" -> alibaba, group), one-letter and legal ones out."""
    found = WORD.findall(unicodedata.normalize("NFKC", text).lower())
    return [w for w in found if len(w) > 1 and w not in ENGLISH_LEGAL_WORDS]


PairKeys = tuple[str, tuple[int, ...]]


def pair_keys(pair: str, cache: dict[str, PairKeys]) -> PairKeys:
    """A character pair's character key ("" for ASCII pairs) and syllable-bigram keys.

    The first three readings of each character count: pypinyin lists rarer ones after.
    """
    known = cache.get(pair)
    if known is not None:
        return known
    left, right = syllable_ids(pair[0])[:3], syllable_ids(pair[1])[:3]
    char_info(pair[0]), char_info(pair[1])  # warm the scorer's cache while building
    keys = ("" if pair.isascii() else pair, tuple(a << 9 | b for a in left for b in right))
    cache[pair] = keys
    return keys


_HEADS: dict[str, tuple[int, ...]] = {}


def head_keys(char: str) -> tuple[int, ...]:
    """Keys saying "the name starts with this syllable", one per common reading."""
    keys = _HEADS.get(char)
    if keys is None:
        keys = _HEADS[char] = tuple(HEAD | i for i in syllable_ids(char)[:3])
    return keys


def initials_keys(text: str, keys: set[str]) -> None:
    """Initials of the first two and three characters, every reading of each (capped)."""
    if len(text) < 2:
        return
    firsts = [char_info(c).initials for c in text[:3]]
    if len(firsts[0]) == len(firsts[1]) == len(firsts[-1]) == 1:
        joined = firsts[0][0] + firsts[1][0] + firsts[-1][0]
        keys.add(joined[:2])
        keys.add(joined[: len(firsts)])
        return
    for length in range(2, len(firsts) + 1):
        keys.update("".join(c) for c in itertools.islice(itertools.product(*firsts[:length]), 8))


# Words that are one unit in a name, so an abbreviation takes their first character only.
_UNITS: dict[str, tuple[str, ...]] = {}
for _unit in sorted((*REGION_PREFIXES, *AREA_WORDS, *GENERIC_WORDS), key=len, reverse=True):
    if len(_unit) > 1 and not _unit.isascii():
        _UNITS[_unit[0]] = (*_UNITS.get(_unit[0], ()), _unit)
del _unit


@lru_cache(maxsize=65536)
def abbreviations(core: str) -> tuple[str, ...]:
    """Short names made of each word's first character: 青岛啤酒 → 青啤, 中国石油化工 → 中石化.

    Words are region, area and generic words where they occur, otherwise pairs of
    characters. Returns the abbreviation of the first two and of the first three words
    (the whole-name one last); none for names of fewer than two words or with latin in them.
    """
    if len(core) < 4 or not all("\u4e00" <= c <= "\u9fff" for c in core):
        return ()
    firsts: list[str] = []
    at = 0
    while at < len(core):
        unit = next((u for u in _UNITS.get(core[at], ()) if core.startswith(u, at)), None)
        size = len(unit) if unit else 2
        firsts.append(core[at])
        at += size
    if len(firsts) < 2:
        return ()
    found = dict.fromkeys("".join(firsts[:n]) for n in (2, 3) if n <= len(firsts))
    return tuple(found)


def phone_keys(number: str) -> tuple[str, ...]:
    """The normalised number; a landline's last eight digits too (typed without area code)."""
    if len(number) < 7:
        return ()
    return (number, number[-8:]) if len(number) > 8 and number.startswith("0") else (number,)
