"""The test suite itself: each database backend's run needs only that backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_sqlite_run_needs_no_postgresql() -> None:
    # No EDUFED_TEST_DATABASE_URL, and libpq's defaults point at a port where nothing listens: any attempt to
    # reach PostgreSQL (in a fixture's setup or teardown) turns into an error of this run.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDUFED_", "PG"))}
    env.update(PGHOST="127.0.0.1", PGPORT="1")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_store.py::test_reopening_a_database_keeps_its_records"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout and "error" not in run.stdout.lower()
