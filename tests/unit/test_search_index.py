"""Customer lookup: quality on a realistic corpus, scope, ranking rules, and index upkeep."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest

from bench.corpus import QUERY_KINDS, generate_customers, generate_queries
from crm_store.search import index as search_index
from crm_store.search.index import Allowed, CustomerIndex, Hit, IndexedCustomer, Owners

KINDS = {"exact", "alias", "learned", "prefix", "substring", "pinyin", "initials", "fuzzy"}
NOW = 1_760_000_000.0
DAY = 86400.0


@pytest.fixture(scope="module")
def corpus() -> list[IndexedCustomer]:
    return generate_customers(3000, seed=7)


@pytest.fixture(scope="module")
def index(corpus: list[IndexedCustomer]) -> CustomerIndex:
    return CustomerIndex.build(corpus)


@pytest.fixture(scope="module")
def queries(corpus: list[IndexedCustomer]) -> list[tuple[str, str, int]]:
    return generate_queries(corpus, 15, seed=11)


def small_index(*customers: IndexedCustomer) -> CustomerIndex:
    return CustomerIndex.build(customers)


def ids(hits: list[Hit]) -> list[int]:
    return [h.id for h in hits]


# ---- quality ----------------------------------------------------------------------------


def test_quality_on_generated_corpus(
    index: CustomerIndex, queries: list[tuple[str, str, int]]
) -> None:
    assert len(queries) >= 150
    assert {kind for _, kind, _ in queries} == set(QUERY_KINDS)
    asked: Counter[str] = Counter()
    first: Counter[str] = Counter()
    top5: Counter[str] = Counter()
    misses = []
    for query, kind, expected in queries:
        found = ids(index.search(query))
        asked[kind] += 1
        first[kind] += bool(found) and found[0] == expected
        top5[kind] += expected in found
        if expected not in found[:1]:
            misses.append((kind, query, expected, found))
    print(f"\n{'kind':<14}{'n':>4}{'top-1':>8}{'top-5':>8}")
    for kind in QUERY_KINDS:
        n = asked[kind]
        print(f"{kind:<14}{n:>4}{first[kind] / n:>8.1%}{top5[kind] / n:>8.1%}")
    total = sum(asked.values())
    top1_rate, top5_rate = sum(first.values()) / total, sum(top5.values()) / total
    print(f"{'all':<14}{total:>4}{top1_rate:>8.1%}{top5_rate:>8.1%}")
    for miss in misses:
        print("miss:", *miss)
    assert top5_rate == 1.0
    assert top1_rate == 1.0  # the 165-query corpus stays at 100 % top-1


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("阿里巴巴网络技术", "exact"),
        ("杭州阿里巴巴网络技术有限公司", "exact"),
        ("阿里", "alias"),
        ("Alibaba", "alias"),
        ("阿里巴巴", "prefix"),
        ("巴巴", "substring"),
        ("alibaba", "pinyin"),
        ("aliba", "pinyin"),
        ("ａｌｉｂａｂａ", "pinyin"),
        ("albb", "initials"),
        ("阿狸巴巴", "pinyin"),
        ("alibabba", "fuzzy"),
    ],
)
def test_every_way_of_remembering_a_name(query: str, kind: str) -> None:
    index = small_index(
        IndexedCustomer(1, "杭州阿里巴巴网络技术有限公司", aliases=("阿里",)),
        IndexedCustomer(2, "腾讯科技（深圳）有限公司"),
        IndexedCustomer(3, "华为技术有限公司", aliases=("Alibaba",) if kind == "alias" else ()),
    )
    hits = index.search(query)
    assert hits, query
    expected = 3 if query == "Alibaba" else 1
    assert (hits[0].id, hits[0].kind) == (expected, kind)


def test_homophone_typos_find_the_company() -> None:
    index = small_index(
        IndexedCustomer(1, "腾讯科技（深圳）有限公司"),
        IndexedCustomer(2, "华为技术有限公司"),
        IndexedCustomer(3, "重庆银行股份有限公司"),
    )
    assert ids(index.search("腾迅"))[:1] == [1]
    assert ids(index.search("滑为技术"))[:1] == [2]
    assert ids(index.search("zhongqingyinhang"))[:1] == [3]  # 重 read zhong
    assert ids(index.search("chongqingyinhang"))[:1] == [3]
    assert ids(index.search("cqyh"))[:1] == [3]
    assert ids(index.search("huaweijishuyouxiangongsi"))[:1] == [2]


def test_hits_are_well_formed(index: CustomerIndex, queries: list[tuple[str, str, int]]) -> None:
    names = {c.id: (c.name, *c.aliases) for c in generate_customers(3000, seed=7)}
    for query, _, _ in queries[::5]:
        hits = index.search(query, limit=3)
        assert len(hits) <= 3
        assert len(set(ids(hits))) == len(hits)
        for hit in hits:
            assert hit.kind in KINDS
            assert 0.0 <= hit.score <= 100.0
            assert hit.matched in names[hit.id]


@pytest.mark.parametrize("query", ["", "   ", "！？、", "zzzzqqqq"])
def test_nothing_to_find(index: CustomerIndex, query: str) -> None:
    assert index.search(query) == []
    assert index.search("阿里巴巴", limit=0) == []


def test_suggest_offers_weaker_matches_when_search_has_none() -> None:
    index = small_index(
        IndexedCustomer(1, "杭州阿里巴巴网络技术有限公司"),
        IndexedCustomer(2, "华为技术有限公司"),
    )
    assert index.search("网落鸡术") == []
    assert ids(index.suggest("网落鸡术"))[:1] == [1]
    assert index.search("hauwie") == []
    assert ids(index.suggest("hauwie")) == [2]
    assert len(index.suggest("技术", limit=1)) == 1


# ---- scope ------------------------------------------------------------------------------


def _scopes(everyone: frozenset[int], hidden: int) -> list[Allowed]:
    visible = everyone - {hidden}
    return [visible, set(visible), lambda customer_id: customer_id != hidden]


def test_out_of_scope_customers_never_appear(
    corpus: list[IndexedCustomer], index: CustomerIndex, queries: list[tuple[str, str, int]]
) -> None:
    everyone = frozenset(c.id for c in corpus)
    for query, _, hidden in queries[::4]:
        for allowed in _scopes(everyone, hidden):
            assert hidden not in ids(index.search(query, allowed=allowed, limit=10))
            assert hidden not in ids(index.suggest(query, allowed=allowed, limit=10))


def test_a_rep_scope_confines_every_hit(
    corpus: list[IndexedCustomer], index: CustomerIndex, queries: list[tuple[str, str, int]]
) -> None:
    mine = frozenset(c.id for c in corpus if c.owner_id == "rep007")
    assert mine
    for query, _, _ in queries:
        assert set(ids(index.search(query, allowed=mine))) <= mine
        assert set(ids(index.suggest(query, allowed=mine))) <= mine
    for customer in corpus:
        if customer.id in mine:
            assert ids(index.search(customer.name, allowed=mine))[:1] == [customer.id]


def test_scope_applies_before_the_limit() -> None:
    crowd = [IndexedCustomer(i, "鼎盛物流有限公司") for i in range(1, 41)]
    mine = IndexedCustomer(99, "鼎盛物流运输有限公司", owner_id="me")
    index = small_index(*crowd, mine)
    assert 99 not in ids(index.search("鼎盛物流"))
    assert ids(index.search("鼎盛物流", allowed=frozenset({99}))) == [99]
    assert ids(index.search("鼎盛物流", allowed=lambda i: i == 99)) == [99]
    assert ids(index.suggest("鼎盛物流", allowed={99})) == [99]


def test_a_small_scope_stays_in_step_with_upserts(corpus: list[IndexedCustomer]) -> None:
    index = CustomerIndex.build(corpus)
    mine = [c for c in corpus if c.owner_id == "rep007"]
    scope = frozenset(c.id for c in mine) | {1}
    assert ids(index.search(mine[0].name, allowed=scope))[:1] == [mine[0].id]
    index.upsert(IndexedCustomer(mine[0].id, "无锡腾云驾雾科技有限公司", owner_id="rep007"))
    index.upsert(IndexedCustomer(1, "苏州鑫瑞祥精密机械有限公司", owner_id="rep007"))
    index.remove(mine[1].id)
    assert ids(index.search("腾云驾雾", allowed=scope))[:1] == [mine[0].id]
    assert ids(index.search("鑫瑞祥精密", allowed=scope))[:1] == [1]
    assert mine[1].id not in ids(index.search(mine[1].name, allowed=scope, limit=20))
    assert 1 not in ids(index.search("鑫瑞祥精密", allowed=scope - {1}))


def test_learned_customers_outside_scope_stay_hidden() -> None:
    index = small_index(
        IndexedCustomer(1, "华鑫物流有限公司"), IndexedCustomer(2, "宏达贸易有限公司")
    )
    assert ids(index.search("老王", learned={2: 1.0}, allowed=frozenset({1}))) == []


# ---- ranking ----------------------------------------------------------------------------


def test_learned_choice_ranks_first_after_exact_hits() -> None:
    index = small_index(
        IndexedCustomer(1, "华鑫物流有限公司", last_activity=NOW),
        IndexedCustomer(2, "华鑫钢材有限公司", last_activity=NOW - 300 * DAY),
        IndexedCustomer(3, "宏达贸易有限公司"),
    )
    assert ids(index.search("华鑫"))[:2] == [1, 2]
    hits = index.search("华鑫", learned={2: 1.0})
    assert ids(hits)[:2] == [2, 1]
    assert hits[0].kind == "learned"
    assert ids(index.search("华鑫物流", learned={2: 1.0})) == [1]  # the full name wins outright
    assert ids(index.search("老王", learned={3: 0.5, 2: 0.9})) == [2, 3]  # words matching nothing


def test_own_customers_first_among_equals() -> None:
    index = small_index(
        IndexedCustomer(1, "杭州宏达钢材有限公司", owner_id="wang", last_activity=NOW),
        IndexedCustomer(2, "上海宏达钢材有限公司", owner_id="li", last_activity=NOW),
        IndexedCustomer(3, "宏达钢材贸易有限公司", owner_id="li", last_activity=NOW),
    )
    assert ids(index.search("宏达钢材", owner_id="wang")) == [1, 2, 3]
    assert ids(index.search("宏达钢材", owner_id="li")) == [2, 1, 3]
    assert ids(index.search("宏达", owner_id="wang"))[0] == 1


def test_more_recent_first_among_equals() -> None:
    index = small_index(
        IndexedCustomer(1, "杭州宏达钢材有限公司", last_activity=NOW - 90 * DAY),
        IndexedCustomer(2, "上海宏达钢材有限公司", last_activity=NOW),
    )
    assert ids(index.search("宏达钢材")) == [2, 1]
    index.upsert(IndexedCustomer(1, "杭州宏达钢材有限公司", last_activity=NOW + DAY))
    assert ids(index.search("宏达钢材")) == [1, 2]


def test_exact_name_before_alias_before_prefix() -> None:
    index = small_index(
        IndexedCustomer(1, "紫山科技有限公司"),
        IndexedCustomer(2, "Zishan Packaging Co., Ltd.", aliases=("紫山",)),
        IndexedCustomer(3, "肇庆紫山有限公司", owner_id="me", last_activity=NOW - 400 * DAY),
    )
    assert ids(index.search("紫山", owner_id="me")) == [3, 2, 1]


# ---- upkeep -----------------------------------------------------------------------------


def test_upsert_after_build_is_findable(corpus: list[IndexedCustomer]) -> None:
    index = CustomerIndex.build(corpus[:300])
    assert len(index) == 300
    index.upsert(IndexedCustomer(7, "苏州鑫瑞祥精密机械有限公司", aliases=("鑫瑞祥",)))
    assert len(index) == 301
    for query in ("鑫瑞祥精密机械", "鑫瑞祥", "xinruixiang", "xrxjm", "瑞祥精密", "鑫瑞翔"):
        assert ids(index.search(query))[:1] == [7], query


def test_upsert_replaces_the_old_name(corpus: list[IndexedCustomer]) -> None:
    index = CustomerIndex.build(corpus[:300])
    old = corpus[10]
    index.upsert(IndexedCustomer(old.id, "无锡腾云驾雾科技有限公司"))
    assert len(index) == 300
    assert old.id not in ids(index.search(old.name))
    assert ids(index.search("腾云驾雾"))[:1] == [old.id]
    index.upsert(IndexedCustomer(old.id, "无锡腾云驾雾科技有限公司", owner_id="me"))
    assert next(c for c in index if c.id == old.id).owner_id == "me"


def test_remove_makes_a_customer_unfindable(corpus: list[IndexedCustomer]) -> None:
    index = CustomerIndex.build(corpus[:300])
    gone = corpus[20]
    assert ids(index.search(gone.name))[:1] == [gone.id]
    index.remove(gone.id)
    index.remove(gone.id)
    index.remove(123_456_789)
    assert len(index) == 299
    assert gone.id not in ids(index.search(gone.name, limit=20))
    assert gone.id not in ids(index.suggest(gone.name, limit=20))
    assert gone.id not in ids(index.search("x", learned={gone.id: 1.0}))
    assert gone.id not in {c.id for c in index}
    index.upsert(gone)
    assert ids(index.search(gone.name))[:1] == [gone.id]


def test_build_equals_upserting_one_by_one(
    corpus: list[IndexedCustomer], queries: list[tuple[str, str, int]]
) -> None:
    built = CustomerIndex.build(corpus[:500])
    grown = CustomerIndex()
    for customer in reversed(corpus[:500]):
        grown.upsert(customer)
    for query, _, _ in queries[::3]:
        assert ids(built.search(query)) == ids(grown.search(query)), query


def test_build_keeps_the_last_record_of_an_id() -> None:
    index = small_index(IndexedCustomer(1, "旧名字有限公司"), IndexedCustomer(1, "新名字有限公司"))
    assert len(index) == 1
    assert [c.name for c in index] == ["新名字有限公司"]


def test_compaction_drops_dead_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_index, "COMPACT_AFTER", 10)
    index = CustomerIndex()
    for round_ in range(30):
        index.upsert(IndexedCustomer(1, f"第{round_}号宏达钢材有限公司"))
        index.upsert(IndexedCustomer(2, f"第{round_}号华鑫物流有限公司"))
    assert len(index) == 2
    assert len(index._ids) < 30
    assert ids(index.search("第29号宏达钢材")) == [1]
    assert index.search("第3号华鑫物流")[0].kind != "exact"


def test_searches_in_a_worker_thread_while_upserting(corpus: list[IndexedCustomer]) -> None:
    index = CustomerIndex.build(corpus[:1000])
    errors: list[BaseException] = []
    done = threading.Event()

    def searching(search: Callable[[str], list[Hit]]) -> None:
        try:
            while not done.is_set():
                for customer in corpus[:50]:
                    search(customer.name)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    worker = threading.Thread(target=searching, args=(index.search,))
    worker.start()
    try:
        for customer in corpus[1000:1600]:
            index.upsert(customer)
        for customer in corpus[:200]:
            index.remove(customer.id)
    finally:
        done.set()
        worker.join()
    assert errors == []
    assert len(index) == 1400
    assert ids(index.search(corpus[1500].name))[:1] == [corpus[1500].id]


# ---- phones, contacts, whole-name initials and pinyin with the city, abbreviations ---------

WAYS = [
    IndexedCustomer(1, "杭州云栖科技有限公司", phones=("13800138000",), contacts=("王建国",)),
    IndexedCustomer(2, "南京紫金山科技有限公司", phones=("02588886666",), contacts=("李娜",)),
    IndexedCustomer(3, "青岛海尔股份有限公司", phones=("13912345678",), contacts=("张伟",)),
    IndexedCustomer(4, "青岛啤酒股份有限公司", contacts=("赵敏", "钱多多")),
    IndexedCustomer(5, "上海云栖科技有限公司", phones=("13700001111",)),
    IndexedCustomer(6, "中国石油化工集团有限公司", phones=("01059960114",)),
    IndexedCustomer(7, "深圳市腾飞电子有限公司", contacts=("孙悟空",), phones=("075512345678",)),
    IndexedCustomer(8, "北京大学"),
    IndexedCustomer(9, "上海交通大学", contacts=("欧阳娜娜",)),
    IndexedCustomer(10, "广州白云山医药集团股份有限公司", phones=("18688889999",)),
]


@pytest.mark.parametrize(
    ("query", "expected", "kind"),
    [
        # phone numbers, any spelling
        ("13800138000", 1, "phone"),
        ("138-0013-8000", 1, "phone"),
        ("138 0013 8000", 1, "phone"),
        ("+86 138 0013 8000", 1, "phone"),
        ("008613800138000", 1, "phone"),
        ("１３８００１３８０００", 1, "phone"),
        ("(025) 8888-6666", 2, "phone"),
        ("88886666", 2, "phone"),
        ("139-1234-5678", 3, "phone"),
        ("137 0000 1111", 5, "phone"),
        ("010-59960114", 6, "phone"),
        ("0755-12345678", 7, "phone"),
        ("12345678", 7, "phone"),
        ("186 8888 9999", 10, "phone"),
        # contacts' names, in characters and pinyin
        ("王建国", 1, "contact"),
        ("wangjianguo", 1, "contact"),
        ("李娜", 2, "contact"),
        ("张伟", 3, "contact"),
        ("zhangwei", 3, "contact"),
        ("赵敏", 4, "contact"),
        ("钱多多", 4, "contact"),
        ("孙悟空", 7, "contact"),
        ("sunwukong", 7, "contact"),
        ("欧阳娜娜", 9, "contact"),
        # whole-name initials with the city
        ("hzyq", 1, "initials"),
        ("hzyqkj", 1, "initials"),
        ("njzjs", 2, "initials"),
        ("qdhe", 3, "initials"),
        ("shyq", 5, "initials"),
        ("szstf", 7, "initials"),  # 深圳市 read whole
        ("gzbys", 10, "initials"),
        # full pinyin with the city
        ("hangzhouyunqi", 1, "pinyin"),
        ("hangzhouyunqikeji", 1, "pinyin"),
        ("nanjingzijinshan", 2, "pinyin"),
        ("qingdaohaier", 3, "pinyin"),
        ("shanghaiyunqi", 5, "pinyin"),
        ("guangzhoubaiyunshan", 10, "pinyin"),
        ("qingdaopijiu", 4, "pinyin"),
        # abbreviations of each word's first character
        ("青啤", 4, "abbrev"),
        ("中石化", 6, "abbrev"),
        ("北大", 8, "abbrev"),
        ("交大", 9, "abbrev"),
        # the city typed in characters ranks its own company first
        ("杭州云栖", 1, "prefix"),
        ("上海云栖", 5, "prefix"),
    ],
)
def test_the_ways_reps_really_type(query: str, expected: int, kind: str | None) -> None:
    hits = small_index(*WAYS).search(query)
    assert hits, query
    assert hits[0].id == expected, (query, hits)
    if kind is not None:
        assert hits[0].kind == kind, (query, hits)
    if kind == "phone":
        assert hits[0].matched in next(c.phones for c in WAYS if c.id == expected)
    if kind == "contact":
        assert hits[0].matched in next(c.contacts for c in WAYS if c.id == expected)


def test_a_phone_or_contact_out_of_scope_finds_nothing() -> None:
    index = small_index(*WAYS)
    assert index.search("13800138000", allowed=frozenset({2, 3})) == []
    assert index.search("王建国", allowed=lambda i: i != 1) == []
    assert index.search("13800138000", allowed=Owners(frozenset({"rep"}))) == []


def test_the_full_registered_name_wins_outright() -> None:
    index = small_index(*WAYS)
    assert [(h.id, h.kind) for h in index.search("杭州云栖科技有限公司")] == [(1, "exact")]
    assert ids(index.search("上海云栖科技")) == [5]
    assert ids(index.search("云栖科技")) == [1, 5] or ids(index.search("云栖科技")) == [5, 1]


def test_owner_keys_confine_hits_to_owners_the_pool_and_shares() -> None:
    index = small_index(
        IndexedCustomer(1, "宏达钢材有限公司", owner_id="me"),
        IndexedCustomer(2, "宏达钢材贸易有限公司", owner_id="other"),
        IndexedCustomer(3, "宏达钢材物流有限公司", owner_id=None),  # the pool
        IndexedCustomer(4, "宏达钢材科技有限公司", owner_id="#7"),  # unowned, department 7
        IndexedCustomer(5, "宏达钢材实业有限公司", owner_id="other"),
    )
    mine = Owners(frozenset({"me", None}), ids=frozenset({5}))
    assert set(ids(index.search("宏达", allowed=mine))) == {1, 3, 5}
    assert set(ids(index.search("宏达", allowed=Owners(frozenset({"#7"}))))) == {4}
    index.upsert(IndexedCustomer(2, "宏达钢材贸易有限公司", owner_id="me"))
    assert 2 in ids(index.search("宏达", allowed=mine))
