"""What the worker needs to know about meeting newcomers, shared with the directory code."""

from __future__ import annotations


class PersonUnreachable(Exception):
    """WeCom could not say who a newcomer is right now (timeout, busy): ask again later."""
