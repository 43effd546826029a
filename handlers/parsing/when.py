"""Next-step times in plain Chinese → aware moments; pure, the clock passed in.

Times use a small grammar (a regex per part: day, day part, clock), not JioNLP's parse_time: that
installs ~270 MB, fails on 明早/月底, puts 星期三 in the past and guesses on 25点/3点70分/13月1日.
cn2an reads Chinese numerals; chinesecalendar gives workdays (调休 too) for 月初/月底/工作日后.
"""

import re
from calendar import monthrange
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

import chinese_calendar
import cn2an

from handlers.parsing._chars import CN_DIGITS, after_number, fold_width

__all__ = [
    "DAY_PARTS",
    "When",
    "WhenError",
    "WhenProblem",
    "find_when",
    "holiday_name",
    "is_workday",
    "next_workday",
]

DEFAULT_TIME = time(9, 0)  # a bare day ("下周三") is that day at 09:00, has_time=False
WORKDAY_END = time(18, 0)  # after this a bare weekday / date naming today means the next one
# day part -> (time used when no clock is given, end of the part)
DAY_PARTS: dict[str, tuple[time, time | None]] = {
    "上午": (time(9, 0), time(12, 0)),
    "中午": (time(12, 0), time(14, 0)),
    "下午": (time(14, 0), time(18, 0)),
    "傍晚": (time(17, 30), time(19, 0)),
    "晚上": (time(19, 0), None),  # None: until midnight
}
_PART_ALIASES = {
    "早上": "上午",
    "早晨": "上午",
    "清晨": "上午",
    "早": "上午",
    "午后": "下午",
    "夜里": "晚上",
    "夜间": "晚上",
    "晚": "晚上",
    "凌晨": "凌晨",
}
_CLOCK_ONLY_PARTS = {"早", "晚", "凌晨"}  # parts that only count when a clock time follows
_FIXED_HOLIDAYS = {(1, 1), (5, 1), (10, 1), (10, 2), (10, 3)}  # fallback past chinesecalendar

# Rules for ambiguous cases (each is pinned by a test):
# - No day given: a clock time or day part is its next occurrence (today if still ahead, else
#   tomorrow). An explicit day (今天, 这周五, 2027年1月3日, 月底) never moves: passed -> PAST.
# - "N点" or one-digit "H:MM" without a day part: 1-6 are 13:00-18:00 (nobody books a client
#   at 3 a.m.); 0 and 7-23 are read as written. 下午/傍晚/晚上 add 12 to 1-11; 晚上12点 is
#   midnight; 上午 with an hour over 12 is IMPOSSIBLE. A day part counts as a time (has_time).
# - A day part on today that has begun: the next full hour, while the part lasts (今晚 at 19:30
#   -> 20:00).
# - A bare weekday (周五), M月D日 or M/D without a year, N号: the next one still ahead; for a bare
#   day "ahead" means today before 18:00, so 周五 on Friday 19:30 is next Friday.
# - 这周/本周/下周 are calendar weeks from Monday; 下周 alone is next Monday.
# - A day equal to today (今天, 这周五 on Friday) is not PAST: at is 09:00 that day.
# - 月初/月底: first/last working day of the month; 月底 once past that day is today. 月中 is the
#   15th, 下旬 the 21st, 下个月 alone the first working day of next month.
# - N个月后 keeps the day of month, clamped to the month's end (1月31日 + 1个月 -> 2月28日).


class WhenError(Enum):
    """Why a time expression cannot be used as a next step."""

    PAST = "past"
    IMPOSSIBLE = "impossible"


@dataclass(frozen=True)
class When:
    """A resolved time expression: an aware moment in the company time zone."""

    at: datetime
    has_time: bool
    span: tuple[int, int]
    text: str
    vague: bool = False  # 过两天 / 改天: no day was named, `at` is the bot's default


@dataclass(frozen=True)
class WhenProblem:
    """A time expression that was found but cannot be scheduled, so the bot can say why."""

    kind: WhenError
    span: tuple[int, int]
    text: str


_NUM = r"(?:[0-9]{1,4}|[零〇一二两三四五六七八九十百]{1,4})"
_NUM_T = r"(?:[0-9]{1,2}|[零〇一二两三四五六七八九十]{1,3})"


def _int(s: str) -> int | None:
    """Read ASCII digits or a Chinese numeral; None when it is not a number."""
    if s.isascii() and s.isdigit():
        return int(s)
    try:
        value = cn2an.cn2an(s, "normal")
    except (ValueError, KeyError, IndexError):
        return None
    return int(value) if float(value).is_integer() else None


# ---------------------------------------------------------------- calendar helpers


def _is_workday(d: date) -> bool:
    """Chinese working day, 调休 included; Mon-Fri minus fixed holidays beyond the data."""
    try:
        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:  # chinesecalendar has no data for this year yet
        return d.weekday() < 5 and (d.month, d.day) not in _FIXED_HOLIDAYS


def is_workday(d: date) -> bool:
    """Chinese working day (调休 included): what a reminder should land on."""
    return _is_workday(d)


def next_workday(d: date) -> date:
    """The first working day after d."""
    return _add_workdays(d, 1)


def holiday_name(d: date) -> str | None:
    """The public holiday d belongs to (国庆节), or None for a plain weekend or no data."""
    try:
        on_holiday, name = chinese_calendar.get_holiday_detail(d)
    except NotImplementedError:
        return None
    if not on_holiday or name is None:
        return None
    for holiday in chinese_calendar.Holiday:
        if name in (holiday.value, holiday):
            return str(holiday.chinese)
    return None


def _safe_date(y: int, m: int, d: int) -> date | None:
    """The date, or None when it does not exist."""
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _add_months(d: date, months: int) -> date:
    """Same day of month `months` later, clamped to the last day of the target month."""
    index = d.year * 12 + d.month - 1 + months
    y, m = divmod(index, 12)
    return date(y, m + 1, min(d.day, monthrange(y, m + 1)[1]))


def _first_workday(y: int, m: int) -> date:
    """First working day of a month (the 1st itself if no working day is found)."""
    for day in range(1, monthrange(y, m)[1] + 1):
        if _is_workday(date(y, m, day)):
            return date(y, m, day)
    return date(y, m, 1)


def _last_workday(y: int, m: int) -> date:
    """Last working day of a month (the last day itself if no working day is found)."""
    last = monthrange(y, m)[1]
    for day in range(last, 0, -1):
        if _is_workday(date(y, m, day)):
            return date(y, m, day)
    return date(y, m, last)


def _month_pos(y: int, m: int, pos: str) -> date:
    """初/上旬 -> first working day, 中/中旬 -> 15th, 下旬 -> 21st, 底/末 -> last working day."""
    if pos in ("初", "上旬"):
        return _first_workday(y, m)
    if pos in ("中", "中旬"):
        return date(y, m, 15)
    if pos == "下旬":
        return date(y, m, 21)
    if pos == "份":
        return date(y, m, 1)
    return _last_workday(y, m)


def _add_workdays(d: date, n: int) -> date:
    """The n-th working day after (n > 0) or before (n < 0) d."""
    step = 1 if n >= 0 else -1
    left = abs(n)
    while left:
        d += timedelta(days=step)
        if _is_workday(d):
            left -= 1
    return d


# ---------------------------------------------------------------- the grammar


@dataclass(frozen=True)
class _Day:
    """The day part of an expression: candidate dates, the first one still ahead wins."""

    dates: tuple[date, ...] = ()
    fixed: bool = True  # explicit day: once passed it is PAST, never moved on
    part: str | None = None  # a day part fused into the word (今晚 -> 晚上)
    moment: datetime | None = None  # an exact instant (2小时后)
    impossible: bool = False


@dataclass(frozen=True)
class _Clock:
    """A clock time as written, before day parts and the PM rule apply."""

    hour: int
    minute: int
    twelve_hour: bool  # "3点" or "3:30": 1-6 read as PM when no day part is given


_IMPOSSIBLE = _Day(impossible=True)
_REL_DAYS = {"今": 0, "明": 1, "后": 2, "大后": 3, "昨": -1, "前": -2, "大前": -3}
_REL_WEEKS = {"这": 0, "本": 0, "下": 1, "下下": 2, "上": -1, "上上": -2}
_REL_MONTHS = {"本": 0, "这": 0, "下": 1, "下下": 2, "上": -1, "上上": -2}
_WEEKDAYS = (
    {c: i for i, c in enumerate("一二三四五六日")}
    | {"天": 6, "末": 5}
    | {str(i + 1): i for i in range(7)}
)

_P_OFFSET = re.compile(
    rf"(?P<n>{_NUM}|半)(?P<ge>个)?(?P<half>半)?"
    r"(?P<unit>工作日|天|日|周|星期|礼拜|月|年|小时|钟头|分钟)(?P<dir>之后|以后|后|之前|以前|前)"
)
_P_MD = re.compile(
    rf"(?:(?P<y>[0-9]{{4}})年|(?P<yw>今年|明年|后年))?(?P<m>{_NUM_T})月"
    rf"(?:(?P<d>{_NUM_T})[日号]|(?P<dd>[0-9]{{1,2}})(?![0-9号日万千百元块个次台人家套件天周])"
    r"|(?P<pos>初|上旬|中旬|中|下旬|底|末|份))"
)
_P_ISO = re.compile(
    r"(?P<y>[0-9]{4})(?P<sep>[-/.])(?P<m>[0-9]{1,2})(?P=sep)(?P<d>[0-9]{1,2})(?![0-9])"
)
_P_SLASH = re.compile(r"(?P<m>[0-9]{1,2})/(?P<d>[0-9]{1,2})(?![0-9/]|的)")  # 1/3的预算: a share
# 12.12 / 3.15: a date only when a day word, a day part or a clock follows (or 号/日), so
# 1.5万, 报价降到3.5 and 增长3.2% stay numbers.
_P_DOT = re.compile(
    r"(?P<m>[0-9]{1,2})\.(?P<d>[0-9]{1,2})(?:[号日](?![0-9]))?"
    r"(?=[ \t]*(?:之?前|以前|之后|以后|再|见|当天|那天|左右|上午|中午|下午|傍晚|晚上|早上|凌晨"
    r"|[0-9]{1,2}(?:[点时:]|：)|[零一二两三四五六七八九十]{1,3}[点时]))"
    r"|(?P<m2>[0-9]{1,2})\.(?P<d2>[0-9]{1,2})[号日](?![0-9])"
)
_PRICE_CUE = re.compile(r"[降涨价率比费额数分折¥￥$]")
_P_REL_MONTH = re.compile(
    r"(?P<rel>本|这个?|下下个?|下个?|上上个?|上个?)?月"
    rf"(?:(?P<pos>初|上旬|中旬|中|下旬|底|末)|(?P<d>{_NUM_T})[号日])"
)
_P_REL_MONTH_ALONE = re.compile(r"(?P<rel>下下个?|下个?|上上个?|上个?)月")
_P_WEEK = re.compile(
    r"(?P<rel>下下个?|下个?|上上个?|上个?|这个?|本)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天末1-7])?"
)
_P_DAY_WORD = re.compile(
    r"(?P<w>大后|大前|今|明|昨|(?<![之以然最])后|(?<![之以提])前)(?:天|日(?!本)|(?P<p>晚上?|早上?|晨))"
)
_P_BARE_DAY = re.compile(
    rf"(?P<d>{_NUM_T})(?P<u>号|日)(?![楼线门厅馆仓库房院机位床桌柜箱车厂店区栋座室本])"
)
_P_PART = re.compile(
    r"(?:凌晨|早上|早晨|清晨|上午|中午|午后|下午|傍晚|晚上|夜里|夜间|早|晚)(?!好)"
)
_P_HHMM = re.compile(r"(?P<h>[0-9]{1,2})[:](?P<mi>[0-9]{2})(?![0-9])")
_P_DIAN = re.compile(
    rf"(?P<h>{_NUM_T})(?:点|时)钟?"
    rf"(?:(?P<half>半)|(?P<q>一刻|三刻)|整|(?P<mi>{_NUM_T})分?)?"
)
_COUNTED = re.compile(
    r"建议|意见|疑问|问题|要求|需求|想法|看法|顾虑|原因|好处|优势|不足|内容|共识|事项|说明|"
    r"改进|注意|担心|异议|反馈|诉求|条件|[个%]"
)


def _week_day(today: date, rel: str | None, wd: str | None) -> _Day | None:
    """这周五 / 下周三 / 下下周一 / 下周 / 周五 (rolling) -> a day."""
    if rel is None:
        if wd is None:
            return None
        first = today + timedelta(days=(_WEEKDAYS[wd] - today.weekday()) % 7)
        return _Day((first, first + timedelta(days=7)), fixed=False)
    weeks = _REL_WEEKS[rel.rstrip("个")]
    if wd is None and weeks == 0:
        return None  # 这周 alone names no day
    monday = today - timedelta(days=today.weekday()) + timedelta(weeks=weeks)
    return _Day((monday + timedelta(days=_WEEKDAYS[wd] if wd else 0),))


def _offset_day(m: re.Match[str], now: datetime) -> _Day | None:
    """3天后 / 两周后 / 一个月后 / 半小时后 / 3个工作日后 / 3天前 -> a day or a moment."""
    unit, today, sign = m["unit"], now.date(), (-1 if "前" in m["dir"] else 1)
    n = 0 if m["n"] == "半" else _int(m["n"])
    half = m["n"] == "半" or m["half"] is not None
    if n is None or (m["n"] == "半" and m["half"]):
        return None
    if unit in ("小时", "钟头", "分钟"):
        minutes = n if unit == "分钟" else n * 60 + 30 * half
        if unit == "分钟" and half:
            return None
        return _Day(
            moment=now.replace(second=0, microsecond=0) + sign * timedelta(minutes=minutes)
        )
    if unit == "月":
        if m["ge"] is None and m["n"] != "半":
            return None  # "3月后" reads as "after March" as often as "in three months"
        return _Day((_add_months(today, sign * n) + sign * timedelta(days=15 * half),))
    if unit == "年":
        return _Day((_add_months(today, sign * (12 * n + 6 * half)),))
    if half:
        return None  # 半天后 / 半周后 name no day
    if unit == "工作日":
        return _Day((_add_workdays(today, sign * n),))
    days = n * (7 if unit in ("周", "星期", "礼拜") else 1)
    return _Day((today + sign * timedelta(days=days),))


def _md_day(today: date, year: int | None, month: int, day: int) -> _Day:
    """M月D日 with or without a year; without one, the next such date not in the past."""
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        return _IMPOSSIBLE
    if year is not None:
        exact = _safe_date(year, month, day)
        return _Day((exact,)) if exact else _IMPOSSIBLE
    found = [_safe_date(y, month, day) for y in range(today.year, today.year + 9)]
    dates = tuple(d for d in found if d is not None)
    return _Day(dates, fixed=False) if dates else _IMPOSSIBLE


def _year_of(m: re.Match[str], today: date) -> int | None:
    """The year named before a month, if any."""
    if m["y"]:
        return int(m["y"])
    if m["yw"]:
        return today.year + {"今年": 0, "明年": 1, "后年": 2}[m["yw"]]
    return None


def _md_match(m: re.Match[str], today: date) -> _Day | None:
    """12月5日 / 2027年1月3日 / 明年3月底 / 12月初."""
    month = _int(m["m"])
    year = _year_of(m, today)
    if month is None:
        return None
    if m["pos"]:
        if not 1 <= month <= 12:
            return _IMPOSSIBLE
        if year is not None:
            return _Day((_month_pos(year, month, m["pos"]),))
        this = _month_pos(today.year, month, m["pos"])
        return _Day((this, _month_pos(today.year + 1, month, m["pos"])), fixed=False)
    day = _int(m["d"] or m["dd"])
    return None if day is None else _md_day(today, year, month, day)


def _rel_month_match(m: re.Match[str], today: date) -> _Day | None:
    """月底 / 下月初 / 下个月5号 / 本月15号."""
    rel = m["rel"].rstrip("个") if m["rel"] else None
    base = date(today.year, today.month, 1)
    if m["d"] is not None:
        day = _int(m["d"])
        if rel is None or day is None:
            return None
        first = _add_months(base, _REL_MONTHS[rel])
        if not 1 <= day <= 31:
            return _IMPOSSIBLE
        exact = _safe_date(first.year, first.month, day)
        return _Day((exact,)) if exact else _IMPOSSIBLE
    pos = m["pos"]
    if rel is not None:
        first = _add_months(base, _REL_MONTHS[rel])
        return _Day((_month_pos(first.year, first.month, pos),))
    if pos in ("底", "末"):
        return _Day((max(_month_pos(today.year, today.month, pos), today),))
    nxt = _add_months(base, 1)
    this = _month_pos(today.year, today.month, pos)
    return _Day((this, _month_pos(nxt.year, nxt.month, pos)), fixed=False)


def _bare_day_match(m: re.Match[str], today: date) -> _Day | None:
    """5号 / 20日: this month's, or the next month that has that day."""
    if m["u"] == "日" and not m["d"].isascii():
        return None  # 一日 is "one day" far more often than "the 1st"
    day = _int(m["d"])
    if day is None:
        return None
    if not 1 <= day <= 31:
        return _IMPOSSIBLE
    base = date(today.year, today.month, 1)
    months = (_add_months(base, k) for k in range(13))
    dates = tuple(d for f in months if (d := _safe_date(f.year, f.month, day)) is not None)
    return _Day(dates, fixed=False)


def _match_day(text: str, pos: int, now: datetime) -> tuple[int, _Day] | None:
    """The longest day expression starting exactly at pos."""
    today = now.date()
    best: tuple[int, _Day] | None = None

    def consider(pattern: re.Pattern[str], build: Callable[[re.Match[str]], _Day | None]) -> None:
        nonlocal best
        m = pattern.match(text, pos)
        if m is None or (best is not None and m.end() <= best[0]):
            return
        try:
            day = build(m)
        except (ValueError, OverflowError):  # 9999年后: beyond what a date can hold
            day = _IMPOSSIBLE
        if day is not None:
            best = (m.end(), day)

    consider(_P_OFFSET, lambda m: _offset_day(m, now))
    consider(_P_MD, lambda m: _md_match(m, today))
    consider(
        _P_ISO,
        lambda m: _md_day(today, int(m["y"]), int(m["m"]), int(m["d"])),
    )
    consider(
        _P_SLASH,
        lambda m: (
            _md_day(today, None, int(m["m"]), int(m["d"]))
            if 1 <= int(m["m"]) <= 12 and 1 <= int(m["d"]) <= 31
            else None
        ),
    )
    consider(_P_DOT, lambda m: _dot_day(m, today))
    consider(_P_REL_MONTH, lambda m: _rel_month_match(m, today))
    consider(_P_REL_MONTH_ALONE, lambda m: _rel_month_alone(m, today))
    consider(_P_WEEK, lambda m: _week_match(m, text, today))
    consider(_P_DAY_WORD, lambda m: _day_word(m, today))
    consider(_P_BARE_DAY, lambda m: _bare_day_match(m, today))
    return best


def _dot_day(m: re.Match[str], today: date) -> _Day | None:
    """12.12 / 3.15号: month.day, the next such date; not a date when out of range (1.50)."""
    month, day = int(m["m"] or m["m2"]), int(m["d"] or m["d2"])
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        return None
    before = re.split(r"[\s,，。;；:：!！?？、]", m.string[max(0, m.start() - 3) : m.start()])[-1]
    if _PRICE_CUE.search(before):
        return None  # 降到3.5再说, 单价3.15前: a figure, not a day
    return _md_day(today, None, month, day)


def _rel_month_alone(m: re.Match[str], today: date) -> _Day:
    """下个月 -> its first working day; 上个月 -> its 1st (so it reads as past)."""
    months = _REL_MONTHS[m["rel"].rstrip("个")]
    first = _add_months(date(today.year, today.month, 1), months)
    return _Day((_first_workday(first.year, first.month) if months > 0 else first,))


def _week_match(m: re.Match[str], text: str, today: date) -> _Day | None:
    """Weekdays; a bare 周X right after a numeral or 每 is a count or a rule, not a day."""
    if (
        m["rel"] is None
        and m.start() > 0
        and text[m.start() - 1] in CN_DIGITS + "0123456789每几个半"
    ):
        return None
    return _week_day(today, m["rel"], m["wd"])


def _day_word(m: re.Match[str], today: date) -> _Day:
    """今天 / 明天 / 后天 / 大后天 / 昨天 / 今晚 / 明早 ..."""
    day = today + timedelta(days=_REL_DAYS[m["w"]])
    part = {"晚": "晚上", "早": "上午", "晨": "上午"}.get(m["p"][0]) if m["p"] else None
    return _Day((day,), part=part)


def _match_clock(text: str, pos: int) -> tuple[int, _Clock | None] | None:
    """A clock time at pos; the clock is None when it is impossible (25点, 3点70分)."""
    m = _P_HHMM.match(text, pos)
    if m is not None:
        hour, minute = int(m["h"]), int(m["mi"])
        ok = hour < 24 or (hour == 24 and minute == 0)
        return m.end(), _Clock(hour, minute, len(m["h"]) == 1) if ok and minute < 60 else None
    m = _P_DIAN.match(text, pos)
    if m is None:
        return None
    read_hour = _int(m["h"])
    if read_hour is None:
        return None
    hour = read_hour
    minute = 30 if m["half"] else 15 if m["q"] == "一刻" else 45 if m["q"] else 0
    if m["mi"]:
        read = _int(m["mi"])
        if read is None:
            return None
        minute = read
    ok = hour < 24 or (hour == 24 and minute == 0)
    return m.end(), _Clock(hour, minute, True) if ok and minute < 60 else None


@dataclass(frozen=True)
class _Parsed:
    """One time expression as written, before it is resolved against now."""

    start: int
    end: int
    day: _Day | None
    part: str | None
    clock: _Clock | None
    bad_clock: bool


def _skip_gap(text: str, i: int, *, de: bool) -> int:
    """Skip spaces (and one 的 when de) between the parts of one expression."""
    while i < len(text) and text[i] in " \t":
        i += 1
    if de and i < len(text) and text[i] == "的":
        return _skip_gap(text, i + 1, de=False)
    return i


def _parse_at(text: str, pos: int, now: datetime) -> _Parsed | None:
    """Parse [day] [day part] [clock] starting exactly at pos, or None."""
    day_hit = _match_day(text, pos, now)
    day, end = (day_hit[1], day_hit[0]) if day_hit else (None, pos)
    if day is not None and (day.moment is not None or day.impossible):
        return _Parsed(pos, end, day, None, None, False)
    cursor = _skip_gap(text, end, de=True) if day else pos
    part: str | None = None
    pm = _P_PART.match(text, cursor) if day is None or day.part is None else None
    if pm is not None:
        part, cursor = pm.group(), pm.end()
    clock_hit = _match_clock(text, _skip_gap(text, cursor, de=False) if (day or part) else pos)
    if clock_hit is not None:
        return _Parsed(pos, clock_hit[0], day, part, clock_hit[1], clock_hit[1] is None)
    if part is not None and part not in _CLOCK_ONLY_PARTS:
        return _Parsed(pos, cursor, day, part, None, False)
    if day is not None:
        return _Parsed(pos, end, day, None, None, False)
    return None


def _plausible(text: str, parsed: _Parsed) -> bool:
    """Reject bare clock readings that are counts: 便宜一点, 有3点建议, 第2点, 三点五个百分点."""
    if parsed.day is not None or parsed.part is not None:
        return True
    written = text[parsed.start : parsed.end]
    if written == "一点":
        return False
    if _COUNTED.match(text, parsed.end):
        return False
    return parsed.start == 0 or text[parsed.start - 1] not in "第有这那几"


def _start_ok(text: str, i: int) -> bool:
    """Expressions never start in the middle of a number or an ASCII word."""
    if i == 0:
        return True
    here, prev = text[i], text[i - 1]
    if here.isascii() and here.isdigit():
        return not (prev.isascii() and prev.isalnum()) and not after_number(text, i)
    if here in CN_DIGITS + "百":
        return prev not in CN_DIGITS + "百千万第"
    return True


# ---------------------------------------------------------------- English, for English commands

_EN_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
_EN_WEEKDAYS = {
    "monday": 0,
    "mon": 0,
    "tuesday": 1,
    "tue": 1,
    "tues": 1,
    "wednesday": 2,
    "wed": 2,
    "thursday": 3,
    "thu": 3,
    "thurs": 3,
    "friday": 4,
    "fri": 4,
    "saturday": 5,
    "sunday": 6,
    "sun": 6,
}  # fmt: skip  ("sat" is left out: "sat down with the CFO" is no Saturday)
_EN_N = r"(?:\d{1,3}|an?|one|two|three|four|five|six|seven|eight|nine|ten)"
_EN_WD = "|".join(sorted(_EN_WEEKDAYS, key=len, reverse=True))
_EN_DAY = re.compile(
    r"(?P<rel>the day after tomorrow|day after tomorrow|tomorrow|tmrw|tmr|today|tonight"
    r"|yesterday)\b"
    rf"|(?:(?P<wrel>next|this|last|coming)\s+)?(?:on\s+)?(?P<wd>{_EN_WD})\b"
    r"|(?P<nw>next|last)\s+(?P<unit>week|month)\b"
    rf"|in\s+(?P<n>{_EN_N})\s+(?P<u>minutes?|mins?|hours?|hrs?|days?|weeks?|months?)\b"
    rf"|(?P<n2>{_EN_N})\s+(?P<u2>days?|weeks?)\s+(?P<dir>later|from now|ago)\b"
    r"|(?:by\s+)?(?:the\s+)?end\s+of\s+(?:the\s+|this\s+)?(?P<eo>month|week)\b",
    re.I,
)
_EN_PART = re.compile(r"(?:in\s+the\s+|at\s+)?(?P<p>morning|afternoon|evening|night|noon)\b", re.I)
_EN_PARTS = {
    "morning": "上午",
    "afternoon": "下午",
    "evening": "晚上",
    "night": "晚上",
    "noon": "中午",
}
_EN_CLOCK = re.compile(
    r"(?:at\s+)?(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ap>am|pm|a\.m\.|p\.m\.)"
    r"|at\s+(?P<h2>\d{1,2})(?::(?P<m2>\d{2}))?(?![\d:])",
    re.I,
)
_EN_GAP = re.compile(r"[ \t,]*")


def _en_count(word: str) -> int:
    return int(word) if word.isdigit() else _EN_NUMBERS[word.lower()]


def _en_day(m: re.Match[str], now: datetime) -> _Day | None:
    """tomorrow / next Monday / on Friday / in 3 days / end of the month -> a day."""
    today = now.date()
    if m["rel"]:
        rel = m["rel"].lower()
        if rel == "tonight":
            return _Day((today,), part="晚上")
        offset = {"today": 0, "yesterday": -1}.get(rel, 2 if "after" in rel else 1)
        return _Day((today + timedelta(days=offset),))
    if m["wd"]:
        weekday = _EN_WEEKDAYS[m["wd"].lower()]
        rel = (m["wrel"] or "").lower()
        if rel in ("", "coming"):
            first = today + timedelta(days=(weekday - today.weekday()) % 7)
            return _Day((first, first + timedelta(days=7)), fixed=False)
        weeks = {"this": 0, "next": 1, "last": -1}[rel]
        monday = today - timedelta(days=today.weekday()) + timedelta(weeks=weeks)
        return _Day((monday + timedelta(days=weekday),))
    if m["unit"]:
        sign = 1 if m["nw"].lower() == "next" else -1
        if m["unit"].lower() == "week":
            monday = today - timedelta(days=today.weekday()) + timedelta(weeks=sign)
            return _Day((monday,))
        first = _add_months(date(today.year, today.month, 1), sign)
        return _Day((_first_workday(first.year, first.month) if sign > 0 else first,))
    if m["eo"]:
        if m["eo"].lower() == "week":
            return _Day((today + timedelta(days=max(0, 4 - today.weekday())),))
        return _Day((max(_last_workday(today.year, today.month), today),))
    n, unit = (m["n"], m["u"]) if m["n"] else (m["n2"], m["u2"])
    count = _en_count(n) * (-1 if (m["dir"] or "").lower() == "ago" else 1)
    unit = unit.lower()
    if unit.startswith(("min", "hour", "hr")):
        minutes = count * (1 if unit.startswith("min") else 60)
        return _Day(moment=now.replace(second=0, microsecond=0) + timedelta(minutes=minutes))
    if unit.startswith("month"):
        return _Day((_add_months(today, count),))
    return _Day((today + timedelta(days=count * (7 if unit.startswith("week") else 1)),))


def _en_clock(text: str, pos: int) -> tuple[int, _Clock | None] | None:
    m = _EN_CLOCK.match(text, pos)
    if m is None:
        return None
    if m["h"] is not None:
        hour, minute = int(m["h"]), int(m["m"] or 0)
        if not 1 <= hour <= 12 or minute > 59:
            return m.end(), None
        pm = m["ap"].lower().startswith("p")
        return m.end(), _Clock(hour % 12 + (12 if pm else 0), minute, False)
    hour, minute = int(m["h2"]), int(m["m2"] or 0)
    if hour > 23 or minute > 59:
        return m.end(), None
    return m.end(), _Clock(hour, minute, True)


def _parse_en(text: str, pos: int, now: datetime) -> _Parsed | None:
    """[day] [part] [clock] or [clock] [day] in English, starting exactly at pos."""
    if pos > 0 and text[pos - 1].isascii() and text[pos - 1].isalnum():
        return None
    day: _Day | None = None
    part: str | None = None
    clock: _Clock | None = None
    bad = False
    cursor = pos
    clock_first = _en_clock(text, cursor)
    if clock_first is not None:
        cursor, clock = clock_first
        bad = clock is None
        gap = _EN_GAP.match(text, cursor)
        after = _EN_DAY.match(text, gap.end() if gap else cursor)
        if after is not None:
            day, cursor = _en_day(after, now), after.end()
        return _Parsed(pos, cursor, day, part, clock, bad)
    m = _EN_DAY.match(text, cursor)
    if m is not None:
        day, cursor = _en_day(m, now), m.end()
        if day is not None and day.moment is not None:
            return _Parsed(pos, cursor, day, None, None, False)
    gap = _EN_GAP.match(text, cursor)
    at = gap.end() if gap else cursor
    pm = _EN_PART.match(text, at) if day is None or day.part is None else None
    if pm is not None and (day is not None or at == pos):
        part, cursor = _EN_PARTS[pm["p"].lower()], pm.end()
        gap = _EN_GAP.match(text, cursor)
        at = gap.end() if gap else cursor
    if day is not None or part is not None:
        hit = _en_clock(text, at)
        if hit is not None:
            cursor, clock = hit
            bad = clock is None
    if day is None and part is None:
        return None
    return _Parsed(pos, cursor, day, part, clock, bad)


# ---------------------------------------------------------------- resolution


def _offset(t: time) -> timedelta:
    """A time of day as an offset from midnight."""
    return timedelta(hours=t.hour, minutes=t.minute)


def _clock_offset(clock: _Clock, part: str | None) -> timedelta | None:
    """The clock as an offset from midnight once the day part applies; None if impossible."""
    hour = clock.hour
    if part == "上午" and hour > 12:
        return None
    if part == "凌晨":
        if hour > 6 and hour != 12:
            return None
        hour %= 12
    elif part in ("下午", "傍晚", "晚上") and 1 <= hour <= 11:
        hour += 12
    elif part == "晚上" and hour == 12:
        hour = 24  # 晚上12点 is midnight, the end of that day
    elif (part == "中午" and 1 <= hour <= 5) or (part is None and clock.twelve_hour and hour <= 6):
        hour += 12 if hour else 0
    if hour == 24 and clock.minute:
        return None
    return timedelta(hours=hour, minutes=clock.minute)


@dataclass(frozen=True)
class _Resolved:
    """A moment, whether a time of day was given, and whether it lies clearly ahead of now."""

    at: datetime
    has_time: bool
    ahead: bool  # False for today without a clock, or a day part already under way


def _resolve(parsed: _Parsed, now: datetime, tz: ZoneInfo) -> _Resolved | WhenError:
    """Turn a parsed expression into a moment, or the reason it cannot be one."""
    day, today = parsed.day, now.date()
    if parsed.bad_clock or (day is not None and day.impossible):
        return WhenError.IMPOSSIBLE
    if day is not None and day.moment is not None:
        return _Resolved(day.moment, True, True) if day.moment > now else WhenError.PAST
    raw_part = day.part if day is not None and day.part else parsed.part
    part = _PART_ALIASES.get(raw_part, raw_part) if raw_part else None
    dates = day.dates if day is not None else (today, today + timedelta(days=1))
    fixed = day.fixed if day is not None else False
    clock_at: timedelta | None = None
    if parsed.clock is not None:
        clock_at = _clock_offset(parsed.clock, part)
        if clock_at is None:
            return WhenError.IMPOSSIBLE
    for d in dates:
        midnight = datetime.combine(d, time(), tzinfo=tz)
        if clock_at is not None:
            if midnight + clock_at > now:
                return _Resolved(midnight + clock_at, True, True)
        elif part is not None:
            start, end = DAY_PARTS[part]
            until = midnight + (timedelta(days=1) if end is None else _offset(end))
            if midnight + _offset(start) > now:
                return _Resolved(midnight + _offset(start), True, True)
            if now < until:  # the part is under way: the next full hour within it
                nxt = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
                return _Resolved(min(nxt, until), True, False)
        elif d > today or (d == today and (fixed or now.time() < WORKDAY_END)):
            return _Resolved(datetime.combine(d, DEFAULT_TIME, tzinfo=tz), False, d > today)
        if fixed:
            break
    return WhenError.PAST


Found = tuple[When | WhenProblem, bool]  # an expression and whether it lies clearly ahead


def scan_times(text: str, now: datetime, tz: ZoneInfo) -> Iterator[Found]:
    """Every time expression in text, left to right, without overlaps, with its 'ahead' flag."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    local_now = now.astimezone(tz)
    norm = fold_width(text)
    i = 0
    while i < len(norm):
        parsed = None
        if norm[i].isascii() and norm[i].isalnum():
            parsed = _parse_en(norm, i, local_now)
        if parsed is None and _start_ok(norm, i):
            parsed = _parse_at(norm, i, local_now)
        if parsed is None or not _plausible(norm, parsed):
            i += 1
            continue
        span = (parsed.start, parsed.end)
        written = text[parsed.start : parsed.end]
        result = _resolve(parsed, local_now, tz)
        if isinstance(result, WhenError):
            yield WhenProblem(result, span, written), False
        else:
            yield When(result.at, result.has_time, span, written), result.ahead
        i = parsed.end


def find_when(text: str, *, now: datetime, tz: ZoneInfo) -> When | WhenProblem | None:
    """The first (leftmost) time expression in text, read as a future next step; None if none."""
    for found, _ in scan_times(text, now, tz):
        return found
    return None
