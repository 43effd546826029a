"""The files forwarded into tickets: a fetch queue with leases, and where each file landed.

Opening a ticket queues its media attachments; a runtime loop claims due rows (a compare-and-set
lease, so any number of workers fetch each file once in the normal case), downloads them from
WeCom and reports back here: stored (with the path, also written on the ticket's attachment
entry), retry later with a growing delay, or expired (WeCom keeps media for 3 days).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models.service import MediaFile, MediaState, Ticket

LEASE = timedelta(minutes=5)  # a fetch that takes longer is presumed dead and tried again
VALIDITY = timedelta(days=3)  # PROTOCOL.md §3: a received media id is valid for 3 days
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(hours=1)
_MERGE_HOPS = 10
_KEY_MAX = 128
_ERROR_MAX = 200


@dataclass(frozen=True)
class MediaJob:
    """One claimed fetch: what to ask WeCom for and what the file is called."""

    id: int
    ticket_id: int
    message_key: str
    media_id: str
    kind: str
    file_name: str | None
    received_at: datetime
    attempts: int

    def expired(self, now: datetime) -> bool:
        return now - self.received_at >= VALIDITY


def _received(attachment: dict[str, Any], fallback: datetime) -> datetime:
    try:
        return datetime.fromisoformat(str(attachment["at"]))
    except (KeyError, ValueError):
        return fallback


def enqueue(
    session: AsyncSession, *, ticket: Ticket, attachments: Iterable[dict[str, Any]], now: datetime
) -> int:
    """Queue every attachment that has a media id (the ticket is flushed: it has its id)."""
    added = 0
    for attachment in attachments:
        media_id = attachment.get("media_id")
        if not media_id:
            continue
        session.add(
            MediaFile(
                ticket_id=ticket.id,
                message_key=str(attachment.get("message_key", ""))[:_KEY_MAX],
                media_id=str(media_id),
                kind=str(attachment.get("kind", "file")),
                file_name=attachment.get("file_name"),
                received_at=_received(attachment, now),
                state=MediaState.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        added += 1
    return added


async def claim_due(session: AsyncSession, *, now: datetime, limit: int = 20) -> list[MediaJob]:
    """Due fetches, each leased to the caller; a row another worker took meanwhile is skipped."""
    rows = await session.scalars(
        select(MediaFile)
        .where(MediaFile.state == MediaState.PENDING.value, MediaFile.next_attempt_at <= now)
        .order_by(MediaFile.next_attempt_at, MediaFile.id)
        .limit(limit)
    )
    claimed: list[MediaJob] = []
    for row in list(rows):
        result = cast(
            CursorResult[Any],
            await session.execute(
                update(MediaFile)
                .where(
                    MediaFile.id == row.id,
                    MediaFile.state == MediaState.PENDING.value,
                    MediaFile.next_attempt_at == row.next_attempt_at,
                )
                .values(next_attempt_at=now + LEASE, attempts=MediaFile.attempts + 1)
                .execution_options(synchronize_session=False)
            ),
        )
        if result.rowcount == 1:
            claimed.append(
                MediaJob(
                    id=row.id,
                    ticket_id=row.ticket_id,
                    message_key=row.message_key,
                    media_id=row.media_id,
                    kind=row.kind,
                    file_name=row.file_name,
                    received_at=row.received_at,
                    attempts=row.attempts + 1,
                )
            )
    return claimed


async def _note_on_ticket(
    session: AsyncSession, job: MediaJob, changes: dict[str, Any], now: datetime
) -> None:
    """Write `changes` on the attachment entry of the ticket and of any ticket it merged into."""
    ticket_id: int | None = job.ticket_id
    for _ in range(_MERGE_HOPS):
        if ticket_id is None:
            return
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            return
        entries = list(ticket.attachments or [])
        touched = False
        for index, entry in enumerate(entries):
            if entry.get("message_key") == job.message_key and entry.get("media_id"):
                entries[index] = {**entry, **changes}
                touched = True
        if touched:
            ticket.attachments = entries  # a new list: JSON columns track assignment only
            ticket.updated_at = now
        ticket_id = ticket.merged_into_id


async def _row(session: AsyncSession, job: MediaJob) -> MediaFile:
    row = await session.get(MediaFile, job.id)
    if row is None:
        raise LookupError(f"media file {job.id} is gone")
    return row


async def mark_stored(
    session: AsyncSession, *, job: MediaJob, path: str, size: int, now: datetime
) -> None:
    """The file is on disk at `path` (relative to the media folder)."""
    row = await _row(session, job)
    row.state, row.path, row.size, row.error = MediaState.STORED.value, path, size, None
    row.next_attempt_at, row.updated_at = None, now
    await _note_on_ticket(session, job, {"path": path, "size": size}, now)


async def mark_expired(
    session: AsyncSession, *, job: MediaJob, reason: str, now: datetime
) -> None:
    """WeCom no longer has it: stop trying, and say so on the attachment."""
    row = await _row(session, job)
    row.state, row.error = MediaState.EXPIRED.value, reason[:_ERROR_MAX]
    row.next_attempt_at, row.updated_at = None, now
    await _note_on_ticket(session, job, {"expired": True}, now)


async def retry_later(
    session: AsyncSession, *, job: MediaJob, error: str, now: datetime
) -> datetime:
    """A failure that may pass: try again after 1, 2, 4 … minutes (at most an hour)."""
    row = await _row(session, job)
    delay = min(FIRST_RETRY * (1 << min(max(job.attempts - 1, 0), 10)), MAX_RETRY)
    row.next_attempt_at, row.error, row.updated_at = now + delay, error[:_ERROR_MAX], now
    return now + delay


async def of_ticket(session: AsyncSession, ticket_id: int) -> list[MediaFile]:
    return list(
        await session.scalars(
            select(MediaFile).where(MediaFile.ticket_id == ticket_id).order_by(MediaFile.id)
        )
    )
