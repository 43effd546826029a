"""Chinese time, amount and follow-up parsing, against fixed clocks and literal expectations."""

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_store.config_data import DEFAULT_FOLLOWUP_KINDS, FollowupKind
from handlers.parsing import (
    When,
    WhenError,
    WhenProblem,
    find_amount,
    find_followup_kind,
    find_when,
    kind_label,
    looks_like_note,
    parse_amount,
    split_next_step,
)

SH = ZoneInfo("Asia/Shanghai")
NOWS: dict[str, datetime] = {
    "fri": datetime(2026, 11, 20, 19, 30, tzinfo=SH),  # a Friday evening
    "monthend": datetime(2026, 11, 30, 10, 0, tzinfo=SH),  # Monday, last day of November
    "yearend": datetime(2026, 12, 31, 16, 0, tzinfo=SH),  # Thursday, New Year's Eve
    "holiday": datetime(2026, 10, 1, 10, 0, tzinfo=SH),  # National Day, Oct 10 is a 调休 workday
}

# (now, text, expected): "YYYY-MM-DD HH:MM" plus has_time, a WhenError, or None for no time.
Expected = tuple[str, bool] | WhenError | None
TIMES: list[tuple[str, str, Expected]] = [
    # --- Friday 2026-11-20 19:30
    ("fri", "今天", ("2026-11-20 09:00", False)),
    ("fri", "明天", ("2026-11-21 09:00", False)),
    ("fri", "后天", ("2026-11-22 09:00", False)),
    ("fri", "大后天", ("2026-11-23 09:00", False)),
    ("fri", "今晚", ("2026-11-20 20:00", True)),
    ("fri", "今晚8点", ("2026-11-20 20:00", True)),
    ("fri", "晚上八点", ("2026-11-20 20:00", True)),
    ("fri", "晚8点", ("2026-11-20 20:00", True)),
    ("fri", "晚上12点", ("2026-11-21 00:00", True)),
    ("fri", "明早", ("2026-11-21 09:00", True)),
    ("fri", "明早9点", ("2026-11-21 09:00", True)),
    ("fri", "明天上午", ("2026-11-21 09:00", True)),
    ("fri", "明天的下午", ("2026-11-21 14:00", True)),
    ("fri", "下周三", ("2026-11-25 09:00", False)),
    ("fri", "下下周一", ("2026-11-30 09:00", False)),
    ("fri", "下周一3点", ("2026-11-23 15:00", True)),
    ("fri", "下周", ("2026-11-23 09:00", False)),
    ("fri", "这周五", ("2026-11-20 09:00", False)),
    ("fri", "本周五", ("2026-11-20 09:00", False)),
    ("fri", "周五", ("2026-11-27 09:00", False)),
    ("fri", "周五下午", ("2026-11-27 14:00", True)),
    ("fri", "星期三", ("2026-11-25 09:00", False)),
    ("fri", "礼拜三", ("2026-11-25 09:00", False)),
    ("fri", "周末", ("2026-11-21 09:00", False)),
    ("fri", "下周末", ("2026-11-28 09:00", False)),
    ("fri", "3天后", ("2026-11-23 09:00", False)),
    ("fri", "三天后", ("2026-11-23 09:00", False)),
    ("fri", "两周后", ("2026-12-04 09:00", False)),
    ("fri", "2周后", ("2026-12-04 09:00", False)),
    ("fri", "一个月后", ("2026-12-20 09:00", False)),
    ("fri", "半个月后", ("2026-12-05 09:00", False)),
    ("fri", "3个工作日后", ("2026-11-25 09:00", False)),
    ("fri", "半小时后", ("2026-11-20 20:00", True)),
    ("fri", "2小时后", ("2026-11-20 21:30", True)),
    ("fri", "月底", ("2026-11-30 09:00", False)),
    ("fri", "下个月5号", ("2026-12-05 09:00", False)),
    ("fri", "下月初", ("2026-12-01 09:00", False)),
    ("fri", "下个月", ("2026-12-01 09:00", False)),
    ("fri", "下个月底", ("2026-12-31 09:00", False)),
    ("fri", "12月5日", ("2026-12-05 09:00", False)),
    ("fri", "12月5号", ("2026-12-05 09:00", False)),
    ("fri", "十二月五日", ("2026-12-05 09:00", False)),
    ("fri", "12/5", ("2026-12-05 09:00", False)),
    ("fri", "2027年1月3日", ("2027-01-03 09:00", False)),
    ("fri", "2027-01-03", ("2027-01-03 09:00", False)),
    ("fri", "明年3月5日", ("2027-03-05 09:00", False)),
    ("fri", "12月5日15:30", ("2026-12-05 15:30", True)),
    ("fri", "2月29日", ("2028-02-29 09:00", False)),
    ("fri", "二十号", ("2026-12-20 09:00", False)),
    ("fri", "31号", ("2026-12-31 09:00", False)),
    ("fri", "15:30", ("2026-11-21 15:30", True)),
    ("fri", "下午3点", ("2026-11-21 15:00", True)),
    ("fri", "三点半", ("2026-11-21 15:30", True)),
    ("fri", "3点", ("2026-11-21 15:00", True)),
    ("fri", "3:30", ("2026-11-21 15:30", True)),
    ("fri", "03:30", ("2026-11-21 03:30", True)),
    ("fri", "10点", ("2026-11-21 10:00", True)),
    ("fri", "8点15分", ("2026-11-21 08:15", True)),
    ("fri", "十点一刻", ("2026-11-21 10:15", True)),
    ("fri", "上午10点半", ("2026-11-21 10:30", True)),
    ("fri", "中午", ("2026-11-21 12:00", True)),
    ("fri", "中午1点", ("2026-11-21 13:00", True)),
    ("fri", "傍晚", ("2026-11-21 17:30", True)),
    ("fri", "周一三点开会", ("2026-11-23 15:00", True)),
    ("fri", "这周五下午", WhenError.PAST),
    ("fri", "昨天下午3点", WhenError.PAST),
    ("fri", "今天上午9点", WhenError.PAST),
    ("fri", "上周三", WhenError.PAST),
    ("fri", "3天前", WhenError.PAST),
    ("fri", "本月15号", WhenError.PAST),
    ("fri", "2月30日", WhenError.IMPOSSIBLE),
    ("fri", "13月1日", WhenError.IMPOSSIBLE),
    ("fri", "4月31日", WhenError.IMPOSSIBLE),
    ("fri", "2027年2月29日", WhenError.IMPOSSIBLE),
    ("fri", "32号", WhenError.IMPOSSIBLE),
    ("fri", "25点", WhenError.IMPOSSIBLE),
    ("fri", "3点70分", WhenError.IMPOSSIBLE),
    ("fri", "上午15点", WhenError.IMPOSSIBLE),
    ("fri", "对报价有兴趣", None),
    ("fri", "便宜一点", None),
    ("fri", "客户有3点顾虑", None),
    ("fri", "第2点", None),
    ("fri", "5号楼", None),
    ("fri", "一周两次", None),
    ("fri", "每周一例会", None),
    ("fri", "报价12万", None),
    ("fri", "1/3的预算", None),
    ("fri", "晚点再说", None),
    ("fri", "上午好", None),
    # --- month end: Monday 2026-11-30 10:00
    ("monthend", "月底", ("2026-11-30 09:00", False)),
    ("monthend", "今天", ("2026-11-30 09:00", False)),
    ("monthend", "30号", ("2026-11-30 09:00", False)),
    ("monthend", "周一", ("2026-11-30 09:00", False)),
    ("monthend", "周一下午", ("2026-11-30 14:00", True)),
    ("monthend", "今晚", ("2026-11-30 19:00", True)),
    ("monthend", "上午", ("2026-11-30 11:00", True)),
    ("monthend", "今天上午", ("2026-11-30 11:00", True)),
    ("monthend", "中午", ("2026-11-30 12:00", True)),
    ("monthend", "下午3点", ("2026-11-30 15:00", True)),
    ("monthend", "上午10点半", ("2026-11-30 10:30", True)),
    ("monthend", "10点", ("2026-12-01 10:00", True)),
    ("monthend", "一个月后", ("2026-12-30 09:00", False)),
    ("monthend", "3天后", ("2026-12-03 09:00", False)),
    ("monthend", "下周三", ("2026-12-09 09:00", False)),
    ("monthend", "星期三", ("2026-12-02 09:00", False)),
    ("monthend", "这周五", ("2026-12-04 09:00", False)),
    ("monthend", "下个月5号", ("2026-12-05 09:00", False)),
    ("monthend", "下月初", ("2026-12-01 09:00", False)),
    ("monthend", "月初", ("2026-12-01 09:00", False)),
    ("monthend", "12/5", ("2026-12-05 09:00", False)),
    ("monthend", "今天上午9点", WhenError.PAST),
    # --- year end: Thursday 2026-12-31 16:00
    ("yearend", "明天", ("2027-01-01 09:00", False)),
    ("yearend", "月底", ("2026-12-31 09:00", False)),
    ("yearend", "31号", ("2026-12-31 09:00", False)),
    ("yearend", "下午", ("2026-12-31 17:00", True)),
    ("yearend", "今天下午", ("2026-12-31 17:00", True)),
    ("yearend", "傍晚", ("2026-12-31 17:30", True)),
    ("yearend", "晚上八点", ("2026-12-31 20:00", True)),
    ("yearend", "中午", ("2027-01-01 12:00", True)),
    ("yearend", "15:30", ("2027-01-01 15:30", True)),
    ("yearend", "3点", ("2027-01-01 15:00", True)),
    ("yearend", "下周三", ("2027-01-06 09:00", False)),
    ("yearend", "下下周一", ("2027-01-11 09:00", False)),
    ("yearend", "这周五", ("2027-01-01 09:00", False)),
    ("yearend", "两周后", ("2027-01-14 09:00", False)),
    ("yearend", "一个月后", ("2027-01-31 09:00", False)),
    ("yearend", "下月初", ("2027-01-04 09:00", False)),
    ("yearend", "下个月5号", ("2027-01-05 09:00", False)),
    ("yearend", "5号", ("2027-01-05 09:00", False)),
    ("yearend", "12月5日", ("2027-12-05 09:00", False)),
    ("yearend", "12/5", ("2027-12-05 09:00", False)),
    ("yearend", "1月3日", ("2027-01-03 09:00", False)),
    ("yearend", "今年12月5日", WhenError.PAST),
    ("yearend", "2026-12-30", WhenError.PAST),
    # --- National Day: Thursday 2026-10-01 10:00
    ("holiday", "今天", ("2026-10-01 09:00", False)),
    ("holiday", "明天", ("2026-10-02 09:00", False)),
    ("holiday", "周五", ("2026-10-02 09:00", False)),
    ("holiday", "下周一", ("2026-10-05 09:00", False)),
    ("holiday", "1个工作日后", ("2026-10-08 09:00", False)),
    ("holiday", "3个工作日后", ("2026-10-10 09:00", False)),
    ("holiday", "月初", ("2026-10-08 09:00", False)),
    ("holiday", "月底", ("2026-10-30 09:00", False)),
    ("holiday", "下月初", ("2026-11-02 09:00", False)),
    ("holiday", "十月八号", ("2026-10-08 09:00", False)),
    ("holiday", "9月30日", ("2027-09-30 09:00", False)),
    ("holiday", "下午3点", ("2026-10-01 15:00", True)),
    ("holiday", "9点", ("2026-10-02 09:00", True)),
    ("holiday", "两周后", ("2026-10-15 09:00", False)),
    ("holiday", "昨天", WhenError.PAST),
]


def _at(literal: str) -> datetime:
    """A wall-clock literal in Shanghai time."""
    return datetime.strptime(literal, "%Y-%m-%d %H:%M").replace(tzinfo=SH)


@pytest.mark.parametrize(("now", "text", "expected"), TIMES, ids=[f"{n}-{t}" for n, t, _ in TIMES])
def test_find_when_table(now: str, text: str, expected: Expected) -> None:
    """Every supported expression resolves against an injected clock, never the wall clock."""
    found = find_when(text, now=NOWS[now], tz=SH)
    if expected is None:
        assert found is None
    elif isinstance(expected, WhenError):
        assert isinstance(found, WhenProblem)
        assert found.kind is expected
        assert found.text == text
    else:
        assert isinstance(found, When)
        assert (found.at, found.has_time) == (_at(expected[0]), expected[1])
        assert found.at.utcoffset() == _at(expected[0]).utcoffset()


def test_time_table_is_large_enough() -> None:
    """The brief asks for at least 80 expressions across the four clocks."""
    assert len(TIMES) >= 80
    assert {now for now, _, _ in TIMES} == set(NOWS)


@pytest.mark.parametrize(
    ("text", "span", "written"),
    [
        ("跟进 阿里 今天拜访了王总, 对报价有兴趣, 下周三下午再联系", (6, 8), "今天"),
        ("明天下午3点到5点", (0, 6), "明天下午3点"),
        ("下周三 下午3点 去公司", (0, 8), "下周三 下午3点"),
        ("对报价有兴趣，１２月５日再联系", (7, 12), "１２月５日"),
        ("有3点建议，周五前回复", (6, 8), "周五"),
    ],
)
def test_find_when_span_and_text(text: str, span: tuple[int, int], written: str) -> None:
    """Spans point into the text as typed (full-width digits too), so callers can cut it out."""
    found = find_when(text, now=NOWS["fri"], tz=SH)
    assert found is not None
    assert (found.span, found.text) == (span, written)
    assert text[span[0] : span[1]] == written


def test_find_when_accepts_now_in_another_zone() -> None:
    """A UTC `now` is read in the company zone, and the answer comes back in that zone."""
    now_utc = datetime(2026, 11, 20, 11, 30, tzinfo=UTC)  # 19:30 in Shanghai
    found = find_when("今晚", now=now_utc, tz=SH)
    assert isinstance(found, When)
    assert found.at == _at("2026-11-20 20:00")
    assert found.at.tzinfo == SH


def test_find_when_refuses_naive_now() -> None:
    """A naive clock would silently shift every reminder by the server's offset."""
    with pytest.raises(ValueError):
        find_when("明天", now=datetime(2026, 11, 20, 19, 30), tz=SH)


# (now, note, content, next_step, when text, when: literal moment, a WhenError, or None)
SPLITS: list[tuple[str, str, str, str | None, str | None, str | WhenError | None]] = [
    (
        "fri",
        "今天拜访了王总, 对报价有兴趣, 下周三下午再联系",
        "今天拜访了王总, 对报价有兴趣",
        "下周三下午再联系",
        "下周三下午",
        "2026-11-25 14:00",
    ),
    (
        "fri",
        "今天上午拜访了王总，对报价有兴趣，下周三下午再联系",
        "今天上午拜访了王总，对报价有兴趣",
        "下周三下午再联系",
        "下周三下午",
        "2026-11-25 14:00",
    ),
    ("fri", "今天拜访王总，客户比较关心价格", "今天拜访王总，客户比较关心价格", None, None, None),
    ("fri", "报价发过去了。", "报价发过去了", None, None, None),
    (
        "fri",
        "电话沟通了需求，下周一发方案，周三再电话确认",
        "电话沟通了需求",
        "下周一发方案，周三再电话确认",
        "下周一",
        "2026-11-23 09:00",
    ),
    ("fri", "已发报价下周三再联系", "已发报价", "下周三再联系", "下周三", "2026-11-25 09:00"),
    (
        "fri",
        "拜访了王总然后下周三再联系",
        "拜访了王总",
        "下周三再联系",
        "下周三",
        "2026-11-25 09:00",
    ),
    (
        "fri",
        "拜访了王总并约定下周二上门演示",
        "拜访了王总",
        "约定下周二上门演示",
        "下周二",
        "2026-11-24 09:00",
    ),
    ("fri", "拜访了王总 下周三再约", "拜访了王总", "下周三再约", "下周三", "2026-11-25 09:00"),
    (
        "fri",
        "下周三下午再联系，客户比较关心价格",
        "客户比较关心价格",
        "下周三下午再联系",
        "下周三下午",
        "2026-11-25 14:00",
    ),
    ("fri", "下次带技术过去", "", "下次带技术过去", None, None),
    (
        "fri",
        "已发报价，今天上午9点再打",
        "已发报价",
        "今天上午9点再打",
        "今天上午9点",
        WhenError.PAST,
    ),
    (
        "fri",
        "对报价有兴趣。2月30日签约",
        "对报价有兴趣",
        "2月30日签约",
        "2月30日",
        WhenError.IMPOSSIBLE,
    ),
    (
        "fri",
        "微信沟通，客户在出差 12月5日回来再约",
        "微信沟通，客户在出差",
        "12月5日回来再约",
        "12月5日",
        "2026-12-05 09:00",
    ),
    (
        "fri",
        "王总下午开会没见到，明早9点再去",
        "王总下午开会没见到",
        "明早9点再去",
        "明早9点",
        "2026-11-21 09:00",
    ),
    (
        "fri",
        "电话没打通，明天上午10点再打",
        "电话没打通",
        "明天上午10点再打",
        "明天上午10点",
        "2026-11-21 10:00",
    ),
    (
        "fri",
        "昨天下午3点电话沟通过，客户要求降价10%；计划月底前给出新报价",
        "昨天下午3点电话沟通过，客户要求降价10%",
        "计划月底前给出新报价",
        "月底",
        "2026-11-30 09:00",
    ),
    ("fri", "送了样品, 3天后回访", "送了样品", "3天后回访", "3天后", "2026-11-23 09:00"),
    (
        "fri",
        "客户说预算50万，2周后再谈",
        "客户说预算50万",
        "2周后再谈",
        "2周后",
        "2026-12-04 09:00",
    ),
    ("fri", "今天下午拜访客户", "今天下午拜访客户", None, None, None),
    (
        "monthend",
        "今天下午拜访客户",
        "",
        "今天下午拜访客户",
        "今天下午",
        "2026-11-30 14:00",
    ),
    (
        "monthend",
        "今天上午拜访王总，下午再打电话",
        "今天上午拜访王总",
        "下午再打电话",
        "下午",
        "2026-11-30 14:00",
    ),
    (
        "monthend",
        "会议纪要已发，15:30跟进",
        "会议纪要已发",
        "15:30跟进",
        "15:30",
        "2026-11-30 15:30",
    ),
    (
        "yearend",
        "今天签了意向书，下周三下午3点去公司签合同",
        "今天签了意向书",
        "下周三下午3点去公司签合同",
        "下周三下午3点",
        "2027-01-06 15:00",
    ),
    (
        "holiday",
        "国庆期间客户休假，3个工作日后再联系",
        "国庆期间客户休假",
        "3个工作日后再联系",
        "3个工作日后",
        "2026-10-10 09:00",
    ),
]


@pytest.mark.parametrize(
    ("now", "note", "content", "next_step", "when_text", "when"),
    SPLITS,
    ids=[f"{s[0]}-{s[1]}" for s in SPLITS],
)
def test_split_next_step(
    now: str,
    note: str,
    content: str,
    next_step: str | None,
    when_text: str | None,
    when: str | WhenError | None,
) -> None:
    """What happened and what comes next land in different fields; past times stay in content."""
    split = split_next_step(note, now=NOWS[now], tz=SH)
    assert (split.content, split.next_step) == (content, next_step)
    if when is None:
        assert split.when is None
        return
    assert split.when is not None
    assert split.when.text == when_text
    assert note[split.when.span[0] : split.when.span[1]] == when_text
    if isinstance(when, WhenError):
        assert isinstance(split.when, WhenProblem)
        assert split.when.kind is when
    else:
        assert isinstance(split.when, When)
        assert split.when.at == _at(when)


AMOUNTS: list[tuple[str, Decimal | None]] = [
    ("50万", Decimal("500000")),
    ("1.2亿", Decimal("120000000")),
    ("三十万", Decimal("300000")),
    ("5w", Decimal("50000")),
    ("5W", Decimal("50000")),
    ("80k", Decimal("80000")),
    ("80K", Decimal("80000")),
    ("¥120,000", Decimal("120000")),
    ("￥120,000", Decimal("120000")),
    ("120000元", Decimal("120000")),
    ("12.5万元", Decimal("125000")),
    ("一百二十万", Decimal("1200000")),
    ("3千", Decimal("3000")),
    ("两百万", Decimal("2000000")),
    ("五千", Decimal("5000")),
    ("1万5", Decimal("15000")),
    ("三万五", Decimal("35000")),
    ("1,200万", Decimal("12000000")),
    ("1亿2000万", Decimal("120000000")),
    ("3.5千万", Decimal("35000000")),
    ("50多万", Decimal("500000")),
    ("0.5万", Decimal("5000")),
    ("人民币50万元", Decimal("500000")),
    ("RMB 5000", Decimal("5000")),
    ("5000块钱", Decimal("5000")),
    ("伍拾万元整", Decimal("500000")),
    ("¥99.5", Decimal("99.5")),
    ("1.23456万", Decimal("12345.6")),
    ("１２万", Decimal("120000")),
    (" 500 ", Decimal("500")),
    ("", None),
    ("abc", None),
    ("约50万", None),
    ("50万美元", None),
    ("$500", None),
    ("50-60万", None),
    ("5kg", None),
    ("1.2.3", None),
    ("-5万", None),
    ("万", None),
]


@pytest.mark.parametrize(("text", "expected"), AMOUNTS, ids=[a or "empty" for a, _ in AMOUNTS])
def test_parse_amount(text: str, expected: Decimal | None) -> None:
    """Deal amounts arrive in every notation reps type; foreign money and junk are refused."""
    assert parse_amount(text) == expected


FOUND_AMOUNTS: list[tuple[str, tuple[Decimal, tuple[int, int]] | None]] = [
    ("云服务器采购 50万", (Decimal("500000"), (7, 10))),
    ("商机 阿里 云服务器采购 50万", (Decimal("500000"), (13, 16))),
    ("2027年1月3日签约 50万", (Decimal("500000"), (12, 15))),
    ("采购50台，总价80万", (Decimal("800000"), (8, 11))),
    ("预算120000", (Decimal("120000"), (2, 8))),
    ("对报价有兴趣，50万", (Decimal("500000"), (7, 10))),
    ("合同额三十万左右", (Decimal("300000"), (3, 6))),
    ("预算50-60万", (Decimal("500000"), (2, 8))),
    ("给了100元红包", (Decimal("100"), (2, 6))),
    ("十分感谢，预算3千", (Decimal("3000"), (7, 9))),
    ("合同 ¥ 120,000.50", (Decimal("120000.5"), (3, 15))),
    ("签约金额：80k", (Decimal("80000"), (5, 8))),
    ("15号付款5000元", (Decimal("5000"), (5, 10))),
    ("采购50台服务器", None),
    ("采购2000台", None),
    ("电话13800138000", None),
    ("型号X5000", None),
    ("RTX4090显卡", None),
    ("打8折", None),
    ("报价15:30发", None),
    ("2026-12-05签约", None),
    ("一万个理由", None),
    ("增长2000%", None),
    ("单价1.5", None),
    ("报价5万美元", None),
]


@pytest.mark.parametrize(("text", "expected"), FOUND_AMOUNTS, ids=[t for t, _ in FOUND_AMOUNTS])
def test_find_amount(text: str, expected: tuple[Decimal, tuple[int, int]] | None) -> None:
    """Only numbers that read as money count; counts, dates, phones and models do not."""
    assert find_amount(text) == expected


def test_amount_tables_are_large_enough() -> None:
    """The brief asks for at least 25 amounts."""
    assert len(AMOUNTS) + len(FOUND_AMOUNTS) >= 25


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("今天拜访了王总", "visit"),
        ("上门演示", "visit"),
        ("面谈了一小时", "visit"),
        ("登门拜访", "visit"),
        ("打电话给李总", "call"),
        ("致电客户", "call"),
        ("电话沟通需求", "call"),
        ("客户来电问进度", "call"),
        ("加了微信", "wechat"),
        ("企微发了资料", "wechat"),
        ("开会讨论方案", "meeting"),
        ("参加了客户的会议", "meeting"),
        ("电话会议", "meeting"),
        ("上门演示后微信联系", "visit"),
        ("给他 call 了一下", "call"),
        ("recall 的问题", None),
        ("其他方面都还好", None),
        ("对报价有兴趣", None),
    ],
)
def test_find_followup_kind(text: str, kind: str | None) -> None:
    """The first kind word decides, from the configured kinds; the caller falls back."""
    found = find_followup_kind(text, DEFAULT_FOLLOWUP_KINDS)
    assert (found.code if found else None) == kind


def test_a_configured_kind_is_detected_and_labelled() -> None:
    """An admin's new kind is understood in chat, with its own words and label."""
    kinds = [*DEFAULT_FOLLOWUP_KINDS, FollowupKind("training", "培训", ("上课", "讲课"))]
    found = find_followup_kind("今天去做了培训，下周再回访", kinds)
    assert found is not None and found.code == "training"
    assert kind_label(kinds, "training") == "培训"
    assert find_followup_kind("今天去做了培训", DEFAULT_FOLLOWUP_KINDS) is None
    assert kind_label(kinds, "call") == "电话"
    assert kind_label(kinds, "gone") == "gone"  # a kind removed later still shows its code


def test_default_kinds_cover_the_brief() -> None:
    """The words the brief names map to the four kinds the store knows."""
    for word, kind in {
        "电话": "call",
        "打电话": "call",
        "致电": "call",
        "拜访": "visit",
        "上门": "visit",
        "面谈": "visit",
        "微信": "wechat",
        "会议": "meeting",
        "开会": "meeting",
    }.items():
        found = find_followup_kind(word, DEFAULT_FOLLOWUP_KINDS)
        assert found is not None and found.code == kind


# Dates written with a dot, and the numbers that must stay numbers.
DOT_DATES: list[tuple[str, str | None, str | None]] = [
    # (text, the time expression found, "YYYY-MM-DD HH:MM") on Friday 2026-11-20 19:30
    ("12.12再联系", "12.12", "2026-12-12 09:00"),
    ("3.15前给报价", "3.15", "2027-03-15 09:00"),
    ("12.12下午3点再谈", "12.12下午3点", "2026-12-12 15:00"),
    ("12.12 14:00 上门", "12.12 14:00", "2026-12-12 14:00"),
    ("3.15号", "3.15号", "2027-03-15 09:00"),
    ("12.1日见", "12.1日", "2026-12-01 09:00"),
    ("推到12.12再谈", "12.12", "2026-12-12 09:00"),
    ("聊了报价，12.12下午再联系", "12.12下午", "2026-12-12 14:00"),
    ("2026.12.12", "2026.12.12", "2026-12-12 09:00"),
    ("1.2万", None, None),
    ("报价降到1.5", None, None),
    ("降到3.5再说", None, None),
    ("增长3.2%", None, None),
    ("评分4.5分", None, None),
    ("折扣9.5折", None, None),
    ("版本2.10发布", None, None),
    ("单价3.15元", None, None),
    ("单价3.15前有效", None, None),
    ("1.5个点", None, None),
    ("12.32再联系", None, None),
    ("13.1再联系", None, None),
]


@pytest.mark.parametrize(("text", "written", "at"), DOT_DATES)
def test_dates_with_a_dot(text: str, written: str | None, at: str | None) -> None:
    found = find_when(text, now=NOWS["fri"], tz=SH)
    if written is None:
        assert found is None
        return
    assert isinstance(found, When) and found.text == written
    assert found.at.strftime("%Y-%m-%d %H:%M") == at


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("报价1.5万，12.12再联系", Decimal(15000)),
        ("12.12再联系", None),
        ("1.2万", Decimal(12000)),
        ("3.15前付2.5万", Decimal(25000)),
    ],
)
def test_dot_dates_do_not_swallow_amounts(text: str, amount: Decimal | None) -> None:
    found = find_amount(text)
    assert (found[0] if found else None) == amount


def test_a_dot_date_in_a_note_is_the_next_step() -> None:
    split = split_next_step("聊了报价1.2万，12.12下午再联系", now=NOWS["fri"], tz=SH)
    assert split.content == "聊了报价1.2万" and split.next_step == "12.12下午再联系"
    assert isinstance(split.when, When) and split.when.text == "12.12下午"


_PIECES = list("0123456789一二两三十点半号日月年周天后前再了，,。:/-. 万千元¥kw") + [
    "今天",
    "下周",
    "星期",
    "下午",
    "晚上",
    "月底",
    "工作日",
    "个月",
    "然后",
]


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join))
def test_parsers_never_raise(text: str) -> None:
    """Whatever a rep types, parsing answers with a value or None, never a crash in the worker."""
    now = NOWS["fri"]
    found = find_when(text, now=now, tz=SH)
    if found is not None:
        assert text[found.span[0] : found.span[1]] == found.text
    split = split_next_step(text, now=now, tz=SH)
    assert len(split.content) + len(split.next_step or "") <= len(text)
    parse_amount(text)
    find_amount(text)


@pytest.mark.parametrize(
    ("word", "note"),
    [
        ("电话沟通了续约", True),  # a kind word
        ("今天拜访了王总", True),
        ("明天再联系", True),  # starts with a time
        ("已发报价", True),
        ("确认样机需求", True),
        ("字节", False),  # names: the rep is asked, nothing is filed on the last customer
        ("北京字节跳动科技有限公司", False),
        ("星辰科技", False),
        ("阿里吧吧网咯", False),
    ],
)
def test_looks_like_note(word: str, note: bool) -> None:
    assert looks_like_note(word, DEFAULT_FOLLOWUP_KINDS, now=NOWS["fri"], tz=SH) is note
