"""The entry point the bot calls: one Dispatcher over every audience's router.

Adding an audience is one line here. Order does not matter: command words are unique, and
plain text goes to the newest question the person was asked (see handlers/kit/routing.py).
"""

from __future__ import annotations

from functools import lru_cache

from handlers import help as help_commands
from handlers.common import customer_resolution
from handlers.kit.context import MessageContext
from handlers.kit.inbound import Inbound
from handlers.kit.replies import Reply
from handlers.kit.routing import Dispatcher, Router
from handlers.manager import ROUTERS as MANAGER
from handlers.sales import ROUTERS as SALES
from handlers.service import ROUTERS as SERVICE


def routers() -> list[Router]:
    return [help_commands.router, customer_resolution.router, *SALES, *SERVICE, *MANAGER]


@lru_cache(maxsize=1)
def dispatcher() -> Dispatcher:
    return Dispatcher(routers())


async def dispatch(message: Inbound, ctx: MessageContext) -> list[Reply]:
    """Handle one message; the caller owns the transaction and turns replies into outbox rows."""
    return await dispatcher().dispatch(message, ctx)
