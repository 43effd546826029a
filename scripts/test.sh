#!/usr/bin/env bash
# The one test command (README, `make test`, CI): install, check services, lint, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/services.sh
bash scripts/browser.sh || true  # the browser test then fails and says why
.venv/bin/ruff check .
.venv/bin/mypy  # strict, configured in pyproject.toml
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
