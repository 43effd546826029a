"""What the service commands share: their steps, who works tickets, the words for states."""

from __future__ import annotations

import re
from enum import StrEnum

from crm_store.models.org import Role


class ServiceStep(StrEnum):
    OPEN = "ticket_open"  # open a ticket for the chosen customer
    LIST = "ticket_list"  # show the chosen customer's tickets and history


WORKERS = (Role.SERVICE.value, Role.MANAGER.value, Role.ADMIN.value)  # who works tickets
STATUS_TEXT = {
    "open": "待处理",
    "in_progress": "处理中",
    "waiting": "等待客户",
    "resolved": "已解决",
    "closed": "已关闭",
    "merged": "已合并",
}
TARGET_TEXT = {"first_response": "首次响应", "next_response": "再次响应", "resolution": "解决"}
EVENT_TEXT = {
    "opened": "开单",
    "taken": "接单",
    "transferred": "转交",
    "note": "备注",
    "reply": "回复客户",
    "waiting": "等待客户",
    "resumed": "客户已回复",
    "resolved": "解决",
    "closed": "关闭",
    "reopened": "重开",
    "priority": "改优先级",
    "merged_into": "合并到",
    "merged_from": "合并了",
    "rated": "满意度",
}
_REF = re.compile(r"^#?(\d{1,12})(?:\s+|$)(.*)$", re.S)


def parse_ref(argument: str) -> tuple[int, str] | None:
    """ "#12 内容" → (12, "内容"); None when it does not start with a ticket number."""
    match = _REF.match(argument.strip())
    if match is None:
        return None
    return int(match.group(1)), match.group(2).strip()


_HEAD = re.compile(r"\s*([^\s,，;；:：]+)[\s,，;；:：]*(.*)", re.S)


def split_head(argument: str) -> tuple[str, str]:
    """The first word (a customer) and the rest; commas and colons count as spaces."""
    match = _HEAD.match(argument)
    if match is None:
        return "", ""
    return match.group(1), match.group(2).strip()
