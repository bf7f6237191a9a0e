#!/bin/sh
# Container entrypoint of an EduFed node.
#
#   entrypoint.sh [serve]    first start: `edufed init` from the environment; then migrate and serve
#   entrypoint.sh init       only the first-start steps (a one-shot init service), then exit
#   entrypoint.sh ARGS...    any other `edufed` command, e.g. `backup --data /data /backup/node.tar.gz`
#
# Environment: EDUFED_DATA (default /data), EDUFED_HOST (0.0.0.0), EDUFED_PORT (8000); for the first start
# EDUFED_BASE_URL and EDUFED_NAME (required), EDUFED_COUNTRY, EDUFED_CITY, EDUFED_LANGUAGES (space-separated
# BCP 47 tags), EDUFED_DATABASE_URL (default: SQLite in the data folder), EDUFED_SEEDS (space-separated base
# URLs of peers to join through).
#
# Several workers share one data folder: init and migrations run under an exclusive lock on a file in it, so
# whichever worker comes first initialises and the others wait, then find the folder ready.
set -eu

DATA="${EDUFED_DATA:-/data}"
HOST="${EDUFED_HOST:-0.0.0.0}"
PORT="${EDUFED_PORT:-8000}"
LOCK="$DATA/.init.lock"

first_start() {
    if [ -f "$DATA/edufed.toml" ]; then
        return 0
    fi
    : "${EDUFED_BASE_URL:?set EDUFED_BASE_URL, the public origin of the node (e.g. https://learn.example.org)}"
    : "${EDUFED_NAME:?set EDUFED_NAME, the node display name}"
    set -- --data "$DATA" --base-url "$EDUFED_BASE_URL" --name "$EDUFED_NAME"
    if [ -n "${EDUFED_COUNTRY:-}" ]; then set -- "$@" --country "$EDUFED_COUNTRY"; fi
    if [ -n "${EDUFED_CITY:-}" ]; then set -- "$@" --city "$EDUFED_CITY"; fi
    if [ -n "${EDUFED_DATABASE_URL:-}" ]; then set -- "$@" --database-url "$EDUFED_DATABASE_URL"; fi
    for language in ${EDUFED_LANGUAGES:-}; do set -- "$@" --language "$language"; done
    # The admin token is kept in $DATA/admin-token (mode 0600); it is not written to the container log.
    edufed init "$@" >/dev/null
    echo "edufed: initialised $EDUFED_NAME at $EDUFED_BASE_URL in $DATA (admin token in $DATA/admin-token)" >&2
    for seed in ${EDUFED_SEEDS:-}; do
        edufed peer add --data "$DATA" "$seed" >&2
    done
}

migrate() {
    # Opening the store applies the migrations this image ships (a no-op when the schema is current).
    python - <<'PY'
import asyncio
import os
from pathlib import Path

from node.config import load
from node.store.records import Store


async def main() -> None:
    store = await Store.open(load(Path(os.environ.get("EDUFED_DATA", "/data"))).effective_database_url)
    await store.close()


asyncio.run(main())
PY
}

prepare() {
    (umask 077 && mkdir -p "$DATA")
    (
        flock -w 300 9 || { echo "edufed: timed out waiting for $LOCK" >&2; exit 1; }
        first_start
        migrate
    ) 9>>"$LOCK"
}

export EDUFED_DATA="$DATA"
command="${1:-serve}"
case "$command" in
    serve)
        prepare
        exec edufed serve --data "$DATA" --host "$HOST" --port "$PORT"
        ;;
    init)
        prepare
        ;;
    *)
        exec edufed "$@"
        ;;
esac
