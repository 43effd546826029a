"""Company-name normalization and pinyin keys: the shared ground of search, dedup and import."""

from __future__ import annotations

import pytest

from crm_store.names import (
    CITIES,
    PROVINCE_FORMAL_NAMES,
    PROVINCES,
    REGION_PREFIXES,
    SYLLABLES,
    char_readings,
    clean_text,
    is_generic,
    normalize_company_name,
    pinyin_keys,
    split_company_name,
    strip_region_prefix,
)

NORMALIZED = [
    # legal forms
    ("华为技术有限公司", "华为技术"),
    ("比亚迪股份有限公司", "比亚迪"),
    ("万科企业股份有限公司", "万科企业"),
    ("海尔集团公司", "海尔"),
    ("小米科技有限责任公司", "小米科技"),
    ("内蒙古伊利实业集团股份有限公司", "伊利实业"),
    ("某某贸易（有限合伙）", "某某贸易"),
    ("华润（集团）有限公司", "华润"),
    ("中国平安保险（集团）股份有限公司", "中国平安保险"),
    ("科技有限公司", "科技"),
    ("有限公司", "有限公司"),
    # region or legal form in brackets, full-width or not
    ("阿里巴巴（中国）有限公司", "阿里巴巴"),
    ("阿里巴巴(中国)网络技术有限公司", "阿里巴巴网络技术"),
    ("腾讯科技（深圳）有限公司", "腾讯科技"),
    ("美团（北京）科技有限公司", "美团科技"),
    ("格力电器［珠海］有限公司", "格力电器"),
    ("A.O.史密斯（中国）热水器有限公司", "ao史密斯热水器"),
    ("【京东】物流有限公司", "京东物流"),
    # branches
    ("阿里巴巴（中国）有限公司杭州分公司", "阿里巴巴"),
    ("顺丰速运有限公司北京第一分公司", "顺丰速运"),
    ("招商银行股份有限公司深圳分行", "招商银行"),
    # province and city prefixes
    ("杭州阿里巴巴网络技术有限公司", "阿里巴巴网络技术"),
    ("深圳市大疆创新科技有限公司", "大疆创新科技"),
    ("浙江省杭州市娃哈哈集团有限公司", "娃哈哈"),
    ("江苏省苏州市苏宁易购", "苏宁易购"),
    ("广西壮族自治区玉柴机器股份有限公司", "玉柴机器"),
    ("新疆维吾尔自治区天山水泥股份有限公司", "天山水泥"),
    ("香港特别行政区长江实业（集团）有限公司", "长江实业"),
    ("重庆长安汽车股份有限公司", "长安汽车"),
    ("上海市浦东新区张江科技有限公司", "浦东新区张江科技"),
    ("吉林市吉林化纤", "吉林化纤"),
    # a prefix stays when nothing, or nothing but generic words, would remain
    ("北京", "北京"),
    ("杭州市", "杭州市"),
    ("北京公司", "北京"),
    ("北京银行股份有限公司", "北京银行"),
    ("长沙银行股份有限公司", "长沙银行"),
    ("青岛啤酒股份有限公司", "青岛啤酒"),
    ("上海物流有限公司", "上海物流"),
    ("上海大学", "上海大学"),
    ("北京市北京饭店有限公司", "北京饭店"),
    # spaces, punctuation, full width, latin
    ("  小米 科技 有限 责任 公司 ", "小米科技"),
    ("ＡＢＣ　Ｔｒａｄｉｎｇ　Ｃｏ．，Ｌｔｄ．", "abctrading"),
    ("ＨＵＡＷＥＩ", "huawei"),
    ("Alibaba Group Holding Limited", "alibaba"),
    ("Tencent Holdings Ltd.", "tencent"),
    ("Apple Inc.", "apple"),
    ("Bank of China Limited", "bankofchina"),
    ("Limited", "limited"),
    ("IBM中国有限公司", "ibm中国"),
    ("58同城信息技术有限公司", "58同城信息技术"),
    ("", ""),
]


@pytest.mark.parametrize(("name", "core"), NORMALIZED)
def test_normalize_company_name(name: str, core: str) -> None:
    assert normalize_company_name(name) == core


def test_the_table_is_big_enough() -> None:
    assert len(NORMALIZED) >= 30


def test_split_keeps_the_region_it_strips() -> None:
    assert split_company_name("浙江省杭州市娃哈哈集团有限公司") == ("浙江省杭州市", "娃哈哈")
    assert split_company_name("杭州阿里巴巴网络技术有限公司") == ("杭州", "阿里巴巴网络技术")
    assert split_company_name("华为技术有限公司") == ("", "华为技术")


def test_strip_region_prefix_never_empties() -> None:
    for region in [*PROVINCES, *CITIES, *PROVINCE_FORMAL_NAMES.values()]:
        assert strip_region_prefix(region)[1] == region


def test_region_vocabulary() -> None:
    assert len(PROVINCES) == len(PROVINCE_FORMAL_NAMES) == 34
    assert len(CITIES) >= 100
    assert len(set(CITIES)) == len(CITIES)
    assert {
        "浙江省",
        "浙江",
        "杭州",
        "杭州市",
        "广西壮族自治区",
        "香港特别行政区",
    } <= REGION_PREFIXES
    assert PROVINCE_FORMAL_NAMES["新疆"] == "新疆维吾尔自治区"


def test_clean_text_folds_width_case_and_punctuation() -> None:
    assert clean_text("ＡＢＣ－１２３，阿里　巴巴！") == "abc123阿里巴巴"
    assert is_generic("科技发展")
    assert not is_generic("阿里巴巴")


@pytest.mark.parametrize(
    ("text", "spellings", "initials"),
    [
        ("重庆", {"chongqing", "zhongqing"}, {"cq", "zq"}),
        ("长沙", {"changsha", "zhangsha"}, {"cs", "zs"}),
        ("银行", {"yinhang", "yinxing"}, {"yh", "yx"}),
        ("单", {"shan", "dan", "chan"}, {"s", "d", "c"}),
        ("曾", {"zeng", "ceng"}, {"z", "c"}),
        ("解", {"xie", "jie"}, {"x", "j"}),
        ("阿里巴巴", {"alibaba"}, {"albb"}),
    ],
)
def test_pinyin_keys_cover_polyphonic_characters(
    text: str, spellings: set[str], initials: set[str]
) -> None:
    full, firsts = pinyin_keys(text)
    assert spellings <= set(full)
    assert initials <= set(firsts)


def test_pinyin_keys_put_the_phrase_reading_first() -> None:
    assert pinyin_keys("重庆")[0][0] == "chongqing"
    assert pinyin_keys("银行")[0][0] == "yinhang"
    assert pinyin_keys("长沙")[1][0] == "cs"


def test_pinyin_keys_are_capped() -> None:
    full, firsts = pinyin_keys("行长重单曾解和乐行长重单曾解和乐")
    assert 1 < len(full) <= 16
    assert 1 < len(firsts) <= 16
    assert len(set(full)) == len(full)
    assert len(pinyin_keys("重庆银行", cap=4)[0]) == 4


def test_pinyin_keys_keep_latin_and_digits_whole() -> None:
    assert pinyin_keys("IBM中国") == (["ibmzhongguo"], ["ibmzg"])
    assert pinyin_keys("58同城") == (["58tongcheng"], ["58tc"])
    assert pinyin_keys("！？") == ([], [])


def test_char_readings() -> None:
    assert char_readings("行")[:2] == ("xing", "hang")
    assert char_readings("a") == ()
    assert set(char_readings("绿")) >= {"lv", "lu"}
    assert all(r in SYLLABLES for r in char_readings("重"))
    assert 400 < len(SYLLABLES) < 440
