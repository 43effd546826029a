"""How well one name matches a query (0-100), and the order hits are listed in.

Typed characters beat homophones, homophones beat fuzzy sounds; a full pinyin or initials
spelling beats a fragment of one. The order weighs exact names, aliases and learned picks
above any score, then gives own and recent customers a small edge among similar scores.
"""

from __future__ import annotations

from rapidfuzz import fuzz

from crm_store.names import clean_text
from crm_store.search.keys import CharInfo, char_info
from crm_store.search.query import Query


def text_score(q: Query, core: str, display: str, head: str = "") -> tuple[float, str]:
    """Best of the character, sound, initials and fuzzy views of one name or alias core.

    `head` is the region the name starts with (杭州): typed pinyin or initials may include it.
    """
    best, kind = 0.0, "fuzzy"
    if not core:
        return best, kind
    if core.startswith(q.core):
        best, kind = 82.0 + 15.0 * len(q.core) / len(core), "prefix"
    elif q.core in core:
        best, kind = 72.0 + 15.0 * len(q.core) / len(core), "substring"
    if head and q.text != q.core and (head + core).startswith(q.text):  # 杭州云栖 for 杭州云栖科技
        best, kind = max(best, 82.0 + 15.0 * len(q.text) / len(head + core)), "prefix"
    if q.text != q.core or not best:
        full = clean_text(display)
        if full.startswith(q.text):
            score, how = 82.0 + 15.0 * len(q.text) / len(full), "prefix"
        elif q.text in full:
            score, how = 72.0 + 15.0 * len(q.text) / len(full), "substring"
        else:
            score, how = 0.0, kind
        if score > best:
            best, kind = score, how
    if best >= 92.0:
        return best, kind
    infos = [char_info(c) for c in core]
    if q.latin:
        score, how = _latin_score(q.text, infos)
        if head and score < 88.0:
            whole, whole_how = _latin_score(q.text, [char_info(c) for c in head] + infos)
            if whole > score:
                score, how = whole, whole_how
    elif best < 80.0:
        score, how = _sound_score(q, infos, core)
    else:
        score, how = 0.0, kind
    if score > best:
        best, kind = score, how
    if best < 72.0:
        spelling = "".join(i.readings[0] for i in infos)
        ratio = fuzz.ratio(q.spelling, spelling)
        if len(q.spelling) < len(spelling):
            ratio = max(ratio, 0.9 * fuzz.ratio(q.spelling, spelling[: len(q.spelling)]))
        if not q.latin:  # typed characters: their sound is a weaker clue than they are
            ratio = max(0.875 * ratio, 0.95 * fuzz.ratio(q.core, core))
        if 0.8 * ratio > best:
            best, kind = 0.8 * ratio, "fuzzy"
    return best, kind


def _sound_score(q: Query, infos: list[CharInfo], core: str) -> tuple[float, str]:
    """Homophones ("腾迅" for 腾讯) rank below typed characters, fuzzy sounds lower still.

    Among sound-alikes, the one sharing more of the typed characters wins.
    """
    for wanted, have, equal, prefix, inner, kind in (
        (q.sounds, [i.sounds for i in infos], 74.0, 58.0, 48.0, "pinyin"),
        (q.canon, [i.canon for i in infos], 66.0, 52.0, 44.0, "fuzzy"),
    ):
        at = _find(wanted, have)
        if at is None:
            continue
        size = len(wanted)
        same = 8.0 * sum(a == b for a, b in zip(q.core, core[at : at + size], strict=False)) / size
        cover = size / len(have)
        if at == 0:
            return (equal if size == len(have) else prefix + 14.0 * cover) + same, kind
        if size > 1:
            return inner + 14.0 * cover + same, kind
        return 0.0, kind
    return 0.0, "fuzzy"


def _find(wanted: tuple[frozenset[object], ...], have: list[frozenset[object]]) -> int | None:
    """First offset where every wanted position shares a sound with the candidate's."""
    size = len(wanted)
    first = wanted[0]
    for at in range(len(have) - size + 1):
        if first.isdisjoint(have[at]):
            continue
        for w, h in zip(wanted[1:], have[at + 1 : at + size], strict=True):
            if w.isdisjoint(h):
                break
        else:
            return at
    return None


def _latin_score(text: str, infos: list[CharInfo]) -> tuple[float, str]:
    """Full pinyin, pinyin prefix or fragment, and initials, over every reading of each char."""
    best, kind = 0.0, "pinyin"
    spelling = "".join(i.readings[0] for i in infos)
    cover = len(text) / max(len(spelling), len(text))
    if spelling.startswith(text):
        best = 92.0 if len(spelling) == len(text) else 72.0 + 20.0 * cover
    elif len(text) >= 4 and text in spelling:
        best = 62.0 + 15.0 * cover
    elif any(len(i.readings) > 1 for i in infos):  # a rarer reading costs 3 points
        readings = [i.readings for i in infos]
        for start in range(len(readings) if len(text) >= 4 else 1):
            done = _walk(text, readings, start, 0)
            if done is None:
                continue
            if start == 0:
                best = 89.0 if done == len(readings) else 69.0 + 20.0 * cover
            else:
                best = 59.0 + 15.0 * cover
            break
    if len(text) >= 2 and best < 88.0 and len(text) <= len(infos):
        initials = "".join(i.initials[0] for i in infos)
        if initials.startswith(text):
            score = 88.0 if len(initials) == len(text) else 68.0 + 20.0 * len(text) / len(initials)
        else:
            done = _walk(text, [i.initials for i in infos], 0, 0)
            if done is None:
                score = 0.0
            else:
                score = 85.0 if done == len(infos) else 65.0 + 20.0 * len(text) / len(infos)
        if score > best:
            best, kind = score, "initials"
    return best, kind


def _walk(text: str, readings: list[tuple[str, ...]], position: int, offset: int) -> float | None:
    """Consume `text` with one reading per position; the number of positions used, or None."""
    if offset == len(text):
        return position
    if position == len(readings):
        return None
    rest = len(text) - offset
    for reading in readings[position]:
        if text.startswith(reading, offset):
            done = _walk(text, readings, position + 1, offset + len(reading))
            if done is not None:
                return done
        elif rest < len(reading) and reading.startswith(text[offset:]):
            return position + 0.5
    return None


ABBREVIATION_SCORE = 88.0  # 青啤 for 青岛啤酒 is as telling as a long prefix of the name
PHONE_SCORE = 97.0  # a whole number names one customer, nearly as surely as its name
PHONE_TAIL_SCORE = 90.0  # a landline's last eight digits
CONTACT_SCORE = 90.0  # a contact's name, typed in characters
CONTACT_PINYIN_SCORE = 85.0
