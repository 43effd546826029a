"""Managers and the day's rhythm: digests pulled (日报 周报 团队 业绩) and pushed on schedule."""

from __future__ import annotations

from handlers.manager import commands, jobs

ROUTERS = (commands.router,)
__all__ = ["ROUTERS", "jobs"]
