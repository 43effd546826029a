"""What message/send accepts, how WeCom trims it, and the records the simulator keeps."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.simulator.errors import ApiError

__all__ = [
    "INTERACTIVE_CARDS",
    "MEDIA_LIMITS",
    "SUPPORTED_MSGTYPES",
    "CardUpdate",
    "Media",
    "ResponseCode",
    "SentMessage",
    "Undelivered",
    "content_key",
    "normalize_payload",
    "truncate_utf8",
]

TEXT_LIMIT = 2048  # PROTOCOL.md §4.2: text and markdown content ≤ 2048 bytes, truncated beyond
# PROTOCOL.md §4.2: only the interaction card types return a response_code
INTERACTIVE_CARDS = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
CARD_TYPES = INTERACTIVE_CARDS | {"text_notice", "news_notice"}
MEDIA_MSGTYPES = frozenset({"image", "voice", "video", "file"})
SUPPORTED_MSGTYPES = frozenset({"text", "markdown", "textcard", "news", "template_card"}).union(
    MEDIA_MSGTYPES
)
# Upload limits of doc 90253 as read in 2024; PROTOCOL.md §4.2 marks them [U].
MEDIA_LIMITS: dict[str, int] = {
    "image": 10 * 1024 * 1024,
    "voice": 2 * 1024 * 1024,
    "video": 10 * 1024 * 1024,
    "file": 20 * 1024 * 1024,
}
MEDIA_MIN_BYTES = 5  # doc 90253: "所有文件size必须大于5个字节" [U]


@dataclass
class SentMessage:
    """One accepted message/send call; `payload` is what recipients see (after truncation)."""

    seq: int
    msgid: str
    touser: str
    toparty: str
    msgtype: str
    payload: dict[str, Any]
    request: dict[str, Any]
    at: datetime
    delivered_to: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    deduplicated: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    truncated: bool = False
    response_code: str | None = None

    @property
    def delivered(self) -> bool:
        """True if at least one recipient actually got it."""
        return bool(self.delivered_to)

    @property
    def content(self) -> str | None:
        """The visible text of text/markdown messages (None for other types)."""
        value = self.payload.get("content")
        return value if isinstance(value, str) else None

    def as_text(self) -> str:
        """Roughly what a person reads on screen, for the demo and tests (cards flattened)."""
        if self.content is not None:
            return self.content
        if self.msgtype != "template_card":
            return f"[{self.msgtype}]"
        card = self.payload
        rows = [str((card.get("main_title") or {}).get("title", ""))]
        if card.get("sub_title_text"):
            rows.append(str(card["sub_title_text"]))
        rows += [
            f"{r.get('keyname', '')}：{r.get('value', '')}"
            for r in card.get("horizontal_content_list") or []
        ]
        buttons = [f"[{b.get('text', '')}]" for b in card.get("button_list") or []]
        if buttons:
            rows.append(" ".join(buttons))
        return "\n".join(rows)

    def as_json(self) -> dict[str, Any]:
        """The shape the demo's /sim/messages returns."""
        return {
            "seq": self.seq,
            "msgid": self.msgid,
            "msgtype": self.msgtype,
            "content": self.content,
            "text": self.as_text(),
            "payload": self.payload,
            "at": self.at.isoformat(),
            "truncated": self.truncated,
            "response_code": self.response_code,
        }


@dataclass(frozen=True)
class Undelivered:
    """A recipient WeCom accepted a message for but silently did not deliver it to."""

    userid: str
    message: SentMessage
    reason: str  # "rate_limited" | "duplicate"


@dataclass
class Media:
    """An uploaded temporary media file."""

    media_id: str
    type: str
    filename: str
    content: bytes
    created_at: datetime


@dataclass
class ResponseCode:
    """A code for update_template_card: single use, 72 h."""

    code: str
    task_id: str
    card_type: str
    issued_at: datetime
    userids: list[str]
    used: bool = False


@dataclass(frozen=True)
class CardUpdate:
    """One successful update_template_card call."""

    response_code: str
    task_id: str
    userids: list[str]
    button: dict[str, Any] | None
    template_card: dict[str, Any] | None
    at: datetime


def truncate_utf8(text: str, limit: int) -> tuple[str, bool]:
    """Cut to at most `limit` UTF-8 bytes without splitting a character."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", errors="ignore"), True


def content_key(msgtype: str, body: Any) -> str:
    """Identity of a message's content for WeCom's duplicate check."""
    return msgtype + ":" + json.dumps(body, sort_keys=True, ensure_ascii=False)


def _text_field(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(40058, f"{name} must be a string")
    return value


def _trim(body: dict[str, Any], name: str, limit: int) -> bool:
    value = body.get(name)
    if not isinstance(value, str):
        return False
    body[name], cut = truncate_utf8(value, limit)
    return cut


def normalize_payload(
    msgtype: str, body: Any, media_ok: Callable[[str, str], bool]
) -> tuple[dict[str, Any], bool]:
    """Validate one msgtype body as WeCom does; return what users see and whether it was cut."""
    if msgtype not in SUPPORTED_MSGTYPES:
        raise ApiError(40008)
    if body is None and msgtype in {"text", "markdown"}:
        raise ApiError(44004)
    if not isinstance(body, dict):
        raise ApiError(40058, f"{msgtype} must be an object")
    seen = copy.deepcopy(body)
    if msgtype in {"text", "markdown"}:
        content = _text_field(seen, "content")
        if not content:
            raise ApiError(44004)
        return seen, _trim(seen, "content", TEXT_LIMIT)
    if msgtype == "textcard":
        return seen, _textcard(seen)
    if msgtype == "news":
        return seen, _news(seen)
    if msgtype == "template_card":
        _template_card(seen)
        return seen, False
    media_id = _text_field(seen, "media_id")
    if not media_id:
        raise ApiError(41006)
    if not media_ok(msgtype, media_id):
        raise ApiError(40007)
    return seen, False


def _textcard(card: dict[str, Any]) -> bool:
    # PROTOCOL.md §4.2: title ≤128 B, description ≤512 B, url ≤2048 B, btntxt ≤4 chars
    if not _text_field(card, "title"):
        raise ApiError(41016)
    if not _text_field(card, "description"):
        raise ApiError(41033)
    if not _text_field(card, "url"):
        raise ApiError(41010)
    cut = _trim(card, "title", 128) | _trim(card, "description", 512)
    btntxt = _text_field(card, "btntxt")
    if btntxt is not None and len(btntxt) > 4:
        card["btntxt"], cut = btntxt[:4], True
    return cut


def _news(news: dict[str, Any]) -> bool:
    # PROTOCOL.md §4.2: 1–8 articles, title ≤128 B, description ≤512 B
    articles = news.get("articles")
    if not isinstance(articles, list) or not articles:
        raise ApiError(40058, "articles must be a non-empty list")
    if len(articles) > 8:
        raise ApiError(45008)
    cut = False
    for article in articles:
        if not isinstance(article, dict) or not _text_field(article, "title"):
            raise ApiError(41016)
        if not _text_field(article, "url") and not article.get("appid"):
            raise ApiError(41010)
        cut |= _trim(article, "title", 128) | _trim(article, "description", 512)
    return cut


def _template_card(card: dict[str, Any]) -> None:
    card_type = card.get("card_type")
    if card_type not in CARD_TYPES:
        raise ApiError(40058, "invalid card_type")
    task_id = card.get("task_id")
    if card_type in INTERACTIVE_CARDS and not (isinstance(task_id, str) and task_id):
        raise ApiError(40058, "task_id required for interaction cards")
    if isinstance(task_id, str) and (len(task_id.encode()) > 128 or not _task_id_ok(task_id)):
        raise ApiError(40058, "invalid task_id")
    if card_type == "button_interaction":
        buttons = card.get("button_list")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 6:
            raise ApiError(40058, "button_list must have 1..6 buttons")
    main_title = card.get("main_title")
    has_title = isinstance(main_title, dict) and bool(main_title.get("title"))
    if card_type == "text_notice" and not has_title and not card.get("sub_title_text"):
        raise ApiError(40058, "main_title.title or sub_title_text required")


def _task_id_ok(task_id: str) -> bool:
    # doc 90236: task_id only digits, letters and "_-@", ≤128 bytes, unique per app
    return all(c.isascii() and (c.isalnum() or c in "_-@") for c in task_id)
