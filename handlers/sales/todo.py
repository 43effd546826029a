"""待办 / todo: today's and overdue reminders; 完成 / done and 推迟 / postpone by number."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, timedelta

from crm_store import tasks
from crm_store.tasks import TaskChange, TodoItem
from handlers.common import customer_resolution as resolution
from handlers.common.format import when_text
from handlers.kit.cards import CardKey
from handlers.kit.context import HandlerContext
from handlers.kit.replies import Reply
from handlers.kit.routing import Router
from handlers.parsing import When, WhenError, WhenProblem, find_when

router = Router("sales.todo", audience="sales", title="待办")


@dataclass(frozen=True)
class TaskList:
    """The task ids behind the numbers of the last 待办 list."""

    tasks: tuple[int, ...]


@dataclass(frozen=True)
class DoneKey(CardKey, prefix="done", legacy="done:"):
    task_id: int


TASK_LIST = router.slot("task_list", TaskList, ttl=timedelta(hours=12))
_NUMBER = re.compile(r"\s*(?:第)?(\d{1,2})(?:个|条|项)?\s*(.*)", re.S)
DONE_USAGE = "完成 <序号>"
POSTPONE_USAGE = "推迟 <序号> <时间>"


@router.command(
    "待办",
    "今日待办",
    "提醒",
    "todo",
    "todos",
    summary="今天和已过期的待办，按序号处理",
    usage="待办",
    example="待办",
)
async def show_todos(ctx: HandlerContext, _argument: str) -> list[Reply]:
    items = await tasks.todos(ctx.session, owner_id=ctx.user_id, now=ctx.now(), tz=ctx.tz)
    await ctx.state.put(TASK_LIST, TaskList(tuple(i.task_id for i in items)))
    if not items:
        return [ctx.reply("sales/todos_empty")]
    replies = [ctx.reply("sales/todos", items=[_line(ctx, i) for i in items])]
    replies.append(
        ctx.card_from(
            "sales/todo_card",
            task_id=resolution.task_id(ctx, "todo"),
            keys=tuple((DoneKey(item.task_id).pack(), 4) for item in items[:6]),
            count=min(len(items), 6),
        )
    )
    return replies


def _line(ctx: HandlerContext, item: TodoItem) -> dict[str, object]:
    return {
        "title": item.title,
        "customer": item.customer_name,
        "overdue": item.overdue,
        "due": when_text(ctx, item.due_at) if item.due_at else "无截止时间",
    }


async def _task_for(ctx: HandlerContext, number: int) -> int | None:
    listed = await ctx.state.get(TASK_LIST)
    if listed is None:
        return None
    ids = listed.tasks
    return ids[number - 1] if 1 <= number <= len(ids) else None


@router.command(
    "完成",
    "做完",
    "done",
    summary="把待办标记为完成",
    usage=DONE_USAGE,
    example="完成 1",
)
async def complete(ctx: HandlerContext, argument: str) -> list[Reply]:
    match = _NUMBER.fullmatch(argument)
    if match is None:
        return [ctx.usage()]
    task_id = await _task_for(ctx, int(match.group(1)))
    if task_id is None:
        return [ctx.reply("sales/todo_unknown_number")]
    return await _complete(ctx, task_id)


@router.card(DoneKey)
async def tap_done(ctx: HandlerContext, key: DoneKey) -> list[Reply]:
    return await _complete(ctx, key.task_id)


async def _complete(ctx: HandlerContext, task_id: int) -> list[Reply]:
    change = await tasks.complete_task(
        ctx.session,
        owner_id=ctx.user_id,
        task_id=task_id,
        now=ctx.now(),
        source_key=ctx.message.key,
    )
    return [_result(ctx, change)]


@router.command(
    "推迟",
    "延后",
    "改期",
    "postpone",
    "snooze",
    summary="把待办推迟到新的时间",
    usage=POSTPONE_USAGE,
    example="推迟 1 明天下午3点",
)
async def postpone(ctx: HandlerContext, argument: str) -> list[Reply]:
    match = _NUMBER.fullmatch(argument)
    if match is None or not match.group(2).strip():
        return [ctx.usage()]
    when = find_when(match.group(2), now=ctx.now(), tz=ctx.tz)
    if when is None:
        return [ctx.reply("sales/postpone_no_time", text=match.group(2).strip())]
    if isinstance(when, WhenProblem):
        template = "sales/time_in_past" if when.kind is WhenError.PAST else "sales/time_impossible"
        return [ctx.reply(template, text=when.text)]
    assert isinstance(when, When)
    task_id = await _task_for(ctx, int(match.group(1)))
    if task_id is None:
        return [ctx.reply("sales/todo_unknown_number")]
    change = await tasks.postpone_task(
        ctx.session,
        owner_id=ctx.user_id,
        task_id=task_id,
        due_at=when.at.astimezone(UTC),
        now=ctx.now(),
        source_key=ctx.message.key,
    )
    return [_result(ctx, change)]


def _result(ctx: HandlerContext, change: TaskChange) -> Reply:
    task = change.task
    return ctx.reply(
        "sales/task_result",
        outcome=change.outcome.value,
        title=task.title if task else "",
        due=when_text(ctx, task.due_at) if task and task.due_at else "",
    )
