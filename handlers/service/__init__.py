"""Customer service in chat: tickets from conversations, worked to closed, with SLAs."""

from __future__ import annotations

from handlers.service import capture, tickets, work

ROUTERS = (tickets.router, work.router, capture.router)
