"""The `wecrm` command: only composes the Typer app from the command modules.

Typer gives typed options, `--help` on every level and shell completion for free. Shared
helpers live in bot.cli.common; no command module imports this one, so any import order works.
"""

from __future__ import annotations

import sys

import typer

from bot.cli import admin, config, db, digest, jobs, outbox, run, service

app = typer.Typer(help="WeCom CRM assistant.", no_args_is_help=True, add_completion=False)

# One line per command module, each with `register(app: typer.Typer) -> None`, in help order.
run.register(app)
db.register(app)
admin.register(app)
config.register(app)
service.register(config.config_app)
jobs.register(app)
outbox.register(app)
digest.register(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
