"""帮助 / help: what the bot can do, and a hint instead of silence for anything else."""

from __future__ import annotations

from handlers.kit.context import HandlerContext
from handlers.kit.inbound import Inbound, OtherMessage
from handlers.kit.replies import Reply
from handlers.kit.routing import Command, Router

router = Router(name=__name__)

AUDIENCE_TITLES = {
    "all": "通用",
    "sales": "销售",
    "service": "客服",
    "manager": "主管",
    "admin": "管理员",
}


def _commands() -> list[Command]:
    from handlers.dispatch import dispatcher

    return dispatcher().commands


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
    """Overview, or one command's usage with an example when a command word is given."""
    if argument:
        from handlers.dispatch import dispatcher

        cmd = dispatcher().find_command(argument.split(" ", 1)[0])
        if cmd is None:
            return [
                ctx.reply(
                    "help/no_such_command",
                    word=argument,
                    suggestions=dispatcher().suggest(argument),
                )
            ]
        return [ctx.reply("help/command", command=cmd, aliases=_aliases(cmd))]
    groups: dict[str, list[Command]] = {}
    for cmd in _commands():
        groups.setdefault(cmd.audience, []).append(cmd)
    sections = [(AUDIENCE_TITLES.get(a, a), cmds) for a, cmds in groups.items()]
    names = [cmd.name for cmd in _commands()]
    example = "跟进" if "跟进" in names else names[0]
    return [ctx.reply("help/overview", sections=sections, example=example)]


def _aliases(cmd: Command) -> list[str]:
    return [w for w in cmd.words[1:] if w != cmd.name]


async def unknown_text(ctx: HandlerContext, text: str) -> list[Reply]:
    """Anything not understood gets a short hint, never silence."""
    from handlers.dispatch import dispatcher

    return [ctx.reply("help/unknown", text=text[:30], suggestions=dispatcher().suggest(text))]


USER_MESSAGE_TYPES = {"image", "voice", "video", "location", "link", "file"}


@router.event(OtherMessage)
async def unsupported_message(ctx: HandlerContext, message: Inbound) -> list[Reply]:
    """A picture or voice note from a person deserves an answer; system events do not."""
    if isinstance(message, OtherMessage) and message.msg_type in USER_MESSAGE_TYPES:
        return [ctx.reply("errors/unsupported")]
    return []
