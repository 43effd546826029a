"""Priority and category from the customer's words, unless the person states a priority.

Outages, stopped lines, lost data and safety come first (P1); refund demands, escalation
threats and repeated complaints next (P2); invoices, questions and how-to last (P4); any other
problem is P3. Pure functions: the tests read them on a table of real-sounding messages.
"""

from __future__ import annotations

import re

from crm_store.models.service import Priority

_P1 = (
    "宕机", "停机", "瘫痪", "崩溃", "崩了", "挂了", "全挂", "down", "outage",
    "停产", "停线", "线停", "停摆", "生产线停", "产线停", "全部停", "整条线",
    "数据丢", "丢数据", "丢失数据", "数据没了", "数据全没", "数据被删", "数据清空", "误删",
    "安全事故", "安全隐患", "起火", "着火", "冒烟", "爆炸", "漏电", "触电", "受伤", "烧了",
    "泄露", "被盗", "入侵", "黑客", "所有人都", "全部用户", "全员无法", "大面积",
)  # fmt: skip
_P2 = (
    "退款", "退钱", "把钱退", "赔偿", "索赔", "赔钱", "退货退款",
    "投诉到", "曝光", "媒体", "12315", "消协", "315", "工商", "律师", "起诉", "法院",
    "告你们", "找你们领导", "找领导", "升级处理", "差评", "再不解决", "再不处理", "最后一次",
    "第二次", "第三次", "又一次", "又出现", "又坏", "又是", "再次", "多次", "反复", "屡次",
    "好几次", "一直没", "还没解决", "还是没", "仍然没", "还没人", "没人理", "没人管",
)  # fmt: skip
_P4 = (
    "发票", "开票", "税号", "抬头", "报销", "对账单",
    "怎么", "如何", "怎样", "请问", "咨询", "能否", "能不能", "可不可以", "是否支持", "支持不支持",
    "教程", "说明书", "操作方法", "在哪", "哪里可以", "想了解", "问一下", "问下", "建议",
    "希望增加", "能加个", "培训", "续费", "报价", "价格",
)  # fmt: skip
_FAULT = (
    "坏", "故障", "报错", "错误", "异常", "失败", "打不开", "不能用", "用不了", "无法", "不能",
    "卡住", "卡死", "很慢", "太慢", "闪退", "死机", "不工作", "没反应", "漏水", "损坏", "破损",
    "缺件", "少了", "错发", "发错", "没收到", "延迟", "不准", "不对", "乱码", "白屏", "黑屏",
)  # fmt: skip
_STATED = re.compile(r"(?<![A-Za-z0-9])[Pp]([1-4])(?![0-9])")
_STATED_WORD = re.compile(
    r"(?:优先级|级别)\s*[:：]?\s*(紧急|高|中|低)|(紧急|高|中|低)优先级|(?:^|\s)(紧急|高|中|低)(?=\s|$)"
)
WORD_PRIORITY = {"紧急": Priority.P1, "高": Priority.P2, "中": Priority.P3, "低": Priority.P4}

CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "故障": _P1[:30] + _FAULT,
    "退换货": ("退货", "换货", "退换", "退款", "退钱", "破损", "错发", "发错", "缺件"),
    "投诉": ("投诉", "态度", "不满", "差评", "太差", "欺骗", "骗", "敷衍", "没人理", "曝光",
           "12315"),
    "咨询": _P4,
}  # fmt: skip


def _has(text: str, words: tuple[str, ...]) -> bool:
    return any(w in text for w in words)


def stated_priority(text: str) -> tuple[Priority | None, str]:
    """A priority the person wrote (P1, 紧急, 优先级高) and the text without it."""
    match = _STATED.search(text)
    if match is not None:
        rest = (text[: match.start()] + text[match.end() :]).strip()
        return Priority(f"P{match.group(1)}"), " ".join(rest.split())
    word = _STATED_WORD.search(text)
    if word is not None:
        level = next(g for g in word.groups() if g)
        rest = (text[: word.start()] + text[word.end() :]).strip()
        return WORD_PRIORITY[level], " ".join(rest.split())
    return None, text


def infer_priority(text: str) -> Priority:
    """The priority the words suggest (see the module docstring for the order)."""
    lowered = text.lower()
    if _has(lowered, _P1):
        return Priority.P1
    if _has(lowered, _P2):
        return Priority.P2
    if _has(lowered, _P4) and not _has(lowered, _FAULT):
        return Priority.P4
    return Priority.P3


def choose_priority(text: str) -> tuple[Priority, str, bool]:
    """(priority, text without a stated priority, whether it was stated)."""
    stated, rest = stated_priority(text)
    if stated is not None:
        return stated, rest, True
    return infer_priority(text), text, False


def infer_category(text: str, categories: list[str]) -> str:
    """The first configured category the words fit; a category named in the text wins."""
    lowered = text.lower()
    for category in categories:
        if category in text:
            return category
    for category in ("退换货", "投诉", "故障", "咨询"):
        if category in categories and _has(lowered, CATEGORY_WORDS[category]):
            return category
    return "其他" if "其他" in categories else categories[-1]
