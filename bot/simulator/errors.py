"""WeCom's error envelope: failures are HTTP 200 with {"errcode", "errmsg"} (PROTOCOL.md §4.8)."""

from __future__ import annotations

import itertools
from typing import Any

__all__ = ["ERRMSG", "ApiError", "error_body", "normalize_path"]

# errmsg texts follow WeCom's English wording where known; clients must rely on errcode only.
ERRMSG: dict[int, str] = {
    -1: "system busy",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid userid",
    40004: "invalid media file type",
    40005: "invalid type",
    40006: "invalid file size",
    40007: "invalid media_id",
    40008: "invalid message type",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40056: "invalid agentid",
    40058: "invalid parameter",
    41001: "access_token missing",
    41002: "corpid missing",
    41004: "corpsecret missing",
    41006: "media_id missing",
    41009: "missing userid",
    41010: "url missing",
    41011: "missing agentid",
    41016: "title missing",
    41019: "missing department",
    41033: "description missing",
    42001: "access_token expired",
    44001: "empty media data",
    44004: "empty content",
    45001: "media size out of limit",
    45002: "content size out of limit",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45033: "api concurrent out of limit",
    48002: "api forbidden",
    60003: "department not found",
    60011: "no privilege to access/modify contact/party/agent",
    60020: "not allow to access from your ip",
    60111: "userid not found",
    60140: "invalid response_code",
    81013: "user & party & tag all invalid",
    82001: "All touser & toparty & totag invalid",
}

_hints = itertools.count(1)


class ApiError(Exception):
    """Raised inside a simulator handler; becomes WeCom's error JSON with HTTP 200."""

    def __init__(self, errcode: int, detail: str | None = None) -> None:
        super().__init__(errcode, detail)
        self.errcode = errcode
        self.detail = detail


def error_body(errcode: int, detail: str | None = None) -> dict[str, Any]:
    """The body WeCom returns for an error, with its usual hint and help-link suffix."""
    text = detail or ERRMSG.get(errcode, "error")
    hint = f"[{next(_hints):010d}_sim]"
    link = f"https://open.work.weixin.qq.com/devtool/query?e={errcode}"
    return {"errcode": errcode, "errmsg": f"{text}, hint: {hint}, more info at {link}"}


def normalize_path(path: str) -> str:
    """'/cgi-bin/message/send', 'cgi-bin/message/send' and 'message/send' name one endpoint."""
    path = path.strip().split("?", 1)[0].strip("/")
    return path.removeprefix("cgi-bin/")
