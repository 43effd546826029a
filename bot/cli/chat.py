"""`wecrm chat --as USERID`: the demo conversation in a terminal, through the simulator's API.

The same path as the chat page: what you type goes to /sim/say (encrypted and signed as WeCom
does), and everything sent to the current person is shown as it arrives, pushes included.
Standard input may be a pipe (one message a line, for scripts) or a terminal (a small line
editor, so a push can appear above what you are typing). Input is bytes: broken UTF-8 becomes
U+FFFD, a character split across reads is joined, and a long paste is one message.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import re
import sys
import threading
import unicodedata
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TextIO

import aiohttp
import typer

__all__ = ["TerminalChat", "chat", "plain_markdown", "render_entry"]

DEFAULT_SIM = "http://127.0.0.1:8081"
POLL_SECONDS = 0.5
BOT = "CRM> "
INDENT = "     "
HELP = (
    "/who 列出成员  /as <userid> 切换身份  /tap <序号> 按卡片按钮  "
    "/clock 18:30 | /clock 09:00 明天 | /clock +30 移动时间  /quit 退出"
)
_FONT = re.compile(r'<font color="?(?:info|comment|warning)"?>(.*?)</font>', re.S)
_LINK = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")


def plain_markdown(text: str) -> str:
    """WeCom's markdown subset as a terminal shows it: colours, bold and code marks dropped."""
    text = _FONT.sub(r"\1", text)
    text = _LINK.sub(r"\1 (\2)", text)
    text = text.replace("**", "").replace("`", "")
    return "\n".join(re.sub(r"^(#{1,6}|>) ?", "", line) for line in text.splitlines())


Button = tuple[str, str, str]  # (label, task_id, key)


def render_entry(entry: dict[str, Any]) -> tuple[list[str], list[Button]]:
    """One chat-log entry as terminal lines, and the buttons it offers (cards only)."""
    if entry.get("dir") == "update":
        button = entry.get("button") or {}
        label = button.get("replace_name") or "已更新"
        return [f"{INDENT}(卡片已更新：{label})"], []
    kind = entry.get("msgtype") or entry.get("kind")
    payload: dict[str, Any] = entry.get("payload") or {}
    if kind == "template_card":
        lines = [f"【{(payload.get('main_title') or {}).get('title', '')}】"]
        if payload.get("sub_title_text"):
            lines.append(str(payload["sub_title_text"]))
        lines += [
            f"{row.get('keyname', '')}：{row.get('value', '')}"
            for row in payload.get("horizontal_content_list") or []
        ]
        task_id = str(payload.get("task_id", ""))
        buttons = [
            (str(b.get("text", "")), task_id, str(b.get("key", "")))
            for b in payload.get("button_list") or []
        ]
        if buttons:
            lines.append(
                "  ".join(f"[{i} {label}]" for i, (label, _, _) in enumerate(buttons, 1))
                + "   (/tap 序号)"
            )
        return _prefixed(lines), buttons
    if kind == "markdown":
        return _prefixed(plain_markdown(str(entry.get("content") or "")).splitlines()), []
    if kind == "text":
        return _prefixed(str(entry.get("content") or "").splitlines()), []
    if kind == "image":
        return _prefixed(["[图片]"]), []
    return _prefixed([str(entry.get("text") or f"[{kind}]")]), []


def _prefixed(lines: list[str]) -> list[str]:
    lines = lines or [""]
    return [BOT + lines[0], *(INDENT + line for line in lines[1:])]


def _width(char: str) -> int:
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


class SimApi:
    """The simulator's control API, as the chat page uses it."""

    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base = base.rstrip("/")
        self.http = http

    async def _get(self, path: str, **params: str) -> Any:
        async with self.http.get(f"{self.base}{path}", params=params) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with self.http.post(f"{self.base}{path}", json=body) as resp:
            return resp.status, await resp.json(content_type=None)

    async def people(self) -> list[dict[str, Any]]:
        return list((await self._get("/sim/people"))["people"])

    async def history(self, user: str, after: int) -> dict[str, Any]:
        return dict(await self._get("/sim/history", user=user, after=str(after)))

    async def say(self, user: str, text: str) -> int:
        status, body = await self._post("/sim/say", {"from": user, "text": text})
        return int(body.get("status", status)) if status == 200 else status

    async def tap(self, user: str, task_id: str, key: str) -> int:
        status, body = await self._post(
            "/sim/click", {"from": user, "task_id": task_id, "key": key}
        )
        return int(body.get("status", status)) if status == 200 else status

    async def settle(self) -> None:
        await self._post("/sim/settle", {})

    async def move_clock(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, answer = await self._post("/sim/clock", body)
        return status, dict(answer)


def parse_clock(argument: str) -> dict[str, Any] | None:
    """`18:30`, `09:00 明天`/`tomorrow 09:00`, `+30` (minutes) -> the /sim/clock body."""
    words = argument.replace("明天", " tomorrow ").replace("今天", " today ").split()
    if len(words) == 1 and re.fullmatch(r"\+\d{1,5}", words[0]):
        return {"minutes": int(words[0][1:])}
    times = [w for w in words if re.fullmatch(r"\d{1,2}:\d{2}", w)]
    days = [w for w in words if w in ("tomorrow", "today")]
    if len(times) != 1 or len(words) != len(times) + len(days):
        return None
    hour, minute = times[0].split(":")
    return {"to": f"{int(hour):02d}:{minute}", "day": days[0] if days else "next"}


class _Input:
    """Standard input as lines of text, read in a thread so the event loop never blocks."""

    def __init__(self, fd: int, out: TextIO, prompt: Callable[[], str]) -> None:
        self.fd = fd
        self.out = out
        self.prompt = prompt
        self.tty = os.isatty(fd)
        self.buffer = ""  # what is typed so far (terminal mode)
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._saved: list[Any] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()

        def pump() -> None:
            while True:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                loop.call_soon_threadsafe(self._queue.put_nowait, chunk or None)
                if not chunk:
                    return

        if self.tty:
            import termios

            self._saved = termios.tcgetattr(self.fd)
            mode = termios.tcgetattr(self.fd)
            mode[3] &= ~(termios.ICANON | termios.ECHO)  # no 4 KB line cap, our own echo
            mode[6][termios.VMIN], mode[6][termios.VTIME] = 1, 0
            termios.tcsetattr(self.fd, termios.TCSADRAIN, mode)
        threading.Thread(target=pump, name="wecrm-chat-stdin", daemon=True).start()

    def restore(self) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    async def lines(self) -> AsyncIterator[str]:
        if self.tty:
            async for line in self._typed():
                yield line
            return
        pending = b""
        while (chunk := await self._queue.get()) is not None:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                yield raw.rstrip(b"\r").decode("utf-8", errors="replace")
        if pending:
            yield pending.decode("utf-8", errors="replace")

    async def _typed(self) -> AsyncIterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        escape = False
        self.redraw()
        while (chunk := await self._queue.get()) is not None:
            for char in decoder.decode(chunk):
                if escape:  # skip an arrow key's CSI sequence: ESC [ ... final byte
                    escape = not ("@" <= char <= "~" and char != "[")
                    continue
                if char == "\x1b":
                    escape = True
                elif char in "\r\n":
                    line, self.buffer = self.buffer, ""
                    self.out.write("\n")
                    yield line
                    self.redraw()
                elif char in "\x7f\b":
                    if self.buffer:
                        width = _width(self.buffer[-1])
                        self.buffer = self.buffer[:-1]
                        self.out.write("\b" * width + " " * width + "\b" * width)
                        self.out.flush()
                elif char == "\x15":  # Ctrl-U: clear the line
                    self.buffer = ""
                    self.redraw()
                elif char == "\x04" and not self.buffer:  # Ctrl-D on an empty line
                    return
                elif char == "\t" or char.isprintable():
                    self.buffer += char
                    self.out.write(char)
                    self.out.flush()
        if self.buffer:
            yield self.buffer

    def redraw(self) -> None:
        if self.tty:
            self.out.write("\r\x1b[K" + self.prompt() + self.buffer)
            self.out.flush()

    def show(self, lines: list[str]) -> None:
        """Print above the line being typed, then put the prompt and the typing back."""
        if self.tty:
            self.out.write("\r\x1b[K")
        self.out.write("".join(line + "\n" for line in lines))
        self.redraw()
        self.out.flush()


class TerminalChat:
    """One person's conversation; `/as` switches person, `/tap n` presses a card's button."""

    def __init__(
        self, sim_url: str, user: str, *, out: TextIO | None = None, fd: int | None = None
    ) -> None:
        self.sim_url = sim_url
        self.user = user
        self.out = out or sys.stdout
        self.fd = sys.stdin.fileno() if fd is None else fd
        self.last = 0
        self.buttons: list[Button] = []
        self._lock = asyncio.Lock()
        self.people: dict[str, dict[str, Any]] = {}
        self.input = _Input(self.fd, self.out, lambda: f"{self.user}> ")

    async def run(self) -> int:
        """Chat until /quit or the end of input; 2 if the starting person is unknown."""
        async with aiohttp.ClientSession() as http:
            api = SimApi(self.sim_url, http)
            self.people = {p["userid"]: p for p in await api.people()}
            if self.user not in self.people:
                self._say(self._unknown(self.user))
                return 2
            self.last = int((await api.history(self.user, 0))["last"])
            self._say([f"你现在是 {self._who(self.user)}。{HELP}"])
            poller = asyncio.create_task(self._poll(api))
            self.input.start()
            try:
                async for line in self.input.lines():
                    if not await self._handle(api, line.strip()):
                        break
            finally:
                self.input.restore()
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
        return 0

    def _say(self, lines: list[str]) -> None:
        self.input.show(lines)

    def _who(self, userid: str) -> str:
        p = self.people[userid]
        return f"{p['name']}（{userid}，{p.get('position') or p.get('role') or ''}）"

    def _unknown(self, userid: str) -> list[str]:
        rows = [f"没有这个人：{userid[:40]}。可选的演示成员："]
        rows += [f"  {u:10} {self._who(u)}" for u in self.people]
        return rows

    async def _poll(self, api: SimApi) -> None:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                await self._flush(api)
            await asyncio.sleep(POLL_SECONDS)

    async def _flush(self, api: SimApi) -> None:
        """Show every entry for the current person not shown yet (the poller and commands)."""
        async with self._lock:
            user = self.user
            answer = await api.history(user, self.last)
            if user != self.user:
                return
            for entry in answer["entries"]:
                self.last = max(self.last, int(entry["id"]))
                if entry.get("dir") == "in":
                    continue  # what this person typed or tapped (here or on the page)
                lines, buttons = render_entry(entry)
                if buttons:
                    self.buttons = buttons
                self._say(lines)

    async def _handle(self, api: SimApi, text: str) -> bool:
        if not text:
            return True
        command, _, argument = text.partition(" ")
        argument = argument.strip()
        if command in ("/quit", "/exit"):
            return False
        if command in ("/help", "/?"):
            self._say([HELP])
        elif command == "/who":
            self._say([f"  {u:10} {self._who(u)}" for u in self.people])
        elif command == "/as":
            await self._switch(api, argument)
        elif command == "/tap":
            await self._tap(api, argument)
        elif command == "/clock":
            await self._clock(api, argument)
        else:
            status = await api.say(self.user, text)
            if status != 200:
                self._say([f"{INDENT}[回调被拒绝: HTTP {status}]"])
            await api.settle()
        await self._flush(api)
        return True

    async def _switch(self, api: SimApi, userid: str) -> None:
        if userid not in self.people:
            self._say(self._unknown(userid))
            return
        async with self._lock:
            self.user = userid
            self.buttons = []
            self.last = int((await api.history(userid, 0))["last"])
        self._say([f"你现在是 {self._who(userid)}"])

    async def _tap(self, api: SimApi, argument: str) -> None:
        if not self.buttons:
            self._say([f"{INDENT}最近的卡片没有按钮可按"])
            return
        if not argument.isdigit() or not 1 <= int(argument) <= len(self.buttons):
            self._say([f"{INDENT}请输入 /tap 1 到 /tap {len(self.buttons)}"])
            return
        label, task_id, key = self.buttons[int(argument) - 1]
        self._say([f"{INDENT}(按下「{label}」)"])
        status = await api.tap(self.user, task_id, key)
        if status != 200:
            self._say([f"{INDENT}[按钮没有送达: HTTP {status}]"])
        await api.settle()

    async def _clock(self, api: SimApi, argument: str) -> None:
        body = parse_clock(argument)
        if body is None:
            self._say([f"{INDENT}用法：/clock 18:30、/clock 09:00 明天、/clock +30（分钟）"])
            return
        status, answer = await api.move_clock(body)
        if status != 200:
            self._say([f"{INDENT}时间没有移动：{answer.get('error', status)}"])
            return
        self._say([f"{INDENT}(时间已移到 {answer['local']})"])
        await api.settle()


def chat(
    as_user: Annotated[str, typer.Option("--as", help="The WeCom userid to chat as.")],
    sim: Annotated[
        str, typer.Option(help="The demo's simulator URL (printed by `wecrm demo`).")
    ] = DEFAULT_SIM,
) -> None:
    """Chat with the running demo bot in the terminal (standard input may be a script)."""
    try:
        code = asyncio.run(TerminalChat(sim, as_user).run())
    except aiohttp.ClientError as exc:
        typer.echo(f"cannot reach the demo's simulator at {sim} ({exc}); is `wecrm demo` running?")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)
