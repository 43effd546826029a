"""Sales reps in chat: lookups, follow-ups, deals, new customers, to-dos."""

from __future__ import annotations

from handlers.sales import (
    customers,
    deals,
    edit,
    followup,
    lookup,
    reminders,
    sharing,
    todo,
    undo,
)

ROUTERS = (
    lookup.router,
    followup.router,
    deals.router,
    customers.router,
    sharing.router,
    edit.router,
    todo.router,
    reminders.router,
    undo.router,
)
