"""A follow-up note split into what happened and what comes next (with its time)."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from crm_store.config_data import FollowupKind
from handlers.parsing._chars import fold_width
from handlers.parsing.kinds import find_followup_kind
from handlers.parsing.when import (
    Found,
    When,
    WhenError,
    WhenProblem,
    find_when,
    is_workday,
    next_workday,
    scan_times,
)

__all__ = ["NextStep", "looks_like_note", "split_next_step"]


@dataclass(frozen=True)
class NextStep:
    """A follow-up note split into what happened and what comes next."""

    content: str
    next_step: str | None
    when: When | WhenProblem | None


_SEPARATORS = re.compile(r"[,;!?。！？\n]+|\.(?![0-9])")
_CONNECTIVE = re.compile(r"(?:并且|而且|并)?(?:然后|接着|下次|下回|回头|约好|约定)")
_LEADING_CONNECTIVE = re.compile(r"^(?:并且|而且|并|然后|接着)+")
# Vague times: no day is named, so the reminder gets a default (in days; 0 = two hours).
VAGUE_DAYS = {
    "过两天": 2, "过2天": 2, "过几天": 3, "过些天": 3, "过些日子": 7, "过段时间": 7,
    "过一段时间": 7, "过阵子": 7, "过一阵": 7, "改天": 3, "回头": 2, "晚点": 0, "晚些时候": 0,
    "稍后": 0, "later": 0, "in a few days": 3, "some other day": 3,
}  # fmt: skip
_VAGUE = re.compile("|".join(sorted(map(re.escape, VAGUE_DAYS), key=len, reverse=True)), re.I)
_STRONG_NEXT = re.compile(
    r"(?<!不)再(?!次)|下次|下回|回头|届时|到时候|约好|过两天|过2天|过几天|过些|过段时间|过一段时间"
    r"|过阵子|过一阵|改天|晚点|稍后|\b(?:again|will|follow up|later)\b",
    re.I,
)
_WEAK_NEXT = re.compile(r"然后|计划|准备|打算|预计|争取|记得|提醒|约了|约定")
_PAST_MARKER = re.compile(r"(?<![为除约])了(?!解)|已经|已|刚刚|刚才|曾经|没|未")
_TRIM = " \t\n,.;:!?，。；：！？、~～"


def _clauses(norm: str, times: list[Found]) -> list[tuple[int, int]]:
    """Cut a note into clauses: at punctuation, before connectives, before a time after spaces,
    and before a future time that follows a past marker ("拜访了王总下周三再谈")."""
    inside = {k for t, _ in times for k in range(t.span[0] + 1, t.span[1])}
    starts = {t.span[0]: (t, ahead) for t, ahead in times}
    pieces: list[tuple[int, int]] = []
    last = 0
    for sep in _SEPARATORS.finditer(norm):
        if sep.start() not in inside:
            pieces.append((last, sep.start()))
            last = sep.end()
    pieces.append((last, len(norm)))
    clauses: list[tuple[int, int]] = []
    for start, end in pieces:
        cut, p = start, start + 1
        while p < end:
            connective = _CONNECTIVE.match(norm, p)
            found = starts.get(p)
            split = p not in inside and (
                connective is not None
                or (found is not None and norm[p - 1] in " \t")
                or (
                    found is not None
                    and found[1]
                    and _PAST_MARKER.search(norm, cut, p) is not None
                )
            )
            if split:
                clauses.append((cut, p))
                cut = p
            p = connective.end() if split and connective else p + 1
        clauses.append((cut, end))
    return [(s, e) for s, e in clauses if norm[s:e].strip(_TRIM)]


def _is_next(norm: str, clause: tuple[int, int], times: list[Found]) -> bool:
    """A next step says 再/下次, or names a time ahead (or an impossible one) without 了/已."""
    s, e = clause
    if _STRONG_NEXT.search(norm, s, e):
        return True
    ahead = any(
        s <= t.span[0] < e
        and (is_ahead or isinstance(t, WhenProblem) and t.kind is WhenError.IMPOSSIBLE)
        for t, is_ahead in times
    )
    weak = _WEAK_NEXT.search(norm, s, e) is not None
    return (ahead or weak) and _PAST_MARKER.search(norm, s, e) is None


def _join(text: str, chosen: list[tuple[int, int]], ends: dict[int, int]) -> str:
    """Chosen clauses with their own trailing punctuation, trimmed at both ends."""
    return "".join(text[s : ends[s]] for s, _ in chosen).strip(_TRIM)


def split_next_step(text: str, *, now: datetime, tz: ZoneInfo) -> NextStep:
    """Split a follow-up into what happened and the next step; past times stay in what happened."""
    norm = fold_width(text)
    times = list(scan_times(text, now, tz))
    clauses = _clauses(norm, times)
    chosen = [c for c in clauses if _is_next(norm, c, times)]
    if not chosen:
        return NextStep(text.strip(_TRIM), None, None)
    ends = {
        s: clauses[k + 1][0] if k + 1 < len(clauses) else len(text)
        for k, (s, _) in enumerate(clauses)
    }
    in_next = [(t, a) for t, a in times if any(s <= t.span[0] < e for s, e in chosen)]
    ranked = [t for t, a in in_next if a] + [
        t for t, a in in_next if not (isinstance(t, WhenProblem) and t.kind is WhenError.PAST)
    ]
    candidates = ranked or [t for t, _ in in_next]
    when = candidates[0] if candidates else None
    if when is None:
        when = _vague_when(norm, text, chosen, now=now, tz=tz)
    next_step = _LEADING_CONNECTIVE.sub("", _join(text, chosen, ends)).strip(_TRIM)
    rest = [c for c in clauses if c not in chosen]
    return NextStep(_join(text, rest, ends), next_step or None, when)


def _vague_when(
    norm: str, text: str, chosen: list[tuple[int, int]], *, now: datetime, tz: ZoneInfo
) -> When | None:
    """过两天 / 改天 / 回头: a default moment on a working day, marked vague so the bot says so."""
    for s, e in chosen:
        m = _VAGUE.search(norm, s, e)
        if m is None:
            continue
        days = VAGUE_DAYS[m.group().lower()]
        local = now.astimezone(tz)
        if days == 0:
            at = local.replace(second=0, microsecond=0) + timedelta(hours=2)
            return When(at, True, m.span(), text[m.start() : m.end()], vague=True)
        day: date = local.date() + timedelta(days=days)
        if not is_workday(day):
            day = next_workday(day)
        at = datetime.combine(day, time(9, 0), tzinfo=tz)
        return When(at, False, m.span(), text[m.start() : m.end()], vague=True)
    return None


_NOTE_MARKER = re.compile(r"了|已|刚|沟通|确认")  # what a sentence has and a company name lacks


def looks_like_note(
    word: str, kinds: Sequence[FollowupKind], *, now: datetime, tz: ZoneInfo
) -> bool:
    """Is the first word of 跟进 clearly the start of a note ("电话沟通了续约", "今天拜访"),
    not a customer's name? Only then may a follow-up go to the customer looked up last."""
    if find_followup_kind(word, kinds) is not None or _NOTE_MARKER.search(word):
        return True
    found = find_when(word, now=now, tz=tz)
    return found is not None and found.span[0] == 0
