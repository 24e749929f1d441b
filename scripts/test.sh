#!/usr/bin/env bash
# The README's second set-up command: install what the tests need, then run the whole suite.
# Works on a fresh machine with Python 3.11 + pip; Chromium (for page tests) comes from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'

if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing Debian's chromium for the page tests ..."
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing: install Debian's 'chromium' package (as root) for the page tests" >&2
    exit 1
  fi
fi

exec python3 -m pytest "$@"
