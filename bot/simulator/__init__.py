"""A local WeCom for tests, the demo and benchmarks: APIs, directory, callbacks, faults."""

from bot.simulator.callbacks import CallbackSender, build_xml
from bot.simulator.delivery import MessageCenter
from bot.simulator.directory import Department, Directory, Member
from bot.simulator.errors import ApiError, error_body
from bot.simulator.messages import CardUpdate, Media, ResponseCode, SentMessage, Undelivered
from bot.simulator.server import WeComSimulator

__all__ = [
    "ApiError",
    "CallbackSender",
    "CardUpdate",
    "Department",
    "Directory",
    "Media",
    "Member",
    "MessageCenter",
    "ResponseCode",
    "SentMessage",
    "Undelivered",
    "WeComSimulator",
    "build_xml",
    "error_body",
]
