"""All tables; importing this module registers every model on `Base.metadata`."""

from crm_store.base import Base
from crm_store.models.messaging import InboxMessage, OutboxMessage

__all__ = ["Base", "InboxMessage", "OutboxMessage"]
