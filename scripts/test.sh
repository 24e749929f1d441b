#!/usr/bin/env bash
# The README's second set-up command: install what the tests need, then run the whole suite.
# Works on a fresh machine with Python 3.11 + pip; chromium and promtool come from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'

# Debian packages the tests use: chromium (page tests), prometheus (for promtool, which checks
# the alert rules). Installed once, as root, like CI's machine; elsewhere install them yourself.
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# documents: signed PDFs checked by validators independent of pyHanko (poppler's pdfsig with an NSS
# database made by certutil; OpenSSL for the RFC 3161 timestamps)
command -v pdfsig >/dev/null 2>&1 || need+=(poppler-utils)
command -v certutil >/dev/null 2>&1 || need+=(libnss3-tools)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages for the tests: ${need[*]} ..."
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing for the tests: ${need[*]} (Debian packages; install them as root)" >&2
    exit 1
  fi
fi

exec python3 -m pytest "$@"
