"""Shared fixtures: every test gets a fresh, empty database of the kind CI asks for.

SQLite by default (a file in the test's tmp dir); with ``EDUFED_TEST_DATABASE_URL=postgres://…`` each test gets
its own new PostgreSQL database on that server, dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

POSTGRES_URL = os.environ.get("EDUFED_TEST_DATABASE_URL", "")

MakeDatabaseUrl = Callable[[], Awaitable[str]]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


@pytest.fixture
async def make_database_url(tmp_path: Path) -> AsyncIterator[MakeDatabaseUrl]:
    """A factory of fresh database URLs (one per node in multi-node tests)."""
    created: list[str] = []

    async def make() -> str:
        name = f"edufed_t_{secrets.token_hex(6)}"
        admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        created.append(name)
        return _with_database(POSTGRES_URL, name)

    files = iter(range(1_000_000))

    async def make_sqlite() -> str:
        return f"sqlite://{tmp_path / f'db-{next(files)}.sqlite3'}"

    yield make if POSTGRES_URL else make_sqlite
    if not created:  # SQLite, or no database made: PostgreSQL need not be there at all
        return
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        for name in created:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(make_database_url: MakeDatabaseUrl) -> str:
    return await make_database_url()
