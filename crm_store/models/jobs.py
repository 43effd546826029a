"""Scheduled-job runs: one row per job and period, the database's once-only claim."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_store.base import Base, IntPk, UtcDatetime

RUN_DONE = "done"
RUN_SKIPPED = "skipped"  # missed by longer than the job's grace window: recorded, never sent

TRIGGER_SCHEDULE = "schedule"
TRIGGER_CATCH_UP = "catch-up"
TRIGGER_MANUAL = "manual"


class JobRun(Base):
    """A job's period, claimed by the first worker to insert it; the unique key is the truth."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "period"),)

    id: Mapped[IntPk]
    job: Mapped[str] = mapped_column(String(48))
    period: Mapped[UtcDatetime]
    status: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    worker: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[UtcDatetime]
    finished_at: Mapped[datetime | None]
    items: Mapped[int] = mapped_column(Integer, default=0)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    queued: Mapped[int] = mapped_column(Integer, default=0)
