"""Start the HTTP server as `wecrm serve` does: server-side limits on slow and idle clients.

aiohttp's keep-alive timer also runs from the moment a connection opens, so it closes a client
that never finishes its request line and headers; the callback bounds the body read itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from bot.gateway.batcher import ACK_DB_TIMEOUT, BATCH_WINDOW, MAX_BATCH
from bot.gateway.callback import BODY_TIMEOUT


@dataclass(frozen=True)
class ServerLimits:
    """How long the server waits for clients, and how the ack path batches its inserts."""

    keepalive_timeout: float = 15.0  # idle connection (or unfinished headers) -> closed
    body_timeout: float = BODY_TIMEOUT  # whole body -> 408 and the connection closed
    lingering_time: float = 1.0  # reading what a refused client still sends, before closing
    shutdown_timeout: float = 10.0  # in-flight requests finish on SIGTERM
    ack_db_timeout: float = ACK_DB_TIMEOUT
    batch_window: float = BATCH_WINDOW
    batch_size: int = MAX_BATCH


async def start_server(
    app: web.Application, *, host: str, port: int, limits: ServerLimits
) -> web.AppRunner:
    """Set the app up and listen; the caller owns `runner.cleanup()`. Port 0 picks a free one."""
    runner = web.AppRunner(
        app,
        shutdown_timeout=limits.shutdown_timeout,
        keepalive_timeout=limits.keepalive_timeout,
        lingering_time=limits.lingering_time,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def bound_url(runner: web.AppRunner) -> str:
    """Where the first listening socket is, as http://host:port."""
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


async def serve_forever(
    app: web.Application,
    *,
    host: str,
    port: int,
    limits: ServerLimits,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then finish in-flight requests and clean up."""
    runner = await start_server(app, host=host, port=port, limits=limits)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on every platform
            loop.add_signal_handler(signum, stop.set)
    try:
        if on_ready is not None:
            on_ready(bound_url(runner))
        await stop.wait()
    finally:
        await runner.cleanup()
