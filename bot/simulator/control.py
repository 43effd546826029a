"""The demo's control API beside the WeCom endpoints: the chat page, its live stream, the
people to choose from, the movable clock and "wait until the bot has answered"."""

from __future__ import annotations

import asyncio
import json
from datetime import time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from bot.simulator.clock import MovableClock, next_local

if TYPE_CHECKING:
    from bot.simulator.server import WeComSimulator

__all__ = ["WEB_DIR", "add_control_routes"]

WEB_DIR: Final = Path(__file__).parent / "web"
KEEPALIVE: Final = 15.0  # seconds between SSE comments, so proxies keep the stream open
SETTLE_TIMEOUT: Final = 20.0
WEEKDAYS: Final = "一二三四五六日"
MEDIA_TYPES: Final = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def add_control_routes(app: web.Application, sim: WeComSimulator) -> None:
    """Register the page and /sim/* routes that read and drive `sim`."""

    async def index(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def people(_request: web.Request) -> web.Response:
        rows = []
        for member in sim.directory.members():
            departments = [
                d.name for d in map(sim.directory.department, member.department) if d is not None
            ]
            rows.append(
                {
                    "userid": member.userid,
                    "name": member.name,
                    "position": member.position,
                    "departments": departments,
                    "role": sim.roles.get(member.userid, ""),
                }
            )
        return web.json_response({"people": rows}, dumps=_dumps)

    def _user_after(request: web.Request) -> tuple[str, int]:
        user = request.query.get("user", "")
        raw = request.query.get("after") or request.headers.get("Last-Event-ID") or "0"
        if not user or not raw.isdigit():
            raise web.HTTPBadRequest(text="needs user and a numeric after")
        return user, int(raw)

    async def history(request: web.Request) -> web.Response:
        user, after = _user_after(request)
        entries = [e.as_json() for e in sim.log.entries(user, after)]
        last = entries[-1]["id"] if entries else max(after, 0)
        return web.json_response({"entries": entries, "last": last}, dumps=_dumps)

    async def events(request: web.Request) -> web.StreamResponse:
        """Server-sent events: every new entry of one member, resumable by Last-Event-ID."""
        user, after = _user_after(request)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        try:
            while not sim.log.closed:
                for entry in sim.log.entries(user, after):
                    body = f"id: {entry.id}\ndata: {_dumps(entry.as_json())}\n\n"
                    await response.write(body.encode())
                    after = entry.id
                await response.write(b": keep-alive\n\n")
                await sim.log.wait(KEEPALIVE)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    def _clock_view() -> dict[str, Any]:
        local = sim.clock.now().astimezone(sim.tz)
        return {
            "now": local.isoformat(),
            "local": local.strftime("%Y-%m-%d %H:%M") + f" 周{WEEKDAYS[local.weekday()]}",
            "movable": isinstance(sim.clock, MovableClock),
        }

    async def clock_get(_request: web.Request) -> web.Response:
        return web.json_response(_clock_view(), dumps=_dumps)

    async def clock_move(request: web.Request) -> web.Response:
        """{"to": "09:00", "day": "tomorrow"|"today"|"next"} or {"minutes": 90}."""
        if not isinstance(sim.clock, MovableClock):
            return web.json_response({"error": "this simulator's clock cannot move"}, status=409)
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="body must be JSON") from None
        now = sim.clock.now()
        try:
            if isinstance(body, dict) and "minutes" in body:
                target = now + timedelta(minutes=float(body["minutes"]))
            elif isinstance(body, dict) and "to" in body:
                at = time.fromisoformat(str(body["to"]))
                target = next_local(now, at, sim.tz, day=str(body.get("day", "next")))
            else:
                raise ValueError("give minutes, or to (HH:MM) with day")
            sim.clock.move_to(target)
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        for listener in sim.clock_listeners:
            await listener()
        return web.json_response(_clock_view(), dumps=_dumps)

    async def settle(_request: web.Request) -> web.Response:
        """Answer once the bot has handled what it received and sent what it owed."""
        if sim.settle_hook is None:
            return web.json_response({"settled": False, "reason": "no bot attached"}, status=409)
        try:
            async with asyncio.timeout(SETTLE_TIMEOUT):
                await sim.settle_hook()
        except TimeoutError:
            return web.json_response({"settled": False, "reason": "timeout"}, status=504)
        return web.json_response({"settled": True, "last": sim.log.last_id})

    async def media(request: web.Request) -> web.Response:
        found = sim.media.get(request.match_info["media_id"])
        if found is None:
            raise web.HTTPNotFound()
        kind = next(
            (t for magic, t in MEDIA_TYPES.items() if found.content.startswith(magic)),
            "application/octet-stream",
        )
        return web.Response(body=found.content, content_type=kind)

    app.router.add_get("/", index)
    app.router.add_static("/static/", WEB_DIR)
    app.router.add_get("/sim/people", people)
    app.router.add_get("/sim/history", history)
    app.router.add_get("/sim/events", events)
    app.router.add_get("/sim/clock", clock_get)
    app.router.add_post("/sim/clock", clock_move)
    app.router.add_post("/sim/settle", settle)
    app.router.add_get("/sim/media/{media_id}", media)
