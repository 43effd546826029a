"""`wecrm demo`: the bot on SQLite, wired to the built-in WeCom simulator with made-up keys.

A newcomer has no WeCom app yet; this shows the whole path (encrypted callback -> inbox ->
handlers -> outbox -> message/send) on one machine, and offers a chat prompt in the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import string
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from bot.app import Runtime, create_app, runtime_key
from bot.settings import Settings, load_settings
from bot.simulator import WeComSimulator
from bot.wecom.directory import sync_directory
from crm_store.clock import SystemClock

DEMO_AGENT_ID = 1000002
# A small company for the demo: (userid, name, departments, is_leader_in_dept, position).
DEMO_DEPARTMENTS = [
    (1, "演示公司", 0),
    (2, "销售部", 1),
    (3, "销售一组", 2),
    (4, "销售二组", 2),
    (5, "客服部", 1),
]
DEMO_PEOPLE = [
    ("wangjl", "王经理", [2], [1], "销售经理"),
    ("lizz", "李组长", [3], [1], "销售组长"),
    ("zhangsan", "张三", [3], [0], "销售"),
    ("zhaoliu", "赵六", [3], [0], "销售"),
    ("qianqi", "钱七", [4], [0], "销售"),
    ("zhoujiu", "周九", [5], [0], "客服"),
    ("admin", "吴管理员", [1], [0], "IT 管理员"),
]
DEMO_LEADERS = {
    "lizz": ["wangjl"],
    "zhangsan": ["lizz"],
    "zhaoliu": ["lizz"],
    "qianqi": ["wangjl"],
}


@dataclass(frozen=True)
class DemoCredentials:
    corp_id: str
    secret: str
    token: str
    aes_key: str

    @classmethod
    def generate(cls) -> DemoCredentials:
        alphabet = string.ascii_letters + string.digits
        return cls(
            corp_id="wwdemo" + secrets.token_hex(6),
            secret=secrets.token_urlsafe(32),
            token=secrets.token_urlsafe(12),
            aes_key="".join(secrets.choice(alphabet) for _ in range(43)),
        )


def demo_simulator(creds: DemoCredentials) -> WeComSimulator:
    sim = WeComSimulator(
        creds.corp_id, creds.secret, DEMO_AGENT_ID, creds.token, creds.aes_key, SystemClock()
    )
    for dept_id, name, parent in DEMO_DEPARTMENTS:
        leaders = [p[0] for p in DEMO_PEOPLE if dept_id in p[2] and p[3][p[2].index(dept_id)]]
        sim.add_department(dept_id, name, parent, leaders=leaders)
    for userid, name, departments, leader_flags, position in DEMO_PEOPLE:
        sim.add_user(
            userid,
            name,
            departments,
            is_leader_in_dept=leader_flags,
            position=position,
            direct_leader=DEMO_LEADERS.get(userid, []),
        )
    return sim


@dataclass
class Demo:
    sim: WeComSimulator
    bot_url: str
    sim_url: str
    runtime: Runtime


@asynccontextmanager
async def run_demo(
    database_url: str, *, host: str = "127.0.0.1", port: int = 8080, sim_port: int = 0
) -> AsyncIterator[Demo]:
    """Start the simulator and the bot (role all); the database must already be migrated."""
    creds = DemoCredentials.generate()
    sim = demo_simulator(creds)
    async with sim.serve(host="127.0.0.1", port=sim_port) as sim_url:
        settings: Settings = load_settings(
            WECOM_CORP_ID=creds.corp_id,
            WECOM_AGENT_ID=DEMO_AGENT_ID,
            WECOM_SECRET=creds.secret,
            WECOM_TOKEN=creds.token,
            WECOM_AES_KEY=creds.aes_key,
            WECOM_API_BASE=f"{sim_url}/cgi-bin/",
            WECRM_DATABASE_URL=database_url,
            WECRM_REDIS_URL="",
        )
        app = create_app(settings, role="all")
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        address = runner.addresses[0]
        bot_url = f"http://{address[0]}:{address[1]}"
        sim.callback_url = f"{bot_url}/wecom/callback"
        try:
            await _sync_directory(app[runtime_key])
            yield Demo(sim=sim, bot_url=bot_url, sim_url=sim_url, runtime=app[runtime_key])
        finally:
            await runner.cleanup()
            await sim.close()


async def _sync_directory(runtime: Runtime) -> None:
    await sync_directory(runtime.client, runtime.sessions, now=runtime.clock.now())


async def wait_for_replies(
    sim: WeComSimulator, user: str, seen: int, patience: float = 10.0
) -> list[str]:
    """New texts for `user`: wait until replies stop arriving (real time: this is the demo)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    quiet_since: float | None = None
    while loop.time() < deadline:
        count = len(sim.screen(user))
        if count > seen:
            quiet_since = quiet_since or loop.time()
            if loop.time() - quiet_since > 0.3:
                break
        await asyncio.sleep(0.05)
    return sim.screen(user)[seen:]


async def repl(demo: Demo, user: str = "zhangsan") -> None:
    """A chat prompt in the terminal: what you type is sent through the encrypted callback."""
    print(
        "输入消息与机器人对话（如：帮助）。/as <userid> 切换身份，/who 列出演示成员，/quit 退出。"
    )
    while True:
        line = await asyncio.to_thread(_read_line, f"{user}> ")
        if line is None or line.strip() in ("/quit", "/exit"):
            return
        text = line.strip()
        if not text:
            continue
        if text.startswith("/as "):
            user = text[4:].strip() or user
            continue
        if text == "/who":
            for userid, name, *_rest, position in DEMO_PEOPLE:
                print(f"  {userid:10} {name}（{position}）")
            continue
        seen = len(demo.sim.screen(user))
        status, _ = await demo.sim.send_text(user, text)
        if status != 200:
            print(f"  [回调被拒绝: HTTP {status}]")
            continue
        for reply in await wait_for_replies(demo.sim, user, seen):
            print("\n".join("  " + row for row in reply.splitlines()) + "\n")


def _read_line(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        return None


async def main(
    database_url: str, *, host: str, port: int, sim_port: int, interactive: bool
) -> None:
    async with run_demo(database_url, host=host, port=port, sim_port=sim_port) as demo:
        print(f"bot:       {demo.bot_url}/wecom/callback  (SQLite: {database_url})")
        print(f"simulator: {demo.sim_url}  (WeCom API under /cgi-bin)")
        print(
            f"try:  curl -s -X POST {demo.sim_url}/sim/say -d "
            '\'{"from": "zhangsan", "text": "帮助"}\''
        )
        print(f"      curl -s '{demo.sim_url}/sim/messages?to=zhangsan'")
        if interactive and sys.stdin.isatty():
            await repl(demo)
        else:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
