"""Company-name normalization and pinyin keys, shared by search, dedup and import.

Reps remember the core of a name ("阿里巴巴"), not the registered form
("杭州阿里巴巴网络技术有限公司"), so every path that compares names compares cores.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from functools import lru_cache

from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PINYIN_DICT
from pypinyin.contrib.tone_convert import to_normal

PROVINCE_FORMAL_NAMES: dict[str, str] = {
    "北京": "北京市",
    "天津": "天津市",
    "上海": "上海市",
    "重庆": "重庆市",
    "河北": "河北省",
    "山西": "山西省",
    "辽宁": "辽宁省",
    "吉林": "吉林省",
    "黑龙江": "黑龙江省",
    "江苏": "江苏省",
    "浙江": "浙江省",
    "安徽": "安徽省",
    "福建": "福建省",
    "江西": "江西省",
    "山东": "山东省",
    "河南": "河南省",
    "湖北": "湖北省",
    "湖南": "湖南省",
    "广东": "广东省",
    "海南": "海南省",
    "四川": "四川省",
    "贵州": "贵州省",
    "云南": "云南省",
    "陕西": "陕西省",
    "甘肃": "甘肃省",
    "青海": "青海省",
    "台湾": "台湾省",
    "内蒙古": "内蒙古自治区",
    "广西": "广西壮族自治区",
    "西藏": "西藏自治区",
    "宁夏": "宁夏回族自治区",
    "新疆": "新疆维吾尔自治区",
    "香港": "香港特别行政区",
    "澳门": "澳门特别行政区",
}
PROVINCES: tuple[str, ...] = tuple(PROVINCE_FORMAL_NAMES)

CITIES: tuple[str, ...] = (
    "广州", "深圳", "珠海", "汕头", "佛山", "东莞", "中山", "惠州", "江门", "湛江", "肇庆",
    "杭州", "宁波", "温州", "嘉兴", "湖州", "绍兴", "金华", "台州", "义乌", "南京", "苏州",
    "无锡", "常州", "南通", "扬州", "徐州", "镇江", "盐城", "泰州", "连云港", "淮安", "昆山",
    "合肥", "芜湖", "蚌埠", "福州", "厦门", "泉州", "漳州", "莆田", "南昌", "赣州", "九江",
    "济南", "青岛", "烟台", "潍坊", "淄博", "临沂", "济宁", "威海", "郑州", "洛阳", "开封",
    "新乡", "南阳", "武汉", "宜昌", "襄阳", "长沙", "株洲", "湘潭", "岳阳", "衡阳", "成都",
    "绵阳", "宜宾", "贵阳", "遵义", "昆明", "大理", "丽江", "西安", "宝鸡", "咸阳", "兰州",
    "西宁", "银川", "乌鲁木齐", "拉萨", "呼和浩特", "包头", "鄂尔多斯", "南宁", "桂林", "柳州",
    "北海", "海口", "三亚", "石家庄", "唐山", "保定", "廊坊", "邯郸", "秦皇岛", "太原", "大同",
    "沈阳", "大连", "鞍山", "长春", "哈尔滨", "大庆", "台北", "高雄",
)  # fmt: skip

REGION_PREFIXES: frozenset[str] = frozenset(
    [*PROVINCES, *PROVINCE_FORMAL_NAMES.values(), *CITIES, *(c + "市" for c in CITIES)]
    + ["吉林市", "内蒙", "广西壮族", "宁夏回族", "新疆维吾尔"]
)
"""Every spelling of a region that may lead a registered name and is stripped from the core."""

AREA_WORDS: frozenset[str] = frozenset(
    ["中国", "中国大陆", "国际", "亚洲", "亚太", "全球", "华东", "华南", "华北", "华中", "西南",
     "西北", "东北", "china", "asia", "hk", "hongkong", "shanghai", "beijing", "shenzhen"]
)  # fmt: skip

LEGAL_SUFFIXES: tuple[str, ...] = (
    "集团股份有限公司",
    "集团有限责任公司",
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "控股有限公司",
    "特殊普通合伙",
    "有限合伙",
    "普通合伙",
    "合伙企业",
    "有限公司",
    "股份公司",
    "集团公司",
    "总公司",
    "控股",
    "集团",
    "公司",
)
"""Longest first: the first that ends a name is the one to strip."""

BRANCH_SUFFIXES: tuple[str, ...] = (
    "分公司", "子公司", "办事处", "营业部", "分厂", "分店", "分行", "支行"
)  # fmt: skip

ENGLISH_LEGAL_WORDS: frozenset[str] = frozenset(
    ["co", "company", "corp", "corporation", "inc", "incorporated", "ltd", "limited", "llc",
     "plc", "gmbh", "group", "holding", "holdings"]
)  # fmt: skip

GENERIC_WORDS: frozenset[str] = frozenset(
    ["银行", "农商", "商业", "农村", "大学", "学院", "医院", "人民", "中学", "小学", "电视台",
     "日报", "晚报", "机场", "地铁", "公交", "港", "港务", "海关", "证券", "电力", "燃气",
     "自来水", "图书馆", "博物馆", "体育馆", "饭店", "酒店", "宾馆", "啤酒", "钢铁", "钢材",
     "汽车", "石化", "医药", "物流", "贸易", "商贸", "实业", "科技", "技术", "发展", "建设",
     "建筑", "投资", "电子", "机械", "化工", "食品", "服装", "纺织", "家具", "印刷", "包装",
     "软件", "网络", "信息", "咨询", "广告", "传媒", "地产", "房地产", "置业", "物业", "餐饮",
     "旅游", "教育", "培训", "建材", "新能源", "环保", "汽配", "家居", "五金", "塑胶", "家电",
     "通信", "装饰", "文化", "供应链", "电气", "电器", "工程", "设计", "管理", "服务", "国际"]
)  # fmt: skip
"""Words that are no name on their own: "北京银行" or "青岛啤酒" keep their city."""


def is_generic(text: str) -> bool:
    """Whether `text` is made of generic words only ("银行", "科技发展"), longest first."""
    if not text:
        return True
    return any(
        text.startswith(word) and is_generic(text[len(word) :])
        for word in _GENERIC_BY_HEAD.get(text[0], ())
    )


_GENERIC_BY_HEAD: dict[str, tuple[str, ...]] = {}
for _word in sorted(GENERIC_WORDS, key=len, reverse=True):
    _GENERIC_BY_HEAD[_word[0]] = (*_GENERIC_BY_HEAD.get(_word[0], ()), _word)
del _word

_OPEN, _CLOSE = "([{<【〔〈《「『", ")]}>】〕〉》」』"  # after NFKC, full-width （［｛ are ASCII
_BRACKETS = re.compile(f"[{re.escape(_OPEN)}]([^{re.escape(_CLOSE)}]*)[{re.escape(_CLOSE)}]")
_HAS_OPEN = re.compile(f"[{re.escape(_OPEN)}]")
_NON_WORD = re.compile(r"[\W_]+")
_HAS_LATIN = re.compile(r"[a-z]")
_ORDINAL_TAIL = re.compile(r"第[一二三四五六七八九十百零〇\d]+$")
_MAX_REGION = max(map(len, REGION_PREFIXES))


def clean_text(text: str) -> str:
    """NFKC, lower case, no spaces or punctuation: the form every comparison starts from."""
    return _NON_WORD.sub("", unicodedata.normalize("NFKC", text).lower())


def _is_region_or_legal(content: str) -> bool:
    word = clean_text(content)
    if not word:
        return True
    if word in REGION_PREFIXES or word in AREA_WORDS or word in LEGAL_SUFFIXES:
        return True
    if word in ENGLISH_LEGAL_WORDS or is_generic(word):
        return False
    return len(word) <= 8 and word[-1] in "省市区县" and not word.isascii()


def _drop_bracket(match: re.Match[str]) -> str:
    content = match.group(1)
    return " " if _is_region_or_legal(content) else f" {content} "


def _strip_english_legal(text: str) -> str:
    words = [w for w in _NON_WORD.split(text) if w]
    while len(words) > 1 and words[-1] in ENGLISH_LEGAL_WORDS:
        words.pop()
    return "".join(words)


def _strip_tail(core: str) -> str:
    """Drop legal forms, branches and the region before a branch, until nothing changes."""
    while True:
        before = core
        if core.endswith(BRANCH_SUFFIXES):
            stem = core[: -len(next(s for s in BRANCH_SUFFIXES if core.endswith(s)))]
            stem = _ORDINAL_TAIL.sub("", stem)
            for size in range(min(_MAX_REGION, len(stem) - 1), 1, -1):
                tail = stem[-size:]
                if tail in REGION_PREFIXES or tail in AREA_WORDS:
                    stem = stem[:-size]
                    break
            if stem:
                core = stem
        if core.endswith(LEGAL_SUFFIXES):
            suffix = next(s for s in LEGAL_SUFFIXES if core.endswith(s))
            if len(core) > len(suffix):
                core = core[: -len(suffix)]
        if core == before:
            return core


_REGIONS_BY_HEAD: dict[str, tuple[str, ...]] = {}
for _region in sorted(REGION_PREFIXES, key=len, reverse=True):
    _REGIONS_BY_HEAD[_region[:2]] = (*_REGIONS_BY_HEAD.get(_region[:2], ()), _region)
del _region


def strip_region_prefix(core: str) -> tuple[str, str]:
    """Split leading region words off ("浙江省杭州市"); keep them if the rest is no name."""
    prefix = base = ""
    for _ in range(2):
        for region in _REGIONS_BY_HEAD.get(core[:2], ()):
            if core.startswith(region):
                rest = core[len(region) :]
                if len(rest) < 2 or is_generic(rest) or region.startswith(base or "\0"):
                    return prefix, core
                prefix, core, base = prefix + region, rest, region[:2]
                break
        else:
            break
    return prefix, core


def split_company_name(name: str) -> tuple[str, str]:
    """(region prefix, core) of a registered name: prefix + core is the name sans legal form."""
    text = unicodedata.normalize("NFKC", name).lower()
    if _HAS_OPEN.search(text):
        text = _BRACKETS.sub(_drop_bracket, text)
    cleaned = _strip_english_legal(text) if _HAS_LATIN.search(text) else _NON_WORD.sub("", text)
    if not cleaned:
        return "", clean_text(name)
    return strip_region_prefix(_strip_tail(cleaned))


def normalize_company_name(name: str) -> str:
    """The core name: what reps type and what two spellings of one company share."""
    return split_company_name(name)[1]


_READINGS_TONED = {r for v in PINYIN_DICT.values() for r in v.split(",")}
SYLLABLES: frozenset[str] = frozenset(
    s for s in map(to_normal, _READINGS_TONED) if s.isascii() and re.search("[aeiouv]", s)
)
"""Every toneless pinyin syllable (about 420) except vowel-less interjections such as "ng"."""
del _READINGS_TONED


@lru_cache(maxsize=65536)
def char_readings(char: str) -> tuple[str, ...]:
    """Toneless pinyin readings of one Han character, most common first; () for anything else."""
    toned = PINYIN_DICT.get(ord(char)) if len(char) == 1 else None
    if not toned:
        return ()
    readings = (to_normal(r) for r in toned.split(","))
    return tuple(dict.fromkeys(r for r in readings if r in SYLLABLES))


def _each_char(text: str) -> list[str]:
    """pypinyin's `errors` hook: keep characters it has no reading for, one item each."""
    return list(text)


def _reading_positions(text: str) -> list[tuple[bool, list[str]]]:
    """(is_han, spellings) per Han character or latin/digit run, the phrase-aware reading first."""
    positions: list[tuple[bool, list[str]]] = []
    for run in re.findall(r"[a-z0-9]+|[^a-z0-9]+", clean_text(text)):
        if run.isascii():
            positions.append((False, [run]))
            continue
        # pypinyin documents list-returning `errors` hooks; its annotation says str only.
        defaults: list[str] = lazy_pinyin(
            run,
            style=Style.NORMAL,
            errors=_each_char,  # type: ignore[arg-type]
        )
        if len(defaults) != len(run):
            defaults = [(char_readings(c) or ("",))[0] for c in run]
        for char, default in zip(run, defaults, strict=True):
            if readings := char_readings(char):
                positions.append((True, list(dict.fromkeys((default, *readings)))))
    return positions


def pinyin_keys(text: str, *, cap: int = 16) -> tuple[list[str], list[str]]:
    """All full-pinyin spellings and initials of `text`, the likeliest first, at most `cap` each.

    Polyphonic characters multiply spellings (重庆 is chongqing and zhongqing); spellings that
    change fewer characters come first, so a long name keeps its plausible readings. Latin and
    digit runs ("IBM", "58") stay whole in both.
    """
    positions = _reading_positions(text)
    if not positions:
        return [], []
    return _variants([p for _, p in positions], cap), _variants(
        [list(dict.fromkeys(r[0] for r in p)) if han else p for han, p in positions], cap
    )


def _variants(positions: list[list[str]], cap: int) -> list[str]:
    """Join one choice per position: the defaults first, then one change, two changes, ..."""
    default = [p[0] for p in positions]
    found = {"".join(default): None}
    poly = [i for i, p in enumerate(positions) if len(p) > 1]
    for changed in range(1, len(poly) + 1):
        for where in itertools.combinations(poly, changed):
            for choice in itertools.product(*(positions[i][1:] for i in where)):
                variant = list(default)
                for i, reading in zip(where, choice, strict=True):
                    variant[i] = reading
                found["".join(variant)] = None
                if len(found) >= cap:
                    return list(found)
    return list(found)


LOOKALIKES: tuple[str, ...] = (
    "己已巳", "未末", "戊戌戍", "日曰", "士土", "折拆", "侯候", "籍藉", "汩汨", "冶治", "孟盂",
    "壶壸", "赢羸嬴", "刺剌", "析柝", "崇祟", "徽微", "茶荼", "候侯", "拔拨", "渴喝", "券卷",
    "鸟乌", "免兔", "办为", "天夭", "王玉主", "人入八", "大太犬", "木本禾", "田由甲申",
)  # fmt: skip
"""Characters people mistake for one another by sight; one of them for another is a variant."""
_LOOKALIKE: dict[str, frozenset[str]] = {}
for _group in LOOKALIKES:
    for _char in _group:
        _LOOKALIKE[_char] = _LOOKALIKE.get(_char, frozenset()) | frozenset(_group) - {_char}
del _group, _char


@lru_cache(maxsize=1)
def _homophones() -> dict[str, tuple[str, ...]]:
    """GB2312 characters by toneless reading: the pool one-character variants come from."""
    by_reading: dict[str, list[str]] = {}
    for row in range(0xB0, 0xF8):
        for col in range(0xA1, 0xFF):
            try:
                char = bytes((row, col)).decode("gb2312")
            except UnicodeDecodeError:
                continue
            for reading in char_readings(char):
                by_reading.setdefault(reading, []).append(char)
    return {k: tuple(v) for k, v in by_reading.items()}


def variant_cores(core: str, *, cap: int = 4000) -> list[str]:
    """Cores one character away that sound the same or look alike (篮海 for 蓝海).

    The line: same length, exactly one character different, and the two characters share a
    toneless reading or stand in LOOKALIKES. 蓝天 is no variant of 蓝海 (海 and 天 differ in
    sound and shape); 篮海 is (lán). Latin, digits and names under two characters have none.
    """
    if len(core) < 2:
        return []
    by_reading = _homophones()
    found: dict[str, None] = {}
    for at, char in enumerate(core):
        near = set(_LOOKALIKE.get(char, ()))
        for reading in char_readings(char):
            near.update(by_reading.get(reading, ()))
        near.discard(char)
        for other in sorted(near):
            found[core[:at] + other + core[at + 1 :]] = None
            if len(found) >= cap:
                return list(found)
    return list(found)
