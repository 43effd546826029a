"""Wake-up channel names shared by the loops that notify each other (see bot.cache.Notifier)."""

from __future__ import annotations

from typing import Final

INBOX_CHANNEL: Final = "inbox"  # a callback stored a message: workers, wake up
OUTBOX_CHANNEL: Final = "outbox"  # a transaction owes WeCom a message: relays, wake up
