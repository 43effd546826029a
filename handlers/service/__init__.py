"""Customer service in chat: tickets from conversations, worked to closed, with SLAs."""

from __future__ import annotations

from handlers.service import capture, jobs, tickets, work

ROUTERS = (tickets.router, work.router, capture.router)
__all__ = ["ROUTERS", "jobs"]  # importing jobs declares the SLA job on the tickets router
