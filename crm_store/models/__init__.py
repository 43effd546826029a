"""All tables; importing this module registers every model on `Base.metadata`."""

from crm_store.base import Base
from crm_store.models.audit import AuditEntry
from crm_store.models.chat import ConversationState, LearnedPick
from crm_store.models.customer import (
    Contact,
    Customer,
    CustomerOwnerHistory,
    CustomerShare,
    Tag,
)
from crm_store.models.jobs import JobRun
from crm_store.models.messaging import InboxMessage, OutboxMessage
from crm_store.models.org import Department, Role, ScopeLevel, Staff, StaffDepartment
from crm_store.models.sales import (
    Followup,
    Lead,
    Opportunity,
    OpportunityStageHistory,
    Task,
)
from crm_store.models.service import MediaFile, Ticket, TicketEvent
from crm_store.models.settings import CrmSetting

__all__ = [
    "AuditEntry",
    "Base",
    "Contact",
    "ConversationState",
    "CrmSetting",
    "Customer",
    "CustomerOwnerHistory",
    "CustomerShare",
    "Department",
    "Followup",
    "InboxMessage",
    "JobRun",
    "LearnedPick",
    "MediaFile",
    "Lead",
    "Opportunity",
    "OpportunityStageHistory",
    "OutboxMessage",
    "Role",
    "ScopeLevel",
    "Staff",
    "StaffDepartment",
    "Tag",
    "Task",
    "Ticket",
    "TicketEvent",
]
