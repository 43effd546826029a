"""A query in every form the index compares: cleaned text, core, sounds, syllable lattices.

Typed pinyin is read every way it segments into syllables (the last one may be unfinished);
loosely, mistyped syllables and fuzzy sounds are read too.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz.distance import Levenshtein

from crm_store.customers import normalize_phone
from crm_store.names import clean_text, normalize_company_name
from crm_store.search.keys import (
    FUZZY_GROUPS,
    HEAD,
    LEGAL_SPELLINGS,
    SYL_EXTENSIONS,
    SYL_ID,
    SYL_NAMES,
    canonical,
    char_info,
    syllable_ids,
    words,
)


@dataclass(slots=True)
class Query:
    """A query in every form the scorer compares: cleaned, core, sounds, spelling."""

    text: str
    core: str
    latin: bool
    sounds: tuple[frozenset[object], ...]
    canon: tuple[frozenset[object], ...]
    spelling: str
    units: int
    need: int
    digits: str | None = None  # the number, when the query is a phone number


_PHONE_PUNCTUATION = re.compile(r"[\s\-()（）+.]")


def parse(query: str) -> Query | None:
    text = clean_text(query)
    if not text:
        return None
    bare = _PHONE_PUNCTUATION.sub("", unicodedata.normalize("NFKC", query))
    if bare.isdigit() and len(bare) >= 7:
        number = normalize_phone(query) or bare
        return Query(text, number, True, (), (), number, 1, 1, digits=number)
    core = normalize_company_name(query) or text
    latin = text.isascii()
    if latin and text.endswith(LEGAL_SPELLINGS):  # "huaweijishuyouxiangongsi"
        tail = next(t for t in LEGAL_SPELLINGS if text.endswith(t))
        if len(text) - len(tail) >= 4:
            text = core = text[: -len(tail)]
    infos = [char_info(c) for c in core]
    units = need = len(core)
    if latin:
        readings = segmentations(text)
        units = min((len(s) for s in readings), default=len(text))
        need = units if readings else 0
    else:
        need = 2 * units - 2
    return Query(
        text=text,
        core=core,
        latin=latin,
        sounds=tuple(i.sounds for i in infos),
        canon=tuple(i.canon for i in infos),
        spelling=text if latin else "".join(i.readings[0] for i in infos),
        units=units,
        need=max(1, need // 4),
    )


def query_char_keys(q: Query) -> set[str]:
    keys: set[str] = set()
    for text in {q.core, q.text}:
        keys.update(p for p in (text[i : i + 2] for i in range(len(text) - 1)) if not p.isascii())
    return keys


def query_prefix_keys(q: Query) -> set[str]:
    return {w[:3] for w in words(q.text)}


def query_sound_groups(q: Query, *, loose: bool) -> set[frozenset[int]]:
    """Syllable-bigram keys of the query lattice, one group per pair of positions.

    A name sharing any key of a group shares that pair once: alternative readings of one
    pair must not outweigh a second pair that matches.
    """
    groups: set[frozenset[int]] = set()

    def add(left: tuple[int, ...], right: tuple[int, ...]) -> None:
        if left and right:
            pairs = itertools.islice((a << 9 | b for a in left for b in right), 256)
            groups.add(frozenset(pairs))

    for positions in lattices(q, loose=loose):
        if len(positions) == 1 and positions[0]:
            groups.add(frozenset(HEAD | i for i in positions[0]))
        for left, right in itertools.pairwise(positions):
            add(left, right)
        for left, gap, right in zip(positions, positions[1:], positions[2:], strict=False):
            if not gap:
                add(left, right)
        if loose and q.latin:
            for at, here in enumerate(positions):
                if len(here) == 1:  # one syllable mistyped: "zhihang" may be 致尚 (zhishang)
                    near = near_syllables(SYL_NAMES[here[0]])
                    add(positions[at - 1][:8] if at else (), near)
                    add(near, positions[at + 1][:8] if at + 1 < len(positions) else ())
    return groups


def lattices(q: Query, *, loose: bool) -> list[list[tuple[int, ...]]]:
    """Possible syllable sequences of the query; each position lists the syllable ids it may be.

    A Han character stands for its usual reading (the index holds every reading, so a typo
    picked by that reading still meets the right name); loosely, for all its readings and
    their fuzzy sounds too.
    """
    runs: list[list[list[tuple[int, ...]]]] = []
    word = ""

    def close_word() -> None:
        nonlocal word
        if word:
            runs.append([list(s) for s in segmentations(word, typos=loose)] or [[()]])
            word = ""

    for char in q.text if q.latin else q.core:
        ids = syllable_ids(char)
        if ids:
            close_word()
            if loose:
                ids = tuple(
                    dict.fromkeys(x for i in ids for x in FUZZY_GROUPS[canonical(SYL_NAMES[i])])
                )
            runs.append([[ids if loose else ids[:1]]])
        elif char.isascii() and char.isalpha():
            word += char
        else:
            close_word()
            runs.append([[()]])
    close_word()
    return [
        [p for part in combo for p in part]
        for combo in itertools.islice(itertools.product(*runs), 8)
    ]


@lru_cache(maxsize=4096)
def segmentations(word: str, *, typos: bool = False) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """Ways to read a latin word as pinyin; the last syllable may be unfinished ("alibab").

    A word that is no clean pinyin keeps its syllables around the garbled chunk, which
    stands for anything. With `typos`, the likeliest misspellings are read too, a garbled
    chunk standing for the syllables one edit away from it.
    """
    readings = _clean_segmentations(word, 0, {})[:8]
    if not readings and len(word) >= 4 and not typos:
        pieces = _cheapest_paths(word, by_letter=False)[0]
        positions: list[tuple[int, ...]] = [
            (SYL_ID[p],) if p in SYL_ID else () for p in pieces[:-1]
        ]
        positions.append(SYL_EXTENSIONS.get(pieces[-1], ()))
        return (tuple(positions),) if sum(map(bool, positions)) > 1 else ()
    if typos and len(word) >= 4:
        readings = [*readings[:6], *_typo_segmentations(word)]
    result: list[tuple[tuple[int, ...], ...]] = []
    for pieces in readings:
        positions = [_piece_ids(p) for p in pieces[:-1]]
        positions.append(SYL_EXTENSIONS.get(pieces[-1]) or near_syllables(pieces[-1]))
        result.append(tuple(positions))
    return tuple(dict.fromkeys(result))


def _piece_ids(piece: str) -> tuple[int, ...]:
    syllable = SYL_ID.get(piece)
    if syllable is not None:
        return (syllable,)
    return near_syllables(piece)


def _deletions(text: str) -> set[str]:
    return {text[:i] + text[i + 1 :] for i in range(len(text))}


_BY_DELETION: dict[str, set[str]] = {}
for _syl in SYL_NAMES:
    for _variant in _deletions(_syl) | {_syl}:
        _BY_DELETION.setdefault(_variant, set()).add(_syl)
del _syl, _variant


@lru_cache(maxsize=8192)
def near_syllables(piece: str) -> tuple[int, ...]:
    """Syllables one edit (or swap) away from `piece`, itself excluded, via a deletion index."""
    found: set[str] = set()
    for variant in _deletions(piece) | {piece}:
        found |= _BY_DELETION.get(variant, set())
    found = {s for s in found if Levenshtein.distance(piece, s, score_cutoff=1) <= 1}
    found.update(s for s in _swaps(piece) if s in SYL_ID)
    found.discard(piece)
    return tuple(sorted(SYL_ID[s] for s in found))


def _swaps(text: str) -> set[str]:
    """Adjacent letters swapped: "hau" for hua."""
    return {text[:i] + text[i + 1] + text[i] + text[i + 2 :] for i in range(len(text) - 1)}


def _clean_segmentations(
    word: str, start: int, memo: dict[int, list[list[str]]]
) -> list[list[str]]:
    if start == len(word):
        return [[]]
    if start in memo:
        return memo[start]
    found: list[list[str]] = []
    for end in range(min(len(word), start + 6), start, -1):
        piece = word[start:end]
        if piece in SYL_ID:
            found.extend([piece, *rest] for rest in _clean_segmentations(word, end, memo))
        elif end == len(word) and piece in SYL_EXTENSIONS:
            found.append([piece])
        if len(found) >= 8:
            break
    memo[start] = found
    return found


def _typo_segmentations(word: str) -> list[list[str]]:
    """The likeliest readings of a mistyped word, under two costs of a non-syllable chunk.

    Counting chunks keeps "dog" whole (dong); counting letters keeps "xiaoilv" apart
    (xiao + i + lv, the i a dropped "mi"). A chunk no syllable is one edit from costs triple.
    Ties are kept, fewest pieces first: "hunng" is huang, or hu + nong.
    """
    found: dict[tuple[str, ...], None] = {}
    for by_letter in (False, True):
        for path in _cheapest_paths(word, by_letter=by_letter):
            found[tuple(path)] = None
    return [list(p) for p in found][:8]


def _cheapest_paths(word: str, *, by_letter: bool) -> list[list[str]]:
    best = [1 << 30] * (len(word) + 1)
    back: list[list[int]] = [[] for _ in range(len(word) + 1)]
    best[0] = 0
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - 6), end):
            piece = word[start:end]
            if piece in SYL_ID or (end == len(word) and piece in SYL_EXTENSIONS):
                penalty = 0
            else:
                penalty = (len(piece) if by_letter else 1) * (1 if near_syllables(piece) else 3)
            cost = best[start] + penalty
            if cost < best[end]:
                best[end], back[end] = cost, [start]
            elif cost == best[end]:
                back[end].append(start)

    def paths(end: int) -> Iterator[list[str]]:
        if not end:
            yield []
            return
        for start in back[end]:
            for path in paths(start):
                yield [*path, word[start:end]]

    return sorted(itertools.islice(paths(len(word)), 32), key=len)[:4]
