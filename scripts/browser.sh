#!/usr/bin/env bash
# The chat page's browser test drives Debian's Chromium (never a downloaded browser build).
# Install it, with CJK fonts for the screenshot, where it is missing; say clearly if we cannot.
set -uo pipefail
CHROMIUM=${WECRM_CHROMIUM:-/usr/bin/chromium}
have_fonts() { fc-list :lang=zh 2>/dev/null | grep -q .; }
if [ -x "$CHROMIUM" ] && have_fonts; then
  exit 0
fi
packages=()
[ -x "$CHROMIUM" ] || packages+=(chromium)
have_fonts || packages+=(fonts-noto-cjk)
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing ${packages[*]} for the browser test..."
  export DEBIAN_FRONTEND=noninteractive
  if apt-get install -y --no-install-recommends "${packages[@]}" >/tmp/wecrm-browser-apt.log 2>&1 \
    || { apt-get update >>/tmp/wecrm-browser-apt.log 2>&1 \
         && apt-get install -y --no-install-recommends "${packages[@]}" >>/tmp/wecrm-browser-apt.log 2>&1; }; then
    exit 0
  fi
  echo "could not install ${packages[*]} with apt-get (log: /tmp/wecrm-browser-apt.log)" >&2
else
  echo "missing ${packages[*]}: install them as root (apt-get install chromium fonts-noto-cjk)" >&2
fi
echo "the browser test (tests/e2e/test_chat_page.py) will fail: it needs $CHROMIUM" >&2
exit 1
