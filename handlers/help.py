"""帮助 / help: what the asker may do, and a hint instead of silence for anything else."""

from __future__ import annotations

from handlers.kit.context import HandlerContext
from handlers.kit.inbound import OtherMessage
from handlers.kit.replies import Reply
from handlers.kit.routing import USER_MESSAGE_TYPES, Command, Router

router = Router("help", audience="common", title="通用")


@router.command(
    "帮助",
    "help",
    "?",
    "菜单",
    "menu",
    summary="查看机器人能做什么；“帮助 <命令>”查看某个命令的用法",
    usage="帮助 [命令]",
    example="帮助 跟进",
)
async def show_help(ctx: HandlerContext, argument: str) -> list[Reply]:
    """Overview of what this person may run, or one command's usage with an example."""
    catalogue = ctx.catalogue
    if argument:
        cmd = catalogue.find_command(argument.split(" ", 1)[0])
        if cmd is None or not cmd.allows(ctx.role):
            return [
                ctx.reply(
                    "help/no_such_command",
                    word=argument,
                    suggestions=catalogue.suggest(argument, ctx.role),
                )
            ]
        return [ctx.reply("help/command", command=cmd, aliases=cmd.aliases)]
    sections: dict[str, list[Command]] = {}
    for cmd in catalogue.commands_for(ctx.role):
        sections.setdefault(catalogue.audience_title(cmd), []).append(cmd)
    names = [cmd.name for cmds in sections.values() for cmd in cmds]
    example = next((n for n in ("跟进", "查") if n in names), names[0])
    return [ctx.reply("help/overview", sections=list(sections.items()), example=example)]


@router.command(
    "确认",
    "确认新建",
    "confirm",
    summary="确认刚才机器人请您确认的操作（如仍然新建相似的客户）",
    usage="确认",
    example="确认",
)
async def confirm_pending(ctx: HandlerContext, _argument: str) -> list[Reply]:
    """The newest question that waits for a yes, whichever audience asked it."""
    answered = await ctx.catalogue.confirm(ctx)
    return answered if answered is not None else [ctx.reply("help/nothing_to_confirm")]


@router.event(OtherMessage)
async def unsupported_message(ctx: HandlerContext, message: OtherMessage) -> list[Reply]:
    """A picture or voice note from a person deserves an answer; system events do not."""
    if message.msg_type in USER_MESSAGE_TYPES:
        return [ctx.reply("errors/unsupported")]
    return []
