"""The ack baseline: a bare aiohttp endpoint that reads the body and answers 200, nothing else.

Started by bench.deploy exactly as `wecrm serve` is (own process, loopback, ephemeral port), so
the ratio between the two is the cost of the bot's ack path.
"""

from __future__ import annotations

import argparse

from aiohttp import web


async def bare_handler(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=200, body=b"")


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def bare_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/wecom/callback", bare_handler)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["bare"], default="bare")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(bare_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
