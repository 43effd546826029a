"""新客户 in free form → its fields, and which of them were guessed rather than read.

Labels (`行业:金融 电话:… 联系人:… 城市:…`, either colon) are read as written. Without labels a
word is placed only when its shape or a word list says what it is: a phone through the one
parser, an industry from the industry words, a city from the region list, a contact by a title
(王总, 李经理). Anything placed by position alone is marked guessed, so the bot asks first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from crm_store.names import (
    BRANCH_SUFFIXES,
    CITIES,
    ENGLISH_LEGAL_WORDS,
    LEGAL_SUFFIXES,
    PROVINCES,
    is_generic,
)
from crm_store.phones import find_phone, parse_phone

__all__ = ["FIELDS", "CustomerForm", "read_customer_form", "read_labels"]

FIELDS = ("name", "industry", "phone", "contact", "city")
LABELS: dict[str, str] = {
    **dict.fromkeys(("名称", "名字", "客户名", "公司名", "name"), "name"),
    **dict.fromkeys(("行业", "industry"), "industry"),
    **dict.fromkeys(("电话", "手机", "手机号", "联系电话", "phone", "tel"), "phone"),
    **dict.fromkeys(("联系人", "contact"), "contact"),
    **dict.fromkeys(("城市", "地区", "city"), "city"),
}
_LABEL = re.compile(
    r"(?:(?<=^)|(?<=[\s,，;；、]))("
    + "|".join(sorted(LABELS, key=len, reverse=True))
    + r")\s*[:：]\s*",
    re.I,
)
_SEPARATORS = re.compile(r"[\s,，;；、]+")
INDUSTRIES = frozenset(
    [
        "金融", "银行", "保险", "证券", "基金", "信托", "互联网", "软件", "硬件", "电子", "制造",
        "制造业", "医疗", "医药", "生物", "教育", "培训", "零售", "电商", "物流", "地产", "房地产",
        "能源", "新能源", "汽车", "汽配", "通信", "餐饮", "化工", "农业", "政府", "政务", "媒体",
        "传媒", "广告", "咨询", "游戏", "服务", "半导体", "芯片", "建筑", "快消", "贸易", "旅游",
        "酒店", "航空", "钢铁", "家电", "家居", "服装", "纺织", "食品", "环保", "电力", "机械",
        "物业", "法律", "文化", "体育", "娱乐", "安防", "军工", "光伏", "矿业", "石油", "石化",
        "烟草", "出行", "云计算", "人工智能", "大数据", "IT", "it", "SaaS", "saas", "外贸", "批发",
        "印刷", "包装", "建材", "装饰", "家具", "医院", "学校", "运营商",
    ]
)  # fmt: skip
_NAME_ENDINGS = tuple(
    sorted(
        {*LEGAL_SUFFIXES, *BRANCH_SUFFIXES, "科技", "银行", "医院", "大学", "学院", "研究院",
         "研究所", "中心", "工作室", "事务所", "工厂", "超市", "酒店", "商行", "门店"},
        key=len,
        reverse=True,
    )
)  # fmt: skip
_TITLES = (
    "总经理", "总监", "经理", "主任", "主管", "老板", "老师", "先生", "女士", "小姐", "院长",
    "校长", "局长", "处长", "科长", "部长", "助理", "秘书", "律师", "医生", "董事长", "总", "工",
)  # fmt: skip
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜"
    "叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎"
    "贺顾毛郝龚邵万钱严覃武戴莫孔向汤欧阳司马上官诸葛"
)
_REGIONS = frozenset((*CITIES, *PROVINCES))
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9&.'\-]*")
_OPEN, _CLOSE = "(（[【", ")）]】"


@dataclass(frozen=True)
class CustomerForm:
    """What a 新客户 message said; `guessed` and `leftover` mean: ask before storing."""

    name: str | None = None
    industry: str | None = None
    phone: str | None = None  # the stored spelling (crm_store.phones)
    contact: str | None = None
    city: str | None = None
    guessed: tuple[str, ...] = ()
    leftover: tuple[str, ...] = ()
    bad_phone: str | None = None  # what was labelled or written as a phone but is none
    labelled: tuple[str, ...] = field(default=())

    @property
    def sure(self) -> bool:
        return not self.guessed and not self.leftover


def read_labels(text: str) -> tuple[dict[str, str], str]:
    """The labelled values (`行业:金融`) and the text left outside them."""
    values: dict[str, str] = {}
    matches = list(_LABEL.finditer(text))
    if not matches:
        return values, text
    free = text[: matches[0].start()]
    for k, m in enumerate(matches):
        end = matches[k + 1].start() if k + 1 < len(matches) else len(text)
        values[LABELS[m.group(1).lower() if m.group(1).isascii() else m.group(1)]] = text[
            m.end() : end
        ].strip(" \t,，;；、")
    return values, free


def _is_cjk(word: str) -> bool:
    return all(_CJK.match(ch) for ch in word)


def _join(parts: list[str]) -> str:
    """Words of one name: Chinese runs together, Latin words keep their space."""
    joined = parts[0]
    for part in parts[1:]:
        left, right = joined[-1], part[0]
        spaced = left.isascii() and left.isalnum() and right.isascii() and right.isalnum()
        joined += (" " if spaced else "") + part
    return joined


def _balanced(text: str) -> bool:
    return sum(text.count(c) for c in _OPEN) <= sum(text.count(c) for c in _CLOSE)


def _ends_like_a_name(word: str) -> bool:
    return word.endswith(_NAME_ENDINGS) or word.lower().rstrip(".") in ENGLISH_LEGAL_WORDS


def _name_span(words: list[str]) -> tuple[int, bool]:
    """How many leading words make the name, and whether that was a guess."""
    count = 1
    while count < len(words) and not _balanced(" ".join(words[:count])):
        count += 1  # 阿里巴巴 (中国) 有限公司: a bracket keeps the name open
    latin = bool(_LATIN.fullmatch(words[0]))
    if latin:
        while count < len(words) and _LATIN.fullmatch(words[count]):
            if words[count - 1].lower().rstrip(".") in ENGLISH_LEGAL_WORDS:
                break  # Acme Corp | John: the legal word ends the name
            if words[count].lower() in INDUSTRIES:
                break
            count += 1
        return count, False
    # 蓝 海 科技: single characters up to a word that ends a company name are one name.
    end = count
    while end < len(words) and len(words[end]) == 1 and _is_cjk(words[end]):
        end += 1
    if end > count and end < len(words) and _ends_like_a_name(words[end]):
        return end + 1, False
    if end > count:
        return end, True
    # 星河 科技 / 未申 (上海) 有限公司: a bracket or a bare company ending continues the name.
    while count < len(words) and (words[count][0] in _OPEN or words[count] in _NAME_ENDINGS):
        count += 1
        while count < len(words) and not _balanced(" ".join(words[:count])):
            count += 1
    return count, False


def _title_of(word: str) -> bool:
    return len(word) <= 6 and word.endswith(_TITLES) and len(word) > 1


def _kind_of(word: str) -> tuple[str | None, bool]:
    """(field, sure) for one word outside the name."""
    if word in INDUSTRIES or (_is_cjk(word) and (is_generic(word) or word.endswith("行业"))):
        return "industry", True
    if word in _REGIONS or (word.endswith("市") and word[:-1] in _REGIONS):
        return "city", True
    if _title_of(word):
        return "contact", True
    if _is_cjk(word) and 2 <= len(word) <= 3 and word[0] in _SURNAMES:
        return "contact", False
    if _LATIN.fullmatch(word) and word[:1].isalpha():
        return "contact", False
    if _is_cjk(word) and len(word) <= 6:
        return "industry", False
    return None, False


def read_customer_form(text: str) -> CustomerForm:
    """Read `新客户` arguments; see the module docstring for what counts as sure."""
    labelled, free = read_labels(text.strip())
    values: dict[str, str | None] = dict.fromkeys(FIELDS)
    guessed: list[str] = []
    leftover: list[str] = []
    bad_phone: str | None = None
    for name, raw in labelled.items():
        values[name] = raw or None
    if labelled.get("phone"):
        parsed = parse_phone(labelled["phone"])
        values["phone"] = parsed.stored if parsed is not None else None
        if parsed is None:
            bad_phone = labelled["phone"]
    else:
        found = find_phone(free)
        if found is not None:
            values["phone"] = found[0].stored
            free = f"{free[: found[1][0]]} {free[found[1][1] :]}"
        elif any(sum(ch.isdigit() for ch in w) >= 5 for w in _SEPARATORS.split(free)):
            bad_phone = next(w for w in _SEPARATORS.split(free) if sum(map(str.isdigit, w)) >= 5)
    words = [w for w in _SEPARATORS.split(free) if w]
    if words and not labelled.get("name"):
        count, guess = _name_span(words)
        values["name"] = _join(words[:count])
        if guess:
            guessed.append("name")
        words = words[count:]
    for word in words:
        kind, sure = _kind_of(word)
        if kind is None or values[kind] is not None:
            leftover.append(word)
            continue
        values[kind] = word
        if not sure:
            guessed.append(kind)
    found_name = values["name"]
    return CustomerForm(
        name=found_name[:200] if found_name else None,
        industry=(values["industry"] or None) and str(values["industry"])[:64],
        phone=values["phone"],
        contact=(values["contact"] or None) and str(values["contact"])[:100],
        city=(values["city"] or None) and str(values["city"])[:64],
        guessed=tuple(guessed),
        leftover=tuple(leftover),
        bad_phone=bad_phone,
        labelled=tuple(labelled),
    )
