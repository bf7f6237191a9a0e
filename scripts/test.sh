#!/usr/bin/env bash
# Install EduFed with its test tools into .venv (and the independent JS verifier, and Chromium for the browser
# tests when it is missing), then run the test suite.
# Extra arguments go to pytest. EDUFED_TEST_DATABASE_URL=postgres://… runs the suite on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
npm ci --silent --no-audit --no-fund --prefix tests/interop
# The browser tests drive the system's Chromium (Debian package), never a browser build downloaded by Playwright.
if [ ! -e /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
exec .venv/bin/python -m pytest "$@"
