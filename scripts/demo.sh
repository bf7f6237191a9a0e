#!/usr/bin/env bash
# Install EduFed into .venv and run the local demo: nodes on loopback with sample catalogs (SQLite).
# Extra arguments go to `edufed demo` (see `edufed demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/edufed demo "$@"
