#!/usr/bin/env bash
# Create .venv and install the project with its dev extra; re-installs only when pyproject changes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "wecrm needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.wecrm-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  echo "$want" > "$stamp"
fi

# The digest chart needs a font with Chinese glyphs (handlers/manager/chart.py).
fonts=$(fc-list 2>/dev/null || true)  # captured first: grep -q under pipefail would SIGPIPE it
if ! grep -qiE "Noto Sans CJK|WenQuanYi|Source Han Sans|Droid Sans Fallback" <<<"$fonts"; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing a CJK font for the digest chart (fonts-noto-cjk)" >&2
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null; }; then
      echo "WARNING: could not install fonts-noto-cjk: digest charts will refuse to draw" >&2
    fi
  else
    echo "WARNING: no CJK font found and apt-get is not usable here: install fonts-noto-cjk or" \
      "fonts-wqy-microhei, or digest charts will refuse to draw" >&2
  fi
fi
