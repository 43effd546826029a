"""The entry point the bot calls: one Dispatcher over every audience's router."""

from __future__ import annotations

from functools import lru_cache

from handlers import help as help_commands
from handlers.kit.context import HandlerContext
from handlers.kit.inbound import Inbound
from handlers.kit.replies import Reply
from handlers.kit.routing import Dispatcher
from handlers.sales import customers as sales_customers
from handlers.sales import deals as sales_deals
from handlers.sales import followup as sales_followup
from handlers.sales import lookup as sales_lookup
from handlers.sales import reminders as sales_reminders
from handlers.sales import todo as sales_todo


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
        sales_reminders.router,  # jobs only: the reminder poll
    ]
    return Dispatcher(routers, unknown=help_commands.unknown_text)


async def dispatch(message: Inbound, ctx: HandlerContext) -> list[Reply]:
    """Handle one message; the caller owns the transaction and turns replies into outbox rows."""
    return await dispatcher().dispatch(message, ctx)
