"""The media loop: files forwarded into tickets are fetched from WeCom and kept on disk.

WeCom keeps a received file for 3 days (PROTOCOL.md §3), so a ticket's pictures and files are
downloaded with media/get soon after it opens and written under the media folder
(`WECRM_MEDIA_DIR`) as `<ticket id>/<row id>-<file name>`. A failure that may pass (network,
busy, quota) is retried later with a growing delay; 40007 or three days gone marks the file
expired. Runs with the worker (role all|worker); claims are leased, so several workers share.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import os
import re
import tempfile
from pathlib import Path
from typing import Final

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cache import Notifier
from bot.wecom.client import DownloadedMedia, WeComClient, WeComError
from crm_store import media
from crm_store.clock import Clock
from crm_store.media import MediaJob

log = logging.getLogger(__name__)

MEDIA_CHANNEL: Final = "media"
EXPIRED_ERRCODE: Final = 40007  # invalid media_id: unknown, or older than its 3 days
_UNSAFE = re.compile(r"[\x00-\x1f/\\:*?\"<>|]+")
_NAME_MAX = 120
_EXTENSIONS = {"image": ".jpg", "voice": ".amr", "video": ".mp4", "file": ""}


def safe_name(job: MediaJob, downloaded: DownloadedMedia) -> str:
    """A file name that stays inside its folder: no separators, no dot-names, bounded length."""
    name = job.file_name or downloaded.file_name or ""
    name = _UNSAFE.sub("_", name).strip(" .")
    if not name:
        extension = mimetypes.guess_extension(downloaded.content_type.split(";")[0].strip())
        name = f"{job.kind}{extension or _EXTENSIONS.get(job.kind, '')}"
    stem, suffix = os.path.splitext(name)
    if len(name) > _NAME_MAX:
        name = stem[: _NAME_MAX - len(suffix[:16])] + suffix[:16]
    return f"{job.id}-{name}"


def write_atomically(target: Path, content: bytes) -> None:
    """Write beside the target and rename: a reader never sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class MediaFetcher:
    """Claims due fetches, downloads each, records the outcome in its own transaction."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        client: WeComClient,
        clock: Clock,
        folder: Path,
        notifier: Notifier,
        poll_seconds: float = 10.0,
        batch: int = 10,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.folder = folder
        self.notifier = notifier
        self.poll_seconds = poll_seconds
        self.batch = batch

    async def process_batch(self) -> int:
        """Fetch what is due now; returns how many fetches were tried."""
        async with self.sessions.begin() as session:
            jobs = await media.claim_due(session, now=self.clock.now(), limit=self.batch)
        for job in jobs:
            await self._fetch(job)
        return len(jobs)

    async def _fetch(self, job: MediaJob) -> None:
        now = self.clock.now()
        if job.expired(now):
            async with self.sessions.begin() as session:
                await media.mark_expired(session, job=job, reason="older than 3 days", now=now)
            return
        try:
            downloaded = await self.client.download_media(job.media_id)
            relative = Path(str(job.ticket_id)) / safe_name(job, downloaded)
            await asyncio.to_thread(write_atomically, self.folder / relative, downloaded.content)
        except WeComError as exc:
            await self._failed(job, exc, expired=exc.errcode == EXPIRED_ERRCODE)
            return
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            await self._failed(job, exc, expired=False)
            return
        async with self.sessions.begin() as session:
            await media.mark_stored(
                session,
                job=job,
                path=relative.as_posix(),
                size=len(downloaded.content),
                now=self.clock.now(),
            )

    async def _failed(self, job: MediaJob, exc: Exception, *, expired: bool) -> None:
        now = self.clock.now()
        reason = str(exc) if isinstance(exc, WeComError) else type(exc).__name__
        async with self.sessions.begin() as session:
            if expired:
                await media.mark_expired(session, job=job, reason=reason, now=now)
                log.info("media of ticket %s expired before it was fetched", job.ticket_id)
                return
            at = await media.retry_later(session, job=job, error=reason, now=now)
        log.warning(
            "media of ticket %s not fetched (%s); trying again at %s", job.ticket_id, reason, at
        )

    async def run_until_idle(self, limit: int = 10_000) -> int:
        """Fetch everything due now (tests, burst mode); future retries are left for later."""
        tried = 0
        while tried < limit:
            handled = await self.process_batch()
            if handled == 0:
                break
            tried += handled
        return tried

    async def run_forever(self) -> None:
        while True:
            try:
                while await self.process_batch():
                    pass
            except Exception:  # one bad pass must not stop the files being kept
                log.exception("media loop error")
            await self.notifier.wait(MEDIA_CHANNEL, self.poll_seconds)
