"""`wecrm serve` with a benchmark probe: lookup timings and event-loop lateness, in the bot.

    python -m bench.probe serve --role all --port 8080

The bot runs unchanged; the probe wraps CustomerSearch.search with a timer, ticks every
millisecond in the bot's own event loop to record its worst lateness, and answers
GET /bench/probe (figures since the last reset) and POST /bench/probe/reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

import bot.app
from crm_store.search import CustomerSearch

TICK = 0.001


@dataclass
class Probe:
    lookups: list[float] = field(default_factory=list)
    worst_stall: float = 0.0
    stalls_over_5ms: int = 0
    ticks: int = 0

    def reset(self) -> None:
        self.lookups.clear()
        self.worst_stall = 0.0
        self.stalls_over_5ms = 0
        self.ticks = 0

    def report(self) -> dict[str, Any]:
        return {
            "lookups": list(self.lookups),
            "worst_stall_ms": self.worst_stall * 1000,
            "stalls_over_5ms": self.stalls_over_5ms,
            "ticks": self.ticks,
        }


PROBE = Probe()
_original_search = CustomerSearch.search


async def _timed_search(self: CustomerSearch, *args: Any, **kwargs: Any) -> Any:
    started = time.perf_counter()
    try:
        return await _original_search(self, *args, **kwargs)
    finally:
        PROBE.lookups.append(time.perf_counter() - started)


async def _ticker() -> None:
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(TICK)
        late = loop.time() - before - TICK
        PROBE.ticks += 1
        PROBE.worst_stall = max(PROBE.worst_stall, late)
        PROBE.stalls_over_5ms += late > 0.005


async def _probe_ctx(_app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_ticker())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _get(_request: web.Request) -> web.Response:
    return web.json_response(PROBE.report())


async def _reset(_request: web.Request) -> web.Response:
    PROBE.reset()
    return web.json_response({"status": "reset"})


_original_create_app = bot.app.create_app


def _create_app(*args: Any, **kwargs: Any) -> web.Application:
    app = _original_create_app(*args, **kwargs)
    app.cleanup_ctx.append(_probe_ctx)
    app.router.add_get("/bench/probe", _get)
    app.router.add_post("/bench/probe/reset", _reset)
    return app


def main() -> None:
    CustomerSearch.search = _timed_search  # type: ignore[method-assign]
    bot.app.create_app = _create_app
    from bot.cli.main import main as wecrm_main

    sys.argv = ["wecrm", *sys.argv[1:]]
    wecrm_main()


if __name__ == "__main__":
    main()
