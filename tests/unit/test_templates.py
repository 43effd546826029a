"""Markdown templates print user text inert; text templates and trusted values print as is."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from templates import escape_markdown, render, trusted


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("[点我](http://evil)", "［点我］（http://evil）"),
        ("**急**", "＊＊急＊＊"),
        ("__下划线__", "＿＿下划线＿＿"),
        ("`code`", "｀code｀"),
        ('<font color="info">绿</font>', '＜font color="info">绿＜/font>'),
        ("<@zhangsan>", "＜@zhangsan>"),
        ("# 标题", "＃ 标题"),
        ("> 引用", "＞ 引用"),
        ("第一行\n# 第二行\n  > 第三行", "第一行\n＃ 第二行\n  ＞ 第三行"),
        ("C# 与 a>b", "C# 与 a>b"),  # only at a line start are # and > markdown
        ("\"引号\" '单引号' {{ name }} {% raw %}", "\"引号\" '单引号' {{ name }} {% raw %}"),
        ("普通文字，没有特殊符号。", "普通文字，没有特殊符号。"),
    ],
)
def test_escape_markdown(typed: str, shown: str) -> None:
    assert escape_markdown(typed) == shown


def test_collision_notice_quotes_a_note_without_a_link() -> None:
    text = render(
        "sales/collision",
        actor="王经理",
        owner="张三",
        customer="阿里",
        action="记录了跟进",
        detail="[点我](http://evil)",
    )
    assert "[点我](http://evil)" not in text and "> ［点我］（http://evil）" in text
    assert text.startswith("**撞单提醒**")  # the template's own markdown stays live


def test_names_with_quotes_and_braces_round_trip_verbatim() -> None:
    name = '"星辰" 科技 {{ c.name }} {% if x %}'
    customer = SimpleNamespace(name=name, industry=None, phone=None, city=None)
    text = render("sales/customer_created", c=customer, contact=None)
    assert f"**已新建客户**：{name}" in text
    assert text.count(name) == 2  # the name and the suggested next command


def test_text_templates_are_not_escaped() -> None:
    text = render("customer/not_found", query="[点我](x)", suggestions=[], may_create=True)
    assert "“[点我](x)”" in text


def test_code_built_values_opt_out() -> None:
    command = SimpleNamespace(
        name="跟进", summary="记跟进", usage="跟进 <客户> <内容>", example="跟进 阿里 已拜访"
    )
    text = render("help/command", command=command, aliases=[])
    assert "`跟进 <客户> <内容>`" in text
    assert render("sales/collision", actor=trusted("**王**"), owner="", customer="", action="",
                  detail="").startswith("**撞单提醒**\n**王**")  # fmt: skip
