"""Contacts of a customer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store import audit
from crm_store.customers import normalize_phone
from crm_store.models import Contact


async def add_contact(
    session: AsyncSession,
    *,
    actor_id: str,
    customer_id: int,
    name: str,
    now: datetime,
    phone: str | None = None,
    title: str | None = None,
    source_key: str | None = None,
) -> Contact:
    contact = Contact(
        customer_id=customer_id,
        name=name[:100],
        phone=normalize_phone(phone),
        title=title,
        created_at=now,
    )
    session.add(contact)
    await session.flush()
    await audit.record(
        session,
        actor_id=actor_id,
        action="contact.create",
        entity="contacts",
        entity_id=str(contact.id),
        before=None,
        after={"customer_id": customer_id, "name": contact.name, "phone": contact.phone},
        source_key=source_key,
        now=now,
    )
    return contact


async def set_primary_name(
    session: AsyncSession,
    *,
    actor_id: str,
    customer_id: int,
    name: str,
    now: datetime,
    source_key: str | None = None,
) -> tuple[str | None, str]:
    """Rename the customer's first contact (or add one); (before, after), audited."""
    contact = await session.scalar(
        select(Contact).where(Contact.customer_id == customer_id).order_by(Contact.id).limit(1)
    )
    if contact is None:
        added = await add_contact(
            session,
            actor_id=actor_id,
            customer_id=customer_id,
            name=name,
            now=now,
            source_key=source_key,
        )
        return None, added.name
    old = contact.name
    contact.name = name[:100]
    await session.flush()
    await audit.record(
        session,
        actor_id=actor_id,
        action="contact.rename",
        entity="contacts",
        entity_id=str(contact.id),
        before={"name": old},
        after={"name": contact.name},
        source_key=source_key,
        now=now,
    )
    return old, contact.name
