#!/usr/bin/env bash
# Run the bot on the embedded default (SQLite, no Redis) wired to the built-in WeCom simulator.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/wecrm demo "$@"
