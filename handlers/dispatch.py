"""The entry point the bot calls: one Dispatcher over every audience's router."""

from __future__ import annotations

from functools import lru_cache

from handlers import help as help_commands
from handlers.context import HandlerContext
from handlers.inbound import Inbound
from handlers.replies import Reply
from handlers.routing import Dispatcher


@lru_cache(maxsize=1)
def dispatcher() -> Dispatcher:
    routers = [help_commands.router]
    return Dispatcher(routers, unknown=help_commands.unknown_text)


async def dispatch(message: Inbound, ctx: HandlerContext) -> list[Reply]:
    """Handle one message; the caller owns the transaction and turns replies into outbox rows."""
    return await dispatcher().dispatch(message, ctx)
