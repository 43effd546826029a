"""A server process for the ack benchmark: the real callback endpoint, or a bare aiohttp one."""

from __future__ import annotations

import argparse
import asyncio
import logging

from aiohttp import web

from bench.common import BENCH_CREDS
from bot.app import create_app
from bot.settings import load_settings


async def bare_handler(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=200, body=b"")


def bare_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/wecom/callback", bare_handler)
    return app


def bot_app(database_url: str, redis_url: str | None) -> web.Application:
    settings = load_settings(
        **BENCH_CREDS,
        WECOM_API_BASE="http://127.0.0.1:9/cgi-bin/",
        WECRM_DATABASE_URL=database_url,
        WECRM_REDIS_URL=redis_url or "",
    )
    return create_app(settings, role="web", background=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["bare", "bot"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", default="")
    parser.add_argument("--redis", default="")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = bare_app() if args.mode == "bare" else bot_app(args.db, args.redis or None)
    asyncio.run(_serve(app, args.port))


async def _serve(app: web.Application, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    main()
