"""Priority inference on real-sounding messages; the agreement rate is printed and asserted."""

from __future__ import annotations

import pytest

from handlers.service.priority import (
    choose_priority,
    infer_category,
    infer_priority,
    stated_priority,
)

# (what the customer said, the priority a service lead would give it)
TABLE: list[tuple[str, str]] = [
    ("系统宕机了，全公司都登不上去", "P1"),
    ("服务器从早上开始就挂了，订单全部进不来", "P1"),
    ("我们产线停了，设备一直报警，赶紧派人", "P1"),
    ("生产线停了两个小时，每分钟都在损失", "P1"),
    ("昨天升级之后数据丢失了，三个月的订单都不见了", "P1"),
    ("客户说数据全没了，备份也找不到", "P1"),
    ("设备冒烟了，现场已经断电", "P1"),
    ("充电桩漏电，有人差点触电", "P1"),
    ("机器起火了，幸好没人受伤", "P1"),
    ("网站被黑客入侵了，首页被改", "P1"),
    ("客户信息泄露了，有人打电话骗他们", "P1"),
    ("APP崩溃了，所有人都打不开", "P1"),
    ("收银系统瘫痪，门店没法结账", "P1"),
    ("整条线停摆，工人都在等", "P1"),
    ("大面积无法登录，客服电话被打爆", "P1"),
    ("仓库系统停机，今天的货发不出去", "P1"),
    ("同事误删了数据库里的客户表", "P1"),
    ("our whole site is down since 9am", "P1"),
    ("控制柜烧了，有安全隐患", "P1"),
    ("数据被删了，能恢复吗", "P1"),
    ("产品质量太差，要求全额退款", "P2"),
    ("不退钱我就去12315投诉你们", "P2"),
    ("再不解决我就找律师起诉", "P2"),
    ("已经第三次反映这个问题了，还是没人管", "P2"),
    ("这个问题反复出现，修了好几次都不行", "P2"),
    ("上周报的故障一直没处理", "P2"),
    ("要求赔偿我们的损失", "P2"),
    ("你们再这样我就去媒体曝光", "P2"),
    ("我要找你们领导，客服根本不管", "P2"),
    ("打印机又坏了，这个月第二次", "P2"),
    ("说好的上门安装到现在还没人来，没人理我们", "P2"),
    ("货不对板，退货退款", "P2"),
    ("给差评了，你们看着办", "P2"),
    ("多次投诉无果，要求升级处理", "P2"),
    ("屡次延迟发货，影响我们生产", "P2"),
    ("这是最后一次给你们机会", "P2"),
    ("问题还没解决，客户很生气", "P2"),
    ("要去消协投诉", "P2"),
    ("已经催了好几次了，还是没发货", "P2"),
    ("同样的报错又出现了", "P2"),
    ("打印机卡纸，打不出来", "P3"),
    ("登录的时候提示密码错误，但密码是对的", "P3"),
    ("收到的货有一个包装破损了", "P3"),
    ("导出的报表是乱码", "P3"),
    ("软件打开很慢，要等一分钟", "P3"),
    ("扫码枪没反应", "P3"),
    ("小程序支付失败，提示网络异常", "P3"),
    ("空调不制冷", "P3"),
    ("发错了型号，需要换一个", "P3"),
    ("手机端闪退", "P3"),
    ("快递显示签收了但是没收到", "P3"),
    ("考勤机时间不准", "P3"),
    ("配件少了两个螺丝", "P3"),
    ("页面白屏，刷新也不行", "P3"),
    ("同步到ERP失败了", "P3"),
    ("水龙头漏水", "P3"),
    ("客服态度不好，说话很冲", "P3"),
    ("安装师傅迟到了一个小时", "P3"),
    ("报价单上的数量不对", "P3"),
    ("短信验证码收不到", "P3"),
    ("请问怎么开增值税专用发票", "P4"),
    ("发票抬头写错了，能重开吗", "P4"),
    ("麻烦把上个月的对账单发我一下", "P4"),
    ("如何导出全部客户", "P4"),
    ("请问这个型号支持蓝牙吗", "P4"),
    ("想了解一下你们的企业版价格", "P4"),
    ("有没有操作说明书", "P4"),
    ("能不能加一个批量打印的功能", "P4"),
    ("续费在哪里操作", "P4"),
    ("怎么修改管理员手机号", "P4"),
    ("问一下新员工培训什么时候开始", "P4"),
    ("报销需要什么材料", "P4"),
    ("税号变更了，后面开票用新的", "P4"),
    ("建议首页加个搜索框", "P4"),
    ("咨询一下保修期多久", "P4"),
    ("可不可以分期付款", "P4"),
    ("请问周末有人值班吗", "P4"),
    ("怎样设置自动备份", "P4"),
    ("是否支持导入Excel", "P4"),
    ("请把教程链接再发一次", "P4"),
    ("能否提供一份产品目录", "P4"),
    ("客户问下个月价格会不会调整", "P4"),
    ("系统报错后怎么处理", "P3"),
    ("请问为什么一直提示无法连接", "P3"),
    ("设备坏了，请问怎么报修", "P3"),
]


def test_the_table_is_big_enough() -> None:
    assert len(TABLE) >= 80
    assert {p for _, p in TABLE} == {"P1", "P2", "P3", "P4"}


def test_agreement_with_the_table_is_at_least_90_percent() -> None:
    misses = [(text, want, infer_priority(text).value) for text, want in TABLE]
    misses = [m for m in misses if m[1] != m[2]]
    rate = 1 - len(misses) / len(TABLE)
    print(f"priority agreement: {rate:.1%} on {len(TABLE)} messages; misses: {misses}")
    assert rate >= 0.90, misses


@pytest.mark.parametrize(
    ("text", "priority", "rest"),
    [
        ("P1 打印机卡纸", "P1", "打印机卡纸"),
        ("打印机卡纸 p2", "P2", "打印机卡纸"),
        ("紧急 发票抬头错了", "P1", "发票抬头错了"),
        ("系统宕机 低", "P4", "系统宕机"),
        ("优先级：高 空调不制冷", "P2", "空调不制冷"),
        ("中优先级 请问怎么开票", "P3", "请问怎么开票"),
    ],
)
def test_a_stated_priority_wins_and_is_taken_out(text: str, priority: str, rest: str) -> None:
    chosen, cleaned, stated = choose_priority(text)
    assert (chosen.value, cleaned, stated) == (priority, rest, True)


@pytest.mark.parametrize("text", ["提高效率的方法", "型号P10不工作", "中午打不开", "MP3坏了"])
def test_words_inside_sentences_are_not_stated_priorities(text: str) -> None:
    assert stated_priority(text)[0] is None


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("系统宕机了", "故障"),
        ("要求退货", "退换货"),
        ("客服态度太差，我要投诉", "投诉"),
        ("请问怎么开发票", "咨询"),
        ("随便聊聊", "其他"),
    ],
)
def test_category_from_the_default_list(text: str, category: str) -> None:
    assert infer_category(text, ["咨询", "投诉", "故障", "退换货", "其他"]) == category


def test_category_only_from_the_configured_list() -> None:
    assert infer_category("要求退货", ["售后", "账务"]) == "账务"
    assert infer_category("账务问题：多扣了钱", ["售后", "账务"]) == "账务"
    assert infer_category("系统宕机了", ["售后", "故障", "其他"]) == "故障"
