"""The organisation as WeCom knows it: departments, staff, and who belongs where."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_store.base import Base, JsonType, UtcDatetime


class Role(StrEnum):
    """What a person does in the CRM; each role carries one data scope (see config_data)."""

    REP = "rep"
    SERVICE = "service"
    MANAGER = "manager"
    ADMIN = "admin"


class ScopeLevel(StrEnum):
    """Wukong CRM's data_type levels: how far a person's view reaches beyond their own records."""

    SELF = "SELF"  # 本人
    SELF_AND_SUBORDINATES = "SELF_AND_SUBORDINATES"  # 本人及下属
    DEPARTMENT = "DEPARTMENT"  # 本部门
    DEPARTMENT_TREE = "DEPARTMENT_TREE"  # 本部门及下属部门
    ALL = "ALL"  # 全部
    CUSTOM = "CUSTOM"  # 指定部门（含下属部门）


class Department(Base):
    """A WeCom department; the id is WeCom's, so a re-sync updates rather than duplicates."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # No foreign key: WeCom may list a child before its parent, and the root has parent 0.
    parent_id: Mapped[int | None] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(100))
    order: Mapped[int] = mapped_column(Integer, default=0)


class Staff(Base):
    """A WeCom member; inactive people keep their records until they are handed over."""

    __tablename__ = "staff"

    userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    main_department_id: Mapped[int | None] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16), default=Role.REP.value)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[str | None] = mapped_column(String(128))
    direct_leaders: Mapped[list[str]] = mapped_column(JsonType, default=list)
    created_at: Mapped[UtcDatetime]
    updated_at: Mapped[UtcDatetime]

    memberships: Mapped[list[StaffDepartment]] = relationship(
        back_populates="staff", lazy="raise", cascade="all, delete-orphan"
    )


class StaffDepartment(Base):
    """One department a person belongs to; WeCom allows several, each with its own leader flag."""

    __tablename__ = "staff_department"
    __table_args__ = (Index("ix_staff_department_department", "department_id", "userid"),)

    userid: Mapped[str] = mapped_column(
        ForeignKey("staff.userid", ondelete="CASCADE"), primary_key=True
    )
    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True
    )
    is_leader: Mapped[bool] = mapped_column(Boolean, default=False)

    staff: Mapped[Staff] = relationship(back_populates="memberships", lazy="raise")
