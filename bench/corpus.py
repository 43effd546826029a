"""Deterministic, realistic Chinese customer names and the queries reps type for them.

Used by the lookup quality tests (tests/unit/test_search_index.py) and the benchmarks, so both
measure the same world.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from pypinyin import Style, lazy_pinyin

from crm_store.names import (
    CITIES,
    PROVINCE_FORMAL_NAMES,
    PROVINCES,
    REGION_PREFIXES,
    char_readings,
    clean_text,
)
from crm_store.names import normalize_company_name as core_of
from crm_store.search.index import IndexedCustomer

QueryKind = Literal[
    "exact",
    "core",
    "fragment",
    "pinyin",
    "pinyin_prefix",
    "initials",
    "alias",
    "char_typo",
    "pinyin_typo",
    "fullwidth",
    "no_city",
]
QUERY_KINDS: tuple[QueryKind, ...] = QueryKind.__args__  # type: ignore[attr-defined]

INDUSTRIES: tuple[str, ...] = (
    "钢材", "物流", "医药", "电子", "食品", "建材", "化工", "服装", "餐饮", "教育", "软件",
    "新能源", "环保", "机械", "汽配", "家居", "包装", "印刷", "纺织", "农业", "生物", "光电",
    "五金", "塑胶", "陶瓷", "家电", "照明", "通信", "广告", "传媒", "地产", "装饰", "物业",
    "酒业", "茶业", "乳业", "水产", "冷链", "供应链", "半导体", "精密", "模具", "仪器", "电气",
    "电缆", "涂料", "玻璃", "木业", "文化", "旅游", "酒店", "咨询", "人力资源",
)  # fmt: skip
INDUSTRY_EN: dict[str, str] = {
    "钢材": "Steel", "物流": "Logistics", "医药": "Pharma", "电子": "Electronics",
    "食品": "Foods", "建材": "Building Materials", "化工": "Chemical", "服装": "Apparel",
    "餐饮": "Catering", "教育": "Education", "软件": "Software", "新能源": "New Energy",
    "环保": "Environmental", "机械": "Machinery", "汽配": "Auto Parts", "家居": "Home",
    "包装": "Packaging", "印刷": "Printing",
}  # fmt: skip
TRADE_WORDS: tuple[str, ...] = ("科技", "贸易", "实业", "发展", "商贸", "技术", "信息", "网络")
BRAND_CHARS = (
    "华金鑫盛泰恒达兴宏鼎瑞祥丰源通远新创信诚德利安康佳美联合中天海博智航"
    "昌隆顺发裕嘉富贵荣福寿喜乐和谐明光辉耀星辰月阳云龙凤麒麟虎豹鹏飞翔腾"
    "宇宙乾坤正道义仁礼君臣雅风雨雷电山川江河湖泉林森松柏竹梅兰菊荷莲芳"
    "锦绣青蓝红紫绿银铜铁钢玉晶石岩峰岭谷原野田园东西南北方圆长久永恒立"
    "万千百亿众力群合凯旋胜捷迅速优良精品尚品致远卓越启航宁静致和平"
)
FAMOUS: tuple[str, ...] = (
    "阿里巴巴", "腾讯", "华为", "京东", "美团", "小米", "比亚迪", "海尔", "格力", "万科", "顺丰",
    "百度", "网易", "拼多多", "字节跳动", "联想", "中兴", "美的", "海信", "长虹", "娃哈哈",
    "蒙牛", "伊利", "茅台", "五粮液", "李宁", "安踏", "吉利", "长城", "奇瑞", "宁德时代", "大疆",
    "携程", "滴滴", "快手", "苏宁", "国美", "海康威视", "三一重工", "中联重科", "恒瑞",
    "云南白药", "同仁堂", "平安", "碧桂园", "绿地", "龙湖", "光明", "农夫山泉",
)  # fmt: skip
LEGAL_FORMS: tuple[tuple[str, int], ...] = (
    ("有限公司", 55), ("有限责任公司", 10), ("股份有限公司", 10), ("集团有限公司", 5),
    ("公司", 6), ("集团", 3), ("", 3), ("(中国)有限公司", 3), ("（上海）有限公司", 2),
    ("分公司", 1), ("集团股份有限公司", 2),
)  # fmt: skip
EPOCH = 1_760_000_000.0


@cache
def _homophones() -> dict[str, tuple[str, ...]]:
    """Common characters (GB2312 level 1) by their usual reading: the pool IME typos come from."""
    by_reading: dict[str, list[str]] = {}
    for row in range(0xB0, 0xD8):
        for col in range(0xA1, 0xFF):
            try:
                char = bytes((row, col)).decode("gb2312")
            except UnicodeDecodeError:
                continue
            if readings := char_readings(char):
                by_reading.setdefault(readings[0], []).append(char)
    return {k: tuple(v) for k, v in by_reading.items()}


def spell(text: str) -> str:
    """The pinyin a rep would type for `text` (phrase-aware readings, latin kept)."""
    return "".join(lazy_pinyin(clean_text(text), style=Style.NORMAL))


def initials_of(text: str) -> str:
    """The initials a rep would type for `text`."""
    return "".join(p[0] for p in lazy_pinyin(clean_text(text), style=Style.NORMAL) if p)


def _fast_spell(text: str) -> str:
    return "".join((char_readings(c) or (c,))[0] for c in text)


def _fast_initials(text: str) -> str:
    return "".join((char_readings(c) or (c,))[0][:1] for c in text)


def to_fullwidth(text: str) -> str:
    """What a full-width IME produces: ASCII letters, digits and punctuation at U+FF01..FF5E."""
    return "".join(
        "\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text
    )


def _weighted(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _brand(rng: random.Random) -> str:
    if rng.random() < 0.06:
        return rng.choice(FAMOUS)
    size = rng.choices((2, 3, 4), weights=(60, 35, 5))[0]
    return "".join(rng.choice(BRAND_CHARS) for _ in range(size))


def _region(rng: random.Random) -> str:
    if rng.random() > 0.75:
        return ""
    if rng.random() < 0.7:
        city = rng.choice(CITIES)
        return city + "市" if rng.random() < 0.15 else city
    province = rng.choice(PROVINCES)
    return PROVINCE_FORMAL_NAMES[province] if rng.random() < 0.2 else province


def generate_customers(n: int, seed: int = 7) -> list[IndexedCustomer]:
    """`n` customers with unique cores, a third with aliases, owned by 400 reps; ids from 100000.

    A region leads three names in four, about one in thirty is an English name, and the
    famous brands come back with different industries.
    """
    rng = random.Random(seed)
    customers: list[IndexedCustomer] = []
    seen: set[str] = set()
    while len(customers) < n:
        brand = _brand(rng)
        industry = rng.choice(INDUSTRIES) if rng.random() < 0.88 else ""
        trade = rng.choice(TRADE_WORDS) if rng.random() < 0.3 else ""
        english = rng.random() < 0.03 and industry in INDUSTRY_EN
        if english:
            name = f"{spell(brand).title()} {INDUSTRY_EN[industry]} Co., Ltd."
            core = clean_text(f"{spell(brand)}{INDUSTRY_EN[industry]}")
        else:
            core = brand + industry + trade
            name = _region(rng) + core + _weighted(rng, LEGAL_FORMS)
        if core in seen or len(core) < 2:
            continue
        seen.add(core)
        aliases: list[str] = []
        if rng.random() < 0.3:
            aliases.append(brand + industry[:1] if rng.random() < 0.4 else brand)
        if rng.random() < 0.1 and not english:
            english_name = spell(brand).title()
            aliases.append(english_name if rng.random() < 0.5 else f"{english_name} Group")
        customers.append(
            IndexedCustomer(
                id=100_000 + 3 * len(customers),
                name=name,
                aliases=tuple(aliases),
                owner_id=f"rep{rng.randrange(400):03d}",
                last_activity=EPOCH - rng.random() * 365 * 86400,
            )
        )
    return customers


class _Lines:
    """Counts of equal, prefix and substring matches over many strings, at C speed."""

    def __init__(self, values: Sequence[str]) -> None:
        self._blob = "\n" + "\n".join(values) + "\n"

    def equal(self, value: str) -> int:
        return self._blob.count(f"\n{value}\n")

    def prefix(self, value: str) -> int:
        return self._blob.count(f"\n{value}")

    def inside(self, value: str) -> int:
        return self._blob.count(value)


def generate_queries(
    customers: Sequence[IndexedCustomer], n_per_kind: int, seed: int = 11
) -> list[tuple[str, QueryKind, int]]:
    """Queries of every kind, each identifying one customer (ambiguous ones are not asked)."""
    rng = random.Random(seed)
    cores = [core_of(c.name) for c in customers]
    world = _World(
        cores=_Lines(cores),
        spellings=_Lines([_fast_spell(c) for c in cores]),
        initials=_Lines([_fast_initials(c) for c in cores]),
        aliases=_Lines([clean_text(a) for c in customers for a in c.aliases]),
        alias_cores=_Lines([core_of(a) for c in customers for a in c.aliases]),
    )
    queries: list[tuple[str, QueryKind, int]] = []
    for kind in QUERY_KINDS:
        made = 0
        for _ in range(n_per_kind * 30):
            if made == n_per_kind:
                break
            at = rng.randrange(len(customers))
            text = _make(kind, customers[at], cores[at], rng, world)
            if text:
                queries.append((text, kind, customers[at].id))
                made += 1
    return queries


@dataclass(frozen=True)
class _World:
    cores: _Lines
    spellings: _Lines
    initials: _Lines
    aliases: _Lines
    alias_cores: _Lines

    def alias_like(self, text: str, *, prefix: bool = False) -> bool:
        """Whether some alias spells `text` (or starts so): a query that would hit the alias."""
        if prefix:
            return bool(self.aliases.prefix(text) or self.alias_cores.prefix(text))
        return bool(self.aliases.equal(text) or self.alias_cores.equal(text))


def _make(
    kind: QueryKind, customer: IndexedCustomer, core: str, rng: random.Random, world: _World
) -> str | None:
    """One query of `kind` for `customer`, or None when it would not identify them."""
    cores, spellings, aliases = world.cores, world.spellings, world.aliases
    han = not core.isascii()
    if kind == "exact":
        return customer.name
    if kind == "core":
        return core if cores.equal(core) == 1 else None
    if kind == "fragment":
        if len(core) < 4 or not han:
            return None
        size = rng.choice((2, 3))
        start = rng.randrange(1, len(core) - size + 1)
        piece = core[start : start + size]
        return piece if cores.inside(piece) == 1 else None
    if kind in ("pinyin", "pinyin_prefix", "pinyin_typo", "fullwidth") and not han:
        return None
    if kind == "pinyin":
        full = spell(core)
        unique = spellings.equal(_fast_spell(core)) == 1 and not world.alias_like(full)
        return full if unique else None
    if kind == "pinyin_prefix":
        full = spell(core)
        cut = rng.randint(max(4, int(len(full) * 0.55)), max(4, int(len(full) * 0.85)))
        piece = full[:cut]
        unique = spellings.prefix(piece) == 1 and not world.alias_like(piece, prefix=True)
        return piece if len(piece) < len(full) and unique else None
    if kind == "initials":
        letters = initials_of(core)
        if len(letters) < 3 or not han:
            return None
        unique = world.initials.equal(_fast_initials(core)) == 1 and not world.alias_like(
            letters, prefix=True
        )
        return letters if unique else None
    if kind == "alias":
        if not customer.aliases:
            return None
        alias = rng.choice(customer.aliases)
        unique = (
            aliases.equal(clean_text(alias)) == 1
            and world.alias_cores.equal(core_of(alias)) == 1
            and cores.prefix(core_of(alias)) <= 1
        )
        return alias if unique else None
    if kind == "char_typo":
        return _char_typo(core, rng, cores) if han else None
    if kind == "pinyin_typo":
        full = spell(core)
        if len(full) < 7:
            return None
        at = rng.randrange(2, len(full))
        if rng.random() < 0.5:
            typo = full[:at] + full[at + 1 :]
        else:
            letter = rng.choice("abcdefghijklmnopqrstuwxyz".replace(full[at], ""))
            typo = full[:at] + letter + full[at + 1 :]
        return typo if spellings.equal(typo) == 0 else None
    if kind == "fullwidth":
        if not customer.name.isascii() and rng.random() < 0.5:
            return to_fullwidth(spell(core)) if spellings.equal(_fast_spell(core)) == 1 else None
        return to_fullwidth(customer.name)
    if kind == "no_city":
        for size in range(8, 1, -1):
            head = customer.name[:size]
            if head in REGION_PREFIXES and not core.startswith(head):
                return customer.name[size:]
        return None
    raise ValueError(kind)


def _char_typo(core: str, rng: random.Random, cores: _Lines) -> str | None:
    """Swap one character for a homophone, as a pinyin IME picking the wrong candidate does."""
    readings = lazy_pinyin(core, style=Style.NORMAL)
    if len(readings) != len(core):
        return None
    table = _homophones()
    for at in rng.sample(range(len(core)), len(core)):
        others = [c for c in table.get(readings[at], ()) if c != core[at]]
        if others:
            typo = core[:at] + rng.choice(others) + core[at + 1 :]
            return typo if cores.inside(typo) == 0 else None
    return None
