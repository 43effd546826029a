"""Issue 14 as a new rep tries it: 新客户 never guesses silently, follow-ups say what they
understood, 撤销 takes back any write, lookups the way reps type. Tables, both databases."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from crm_store import contacts, customers
from crm_store.models import Contact, Customer, Followup, Opportunity, Task
from crm_store.scope import load_actor
from tests.e2e.conftest import BotHarness
from tests.e2e.test_sales import count, crm  # noqa: F401  (the fixture)

TZ = ZoneInfo("Asia/Shanghai")
ASKS = "asks"
# text after 新客户 -> (name, industry, phone, contact, city) or ASKS
NEW_FORMS: list[tuple[str, tuple[str | None, ...] | str]] = [
    ("重庆银行股份有限公司 金融", ("重庆银行股份有限公司", "金融", None, None, None)),
    ("Apple Inc 电子", ("Apple Inc", "电子", None, None, None)),
    ("蓝 海 科技", ("蓝海科技", None, None, None, None)),
    ("星河 科技", ("星河科技", None, None, None, None)),
    (
        "甲乙丙有限公司 软件 13800138000 王总",
        ("甲乙丙有限公司", "软件", "13800138000", "王总", None),
    ),
    ("丁戊有限公司 138 0013 8001", ("丁戊有限公司", None, "13800138001", None, None)),
    ("己庚有限公司 138-0013-8002", ("己庚有限公司", None, "13800138002", None, None)),
    ("辛壬有限公司 +86 138-0013-8003", ("辛壬有限公司", None, "13800138003", None, None)),
    ("癸子有限公司 (0571)88880001 李经理", ("癸子有限公司", None, "057188880001", "李经理", None)),
    (
        "丑寅科技 行业:金融 电话:13800138004 联系人:张伟 城市:上海",
        ("丑寅科技", "金融", "13800138004", "张伟", "上海"),
    ),
    ("卯辰科技 行业：保险 联系人：陈女士", ("卯辰科技", "保险", None, "陈女士", None)),
    ("巳午（中国）有限公司 互联网", ("巳午(中国)有限公司", "互联网", None, None, None)),
    ("未申 (上海) 有限公司 物流", ("未申(上海)有限公司", "物流", None, None, None)),
    ("Acme Corp 制造", ("Acme Corp", "制造", None, None, None)),
    ("Globex Ltd 13800138005 Mr Smith", ASKS),
    ("酉戌有限公司 金融 杭州", ("酉戌有限公司", "金融", None, None, "杭州")),
    ("亥乾有限公司 深圳市 刘总", ("亥乾有限公司", None, None, "刘总", "深圳市")),
    ("坤震有限公司 张伟", ASKS),
    ("巽坎有限公司 光伏", ("巽坎有限公司", "光伏", None, None, None)),
    ("离艮有限公司 某某某某", ASKS),
    ("兑元有限公司 王磊 李强", ASKS),
    ("亨利有限公司 电子 13800 王总", "bad_phone"),
    (
        "贞吉有限公司 医疗 南京 周主任 13800138006",
        ("贞吉有限公司", "医疗", "13800138006", "周主任", "南京"),
    ),
    ("名称:春风 行业:教育", ("春风", "教育", None, None, None)),
    ("夏雨有限公司, 零售, 13800138007", ("夏雨有限公司", "零售", "13800138007", None, None)),
    ("秋霜有限公司，餐饮，吴老板", ("秋霜有限公司", "餐饮", None, "吴老板", None)),
    ("冬雪有限公司 房地产 城市:成都", ("冬雪有限公司", "房地产", None, None, "成都")),
    ("东风大学 教育", ("东风大学", "教育", None, None, None)),
    ("西岭医院 医疗 郑院长", ("西岭医院", "医疗", None, "郑院长", None)),
    ("南山研究院 咨询", ("南山研究院", "咨询", None, None, None)),
    ("北斗工作室 传媒", ("北斗工作室", "传媒", None, None, None)),
    ("中和事务所 法律 何律师", ("中和事务所", "法律", None, "何律师", None)),
    ("白云分公司 物流", ("白云分公司", "物流", None, None, None)),
    ("黑土 农业", ("黑土", "农业", None, None, None)),
    ("青松 家具 林先生", ("青松", "家具", None, "林先生", None)),
    ("红枫 服装 厦门", ("红枫", "服装", None, None, "厦门")),
    ("黄河 化工 13900139000", ("黄河", "化工", "13900139000", None, None)),
    ("长江 钢铁 0755-88880002", ("长江", "钢铁", "075588880002", None, None)),
    ("泰山 汽车 马经理 济南", ("泰山", "汽车", None, "马经理", "济南")),
    ("华山 游戏", ("华山", "游戏", None, None, None)),
    ("衡山 某个词", ASKS),
    ("恒山 金 融", ASKS),
    ("嵩山 1380013800x", "bad_phone"),
    ("Initech 软件", ("Initech", "软件", None, None, None)),
    ("Umbrella Group 医药", ("Umbrella Group", "医药", None, None, None)),
    ("Stark Industries Inc 军工", ("Stark Industries Inc", "军工", None, None, None)),
    ("Wayne 金融 John", ASKS),
    ("江南皮革厂 行业:制造 联系人:黄老板", ("江南皮革厂", "制造", None, "黄老板", None)),
    ("太湖 电话:138 0013 8008", ("太湖", None, "13800138008", None, None)),
    ("洞庭 电话：abc", "bad_phone"),
    (
        "鄱阳有限公司 行业:能源 城市:南昌 联系人:徐总 电话:+86-138-0013-8009",
        ("鄱阳有限公司", "能源", "13800138009", "徐总", "南昌"),
    ),
    ("洱海 旅游 大理", ("洱海", "旅游", None, None, "大理")),
    ("滇池 旅游 昆明 杨经理", ("滇池", "旅游", None, "杨经理", "昆明")),
    ("天池 运营商 乌鲁木齐", ("天池", "运营商", None, None, "乌鲁木齐")),
    ("瑶池 安防 139 0013 9001 曹总", ("瑶池", "安防", "13900139001", "曹总", None)),
    ("玉龙 半导体 SaaS", ASKS),
    ("紫金 芯片 王", ASKS),
    ("翠湖 金融 证券", ASKS),
    ("碧水 电商 杭州 上海", ASKS),
    ("丹霞 文化 邓总 赵总", ASKS),
]
FOLLOWUPS: list[tuple[str, str | None, datetime | str | None]] = [
    # content after "跟进 阿里 " -> (next step stored, due in Shanghai time | problem | None)
    ("今天拜访了王总，月底前发方案", "发方案", datetime(2026, 11, 30, 9, 0, tzinfo=TZ)),
    ("电话沟通了，下周三之前回复报价", "回复报价", datetime(2026, 11, 25, 9, 0, tzinfo=TZ)),
    ("聊了需求，下周一以前给演示", "给演示", datetime(2026, 11, 23, 9, 0, tzinfo=TZ)),
    ("见了面，下周三下午三点左右再联系", "再联系", datetime(2026, 11, 25, 15, 0, tzinfo=TZ)),
    ("拜访了王总，过两天再约", "再约", datetime(2026, 11, 23, 9, 0, tzinfo=TZ)),
    ("发了资料，过几天再问问", "再问问", datetime(2026, 11, 23, 9, 0, tzinfo=TZ)),
    ("沟通了预算，改天再去拜访", "再去拜访", datetime(2026, 11, 23, 9, 0, tzinfo=TZ)),
    ("见了面 回头再聊", "再聊", datetime(2026, 11, 23, 9, 0, tzinfo=TZ)),
    ("报价发了，过段时间再跟", "再跟", datetime(2026, 11, 27, 9, 0, tzinfo=TZ)),
    ("电话没人接，晚点再打", "再打", datetime(2026, 11, 20, 20, 0, tzinfo=TZ)),
    ("拜访了，明天再联系", "再联系", datetime(2026, 11, 21, 9, 0, tzinfo=TZ)),
    ("发了合同，后天上午确认", "确认", datetime(2026, 11, 22, 9, 0, tzinfo=TZ)),
    ("沟通了，周六再约", "再约", datetime(2026, 11, 21, 9, 0, tzinfo=TZ)),
    ("见了面，周日下午再聊", "再聊", datetime(2026, 11, 22, 14, 0, tzinfo=TZ)),
    ("沟通顺利，下周二上午10点再联系", "再联系", datetime(2026, 11, 24, 10, 0, tzinfo=TZ)),
    ("聊了，3天后再跟进", "再跟进", datetime(2026, 11, 23, 9, 0, tzinfo=TZ)),
    ("发了方案，12月5日前反馈", "反馈", datetime(2026, 12, 5, 9, 0, tzinfo=TZ)),
    ("电话沟通了续约", None, None),
    ("昨天拜访了客户，聊得不错", None, None),
    ("拜访了，昨天再联系", None, "past"),
    ("聊了，上周三再约", None, "past"),
    ("沟通了，明天25点再打", None, "impossible"),
    ("called, tomorrow 3pm", "再次跟进", datetime(2026, 11, 21, 15, 0, tzinfo=TZ)),
    ("met the CFO, follow up next Monday", "follow up", datetime(2026, 11, 23, 9, 0, tzinfo=TZ)),
    (
        "sent the quote, call again on Friday at 10",
        "call again",
        datetime(2026, 11, 27, 10, 0, tzinfo=TZ),
    ),
    ("demo done, next week", "再次跟进", datetime(2026, 11, 23, 9, 0, tzinfo=TZ)),
    ("visited, in 3 days", "再次跟进", datetime(2026, 11, 23, 9, 0, tzinfo=TZ)),
    (
        "talked, by end of the month send proposal",
        "send proposal",
        datetime(2026, 11, 30, 9, 0, tzinfo=TZ),
    ),
    ("talked, tonight call back", "call back", datetime(2026, 11, 20, 19, 0, tzinfo=TZ)),
    ("called, 3pm tomorrow", "再次跟进", datetime(2026, 11, 21, 15, 0, tzinfo=TZ)),
    ("called, next Monday morning", "再次跟进", datetime(2026, 11, 23, 9, 0, tzinfo=TZ)),
    ("called, yesterday", None, None),  # a past time stays in what happened
    ("called, tomorrow 13pm", None, "impossible"),
    ("sat down with the CFO", None, None),
    ("拜访了，下周六再约", "再约", datetime(2026, 11, 28, 9, 0, tzinfo=TZ)),
    ("沟通了，1月1日再联系", "再联系", datetime(2027, 1, 1, 9, 0, tzinfo=TZ)),
    ("聊了，明早9点半再打", "再打", datetime(2026, 11, 21, 9, 30, tzinfo=TZ)),
    ("拜访了，大概下周四再去", "再去", datetime(2026, 11, 26, 9, 0, tzinfo=TZ)),
    ("谈了价格，月底左右签约", "签约", datetime(2026, 11, 30, 9, 0, tzinfo=TZ)),
    ("见了李总，下个月初再碰", "再碰", datetime(2026, 12, 1, 9, 0, tzinfo=TZ)),
]


async def _seed_lookups(bot: BotHarness) -> None:
    """Phones and contacts on the shared customers, so lookups by them have something to find."""
    now = bot.clock.now()
    async with bot.runtime.sessions.begin() as session:
        admin = await load_actor(session, "admin")
        assert admin is not None
        extra = [
            ("南京紫金山科技有限公司", "zhangsan", "南京", "13912345678", "赵大宝"),
            ("青岛海尔智家股份有限公司", "zhangsan", "青岛", "053288880000", "孙丽丽"),
            ("杭州云起软件有限公司", "lisi", "杭州", "13700001111", "周杰"),
        ]
        for name, owner, city, phone, contact in extra:
            made = await customers.create_customer(
                session, actor=admin, name=name, now=now, owner_id=owner, city=city, phone=phone
            )
            await contacts.add_contact(
                session, actor_id="admin", customer_id=made.id, name=contact, now=now
            )


async def test_new_customer_forms_are_read_or_asked(crm: BotHarness) -> None:  # noqa: F811
    assert len(NEW_FORMS) >= 60
    wrong: list[str] = []
    for k, (typed, expected) in enumerate(NEW_FORMS):
        crm.clock.advance(seconds=3)  # stay under WeCom's 30 messages a minute per person
        answers = await crm.say("zhangsan", f"新客户 {typed}", msg_id=9000 + k)
        async with crm.runtime.sessions.begin() as session:
            made = (
                await session.scalars(
                    select(Customer).where(
                        Customer.created_at.is_not(None), Customer.source_channel == "chat"
                    )
                )
            ).all()
            contact = await session.scalar(
                select(Contact.name).where(Contact.customer_id.in_([c.id for c in made]))
            )
            for c in made:
                await session.execute(delete(Contact).where(Contact.customer_id == c.id))
                await session.delete(c)
        if expected == ASKS:
            if made or not any("请确认新客户信息" in a for a in answers):
                wrong.append(
                    f"{typed}: expected a question, got {answers} / {[c.name for c in made]}"
                )
            continue
        if expected == "bad_phone":
            if made or not any("电话" in a for a in answers):
                wrong.append(f"{typed}: expected a phone question, got {answers}")
            continue
        got = None
        if len(made) == 1:
            c = made[0]
            got = (c.name, c.industry, c.phone, contact, c.city)
        if got != expected:
            wrong.append(f"{typed}: expected {expected}, got {got} ({answers})")
    assert not wrong, "\n".join(wrong)


async def test_the_confirmation_card_fixes_a_field_then_creates(crm: BotHarness) -> None:  # noqa: F811
    [card] = await crm.say("zhangsan", "新客户 坤震有限公司 张伟")
    assert "请确认新客户信息" in card and "张伟？" in card
    assert await count(crm, Customer, Customer.name == "坤震有限公司") == 0
    [ask] = await crm.tap("zhangsan", "sales.customers.fix_field:contact")
    assert "联系人" in ask
    [again] = await crm.say("zhangsan", "张伟先生")
    assert "张伟先生" in again and "张伟先生？" not in again
    [fixed] = await crm.say("zhangsan", "行业:金融")
    assert "金融" in fixed
    [created] = await crm.tap("zhangsan", "sales.customers.create_shown")
    assert "已新建客户" in created and "金融" in created and "张伟先生" in created
    async with crm.runtime.sessions() as session:
        made = await session.scalar(select(Customer).where(Customer.name == "坤震有限公司"))
    assert made is not None and made.industry == "金融"


async def test_spaced_names_are_found_by_dedup(crm: BotHarness) -> None:  # noqa: F811
    [created] = await crm.say("zhangsan", "新客户 蓝 海 科技")
    assert "蓝海科技" in created
    [warning] = await crm.say("lisi", "新客户 蓝海科技")
    assert "已有相似客户" in warning


async def test_follow_up_texts_say_what_they_understood(crm: BotHarness) -> None:  # noqa: F811
    assert len(FOLLOWUPS) >= 40
    wrong: list[str] = []
    for k, (typed, step, due) in enumerate(FOLLOWUPS):
        crm.clock.advance(seconds=2.5)  # stay under WeCom's 30 messages a minute per person
        answers = await crm.say("zhangsan", f"跟进 阿里 {typed}", msg_id=7000 + k)
        async with crm.runtime.sessions.begin() as session:
            followup = await session.scalar(select(Followup))
            task = await session.scalar(select(Task))
            await session.execute(delete(Task))
            await session.execute(delete(Followup))
        text = "\n".join(answers)
        if due in ("past", "impossible"):
            if followup is not None:
                wrong.append(f"{typed}: a {due} time was stored")
            continue
        if followup is None:
            wrong.append(f"{typed}: nothing stored ({text})")
            continue
        if step is None:
            if followup.next_step is not None or task is not None:
                wrong.append(f"{typed}: unexpected next step {followup.next_step!r}")
            continue
        stored_due = task.due_at.astimezone(TZ) if task is not None else None
        if followup.next_step != step or stored_due != due:
            wrong.append(
                f"{typed}: expected {step!r} at {due}, got {followup.next_step!r} at {stored_due}"
            )
        elif f"{due:%H:%M}" not in text:
            wrong.append(f"{typed}: the confirmation does not show {due:%H:%M}: {text}")
    assert not wrong, "\n".join(wrong)


async def test_stored_content_keeps_the_reps_punctuation(crm: BotHarness) -> None:  # noqa: F811
    await crm.say("zhangsan", "跟进 阿里 今天拜访了王总，对报价有兴趣（偏高），下周三再联系")
    async with crm.runtime.sessions() as session:
        followup = await session.scalar(select(Followup))
    assert followup is not None and "王总，对报价有兴趣（偏高）" in followup.content


async def test_vague_and_weekend_reminders_say_so_and_offer_the_workday(crm: BotHarness) -> None:  # noqa: F811
    [vague] = await crm.say("zhangsan", "跟进 阿里 拜访了王总，过两天再约")
    assert "过两天" in vague and "没说具体时间" in vague and "09:00" in vague
    [weekend] = await crm.say("zhangsan", "跟进 鹅厂 沟通了，周六再约")
    assert "休息日" in weekend and "11月23日" in weekend
    [moved] = await crm.tap("zhangsan", "sales.followup.workday:")
    assert "已推迟" in moved and "11月23日" in moved
    async with crm.runtime.sessions() as session:
        due = await session.scalar(select(Task.due_at).order_by(Task.id.desc()))
    assert due is not None and due.astimezone(TZ) == datetime(2026, 11, 23, 9, 0, tzinfo=TZ)


async def test_undo_takes_back_each_kind_of_write(crm: BotHarness) -> None:  # noqa: F811
    await crm.say("zhangsan", "新客户 撤销测试有限公司 软件")
    [undone] = await crm.say("zhangsan", "撤销")
    assert "已撤销新建的客户" in undone
    assert await count(crm, Customer, Customer.name == "撤销测试有限公司") == 0
    await crm.say("zhangsan", "商机 阿里 云服务器采购 50万")
    [undone] = await crm.say("zhangsan", "撤销")
    assert "已撤销新建的商机" in undone and await count(crm, Opportunity) == 0
    await crm.say("zhangsan", "商机 阿里 云服务器采购 50万")
    await crm.say("zhangsan", "阶段 阿里 方案报价")
    [undone] = await crm.say("zhangsan", "撤销")
    assert "回到原来的阶段" in undone
    async with crm.runtime.sessions() as session:
        deal = await session.scalar(select(Opportunity))
    assert deal is not None and deal.stage == "初步接洽"
    [claimed] = await crm.say("zhangsan", "领取 云栖")
    assert "已领取" in claimed
    [undone] = await crm.say("zhangsan", "撤销")
    assert "放回公海" in undone
    async with crm.runtime.sessions() as session:
        pooled = await session.scalar(select(Customer).where(Customer.name.like("杭州云栖%")))
    assert pooled is not None and pooled.in_pool and pooled.owner_id is None
    await crm.say("zhangsan", "改 阿里 行业 电子商务")
    [undone] = await crm.say("zhangsan", "撤销")
    assert "恢复原来的值" in undone
    async with crm.runtime.sessions() as session:
        ali = await session.scalar(select(Customer).where(Customer.name.like("阿里巴巴%")))
    assert ali is not None and ali.industry == "互联网"
    await crm.say("zhangsan", "跟进 阿里 电话沟通了，明天再联系")
    [undone] = await crm.say("zhangsan", "撤销")
    assert "已撤销这条跟进" in undone and await count(crm, Followup) == 0
    [nothing] = await crm.say("zhangsan", "撤销")
    assert "没有可以撤销" in nothing


async def test_undo_refuses_when_something_happened_since(crm: BotHarness) -> None:  # noqa: F811
    await crm.say("zhangsan", "新客户 后来有跟进有限公司 软件")
    await crm.say("zhangsan", "商机 后来有跟进 试点项目 10万")
    await crm.say("zhangsan", "新客户 又一家有限公司 软件")
    await crm.say("zhangsan", "跟进 后来有跟进 电话沟通了")
    async with crm.runtime.sessions() as session:
        made = await session.scalar(select(Customer).where(Customer.name == "后来有跟进有限公司"))
    assert made is not None
    async with crm.runtime.sessions.begin() as session:
        refused = await customers.undo_create_customer(
            session,
            actor_id="zhangsan",
            customer_id=made.id,
            created_key=str(made.source_key),
            source_key="test-undo",
            now=crm.clock.now(),
        )
    assert refused is customers.UndoResult.CHANGED_SINCE


async def test_a_bare_name_shows_the_card_and_yes_takes_the_suggestion(crm: BotHarness) -> None:  # noqa: F811
    [card] = await crm.say("zhangsan", "阿里巴巴")
    assert card.startswith("**阿里巴巴网络技术有限公司**")
    [not_understood] = await crm.say("zhangsan", "今天天气不错，我们去吃饭吧")
    assert "没看懂" in not_understood
    [offer] = await crm.say("zhangsan", "跟进 阿里八八 电话沟通了")
    if "您要找的是不是" in offer:
        [logged] = await crm.say("zhangsan", "是")
        assert "已记录跟进" in logged


async def test_managers_find_a_persons_customers_within_scope(crm: BotHarness) -> None:  # noqa: F811
    [listed] = await crm.say("wangjl", "客户 张三")
    assert "张三的客户" in listed and "阿里巴巴网络技术有限公司" in listed
    [hidden] = await crm.say("qianqi", "客户 张三")
    assert "阿里巴巴" not in hidden


NOT_FOUND = ""
# What a rep types after 查, and the customer whose card must come back ("" = not found).
LOOKUPS: list[tuple[str, str]] = [
    # phones, in every spelling
    ("13912345678", "南京紫金山科技有限公司"),
    ("139 1234 5678", "南京紫金山科技有限公司"),
    ("139-1234-5678", "南京紫金山科技有限公司"),
    ("+86 139 1234 5678", "南京紫金山科技有限公司"),
    ("+8613912345678", "南京紫金山科技有限公司"),
    ("0086 13912345678", "南京紫金山科技有限公司"),
    ("１３９１２３４５６７８", "南京紫金山科技有限公司"),
    ("053288880000", "青岛海尔智家股份有限公司"),
    ("0532-88880000", "青岛海尔智家股份有限公司"),
    ("0532 8888 0000", "青岛海尔智家股份有限公司"),
    ("(0532)88880000", "青岛海尔智家股份有限公司"),
    ("88880000", "青岛海尔智家股份有限公司"),
    # contacts' names
    ("赵大宝", "南京紫金山科技有限公司"),
    ("孙丽丽", "青岛海尔智家股份有限公司"),
    ("zhaodabao", "南京紫金山科技有限公司"),
    ("sunlili", "青岛海尔智家股份有限公司"),
    # whole-name initials, with the city
    ("njzjs", "南京紫金山科技有限公司"),
    ("NJZJS", "南京紫金山科技有限公司"),
    ("qdhe", "青岛海尔智家股份有限公司"),
    ("hzyq", "杭州云栖科技有限公司"),
    ("albb", "阿里巴巴网络技术有限公司"),
    ("szsTX", "深圳市腾讯计算机系统有限公司"),
    ("hwzd", "华为终端有限公司"),
    # full pinyin, with the city
    ("nanjingzijinshan", "南京紫金山科技有限公司"),
    ("qingdaohaier", "青岛海尔智家股份有限公司"),
    ("hangzhouyunqi", "杭州云栖科技有限公司"),
    ("nanjing zijinshan", "南京紫金山科技有限公司"),
    ("alibaba", "阿里巴巴网络技术有限公司"),
    ("huaweizhongduan", "华为终端有限公司"),
    # characters, with and without the city
    ("南京紫金山", "南京紫金山科技有限公司"),
    ("紫金山", "南京紫金山科技有限公司"),
    ("青岛海尔", "青岛海尔智家股份有限公司"),
    ("海尔", "青岛海尔智家股份有限公司"),
    ("杭州云栖", "杭州云栖科技有限公司"),
    ("腾讯", "深圳市腾讯计算机系统有限公司"),
    ("鹅厂", "深圳市腾讯计算机系统有限公司"),
    # never beyond the asker's scope: lisi's and qianqi's customers, by any key
    ("13700001111", NOT_FOUND),
    ("周杰", NOT_FOUND),
    ("hzyqrj", NOT_FOUND),
    ("字节跳动", NOT_FOUND),
]


async def test_lookups_the_way_reps_type(crm: BotHarness) -> None:  # noqa: F811
    assert len(LOOKUPS) >= 40
    await _seed_lookups(crm)
    async with crm.runtime.sessions() as session:  # the index follows new rows at once
        await crm.runtime.search.refresh(session, force=True)
    wrong: list[str] = []
    for k, (typed, expected) in enumerate(LOOKUPS):
        crm.clock.advance(seconds=3)  # stay under WeCom's 30 messages a minute per person
        answers = await crm.say("zhangsan", f"查 {typed}", msg_id=7000 + k)
        seen = "\n".join(answers)
        if expected == NOT_FOUND:
            if "没有找到" not in seen or "杭州云起软件有限公司" in seen or "北京字节跳动" in seen:
                wrong.append(f"{typed!r} → {seen[:60]!r}")
        elif not (answers and answers[0].startswith(f"**{expected}**")):
            wrong.append(f"{typed!r} → {seen[:60]!r}")
    assert not wrong, "\n".join(wrong)
