"""The entry point the bot calls: one Dispatcher over every audience's router."""

from __future__ import annotations

from functools import lru_cache

from handlers import (
    help as help_commands,
)
from handlers import (
    sales_customers,
    sales_deals,
    sales_followup,
    sales_lookup,
    sales_todo,
)
from handlers.context import HandlerContext
from handlers.inbound import Inbound
from handlers.replies import Reply
from handlers.routing import Dispatcher


@lru_cache(maxsize=1)
def dispatcher() -> Dispatcher:
    # Order matters for plain text: a bare number answers a choice before anything else.
    routers = [
        help_commands.router,
        sales_lookup.router,
        sales_followup.router,
        sales_deals.router,
        sales_customers.router,
        sales_todo.router,
    ]
    return Dispatcher(routers, unknown=help_commands.unknown_text)


async def dispatch(message: Inbound, ctx: HandlerContext) -> list[Reply]:
    """Handle one message; the caller owns the transaction and turns replies into outbox rows."""
    return await dispatcher().dispatch(message, ctx)
