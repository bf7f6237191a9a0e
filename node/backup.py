"""Backup and restore of a node: one ``tar.gz`` with its config, keys, admin token and a logical database dump.

The dump is made through the ORM, one JSON line per row and one file per table in dependency order, with the
migrations that were applied. That makes it portable: a backup of a SQLite node restores onto PostgreSQL and
back, independent of the database server's version. Restoring migrates an empty database up to the dump's
migration, loads the rows with their ids, then applies any newer migration shipped with this software.

The archive holds the signing keys: it is written with mode 0600 and must be kept like the keys themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import decimal
import io
import json
import os
import shutil
import tarfile
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

import tomli_w
from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.context import TortoiseContext
from tortoise.migrations.executor import MigrationExecutor, MigrationTarget
from tortoise.migrations.recorder import MigrationRecorder
from tortoise.models import Model
from tortoise.transactions import in_transaction

import node.store.migrations
from node.bootstrap import ADMIN_TOKEN_FILE
from node.config import CONFIG_FILE, DATABASE_ENV, NodeConfig, default_database_url, load
from node.errors import BadRequest, Conflict
from node.store import models
from node.store.records import APPS, Store

FORMAT = "edufed-backup/1"
MANIFEST = "manifest.json"
FILES = "files"  # the data folder's own files: edufed.toml, admin-token, keys/
TABLES = "tables"  # one JSON-lines file per table
PAGE = 1000  # rows read or written per query
DERIVED_TABLES = frozenset({"record_fts", "tortoise_migrations"})  # rebuilt on restore, never dumped


@dataclass(frozen=True)
class BackupSummary:
    archive: Path
    tables: dict[str, int]  # rows per table
    migrations: list[str]


def dumped_models() -> list[type[Model]]:
    """Every table of ``node.store.models``, each after the tables it refers to, so rows load in order."""
    found = sorted((m for m in vars(models).values() if isinstance(m, type) and issubclass(m, Model)
                    and m.__module__ == models.__name__), key=lambda m: m._meta.db_table)
    ordered: list[type[Model]] = []

    def visit(model: type[Model]) -> None:
        if model in ordered:
            return
        for name in sorted(model._meta.fk_fields | model._meta.o2o_fields):
            visit(cast(Any, model._meta.fields_map[name]).related_model)
        ordered.append(model)

    for model in found:
        visit(model)
    return ordered


def shipped_migrations() -> list[str]:
    """Names of the migrations this software carries, in order."""
    folder = Path(node.store.migrations.__file__).parent
    return sorted(p.stem for p in folder.glob("[0-9][0-9][0-9][0-9]_*.py"))


# --- values: JSON has no datetime or bytes, so these travel as ISO 8601 text and base64 ---

def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def _decode(field: fields.Field[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(field, fields.BinaryField):
        return base64.b64decode(value)
    if isinstance(field, fields.DatetimeField):
        return dt.datetime.fromisoformat(value)
    return field.to_python_value(value)


# --- backup ---

async def _dump_table(model: type[Model], connection: BaseDBAsyncClient, out: IO[str]) -> int:
    """Write ``model``'s rows as JSON lines in primary-key order, a page at a time (tables may be large)."""
    pk = model._meta.pk_attr
    columns = list(model._meta.fields_db_projection)
    count, last = 0, None
    while True:
        query = model.all().using_db(connection)
        if last is not None:
            query = query.filter(**{f"{pk}__gt": last})
        rows = await query.order_by(pk).limit(PAGE).values(*columns)
        for row in rows:
            out.write(json.dumps({c: _encode(row[c]) for c in columns}, ensure_ascii=False, sort_keys=True) + "\n")
        count += len(rows)
        if len(rows) < PAGE:
            return count
        last = rows[-1][pk]


async def _dump_database(store: Store, folder: Path) -> tuple[dict[str, int], list[str]]:
    """Dump every table from one snapshot (a repeatable-read transaction), so a running node backs up
    consistently: a record never appears without its index rows or its outbox activity."""
    counts: dict[str, int] = {}
    with store.bound():
        async with in_transaction() as connection:
            if store.dialect == "postgres":
                await connection.execute_script("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            applied = [key.name for key in await MigrationRecorder(connection).applied_migrations()]
            for model in dumped_models():
                table = model._meta.db_table
                with (folder / f"{table}.jsonl").open("w", encoding="utf-8") as out:
                    counts[table] = await _dump_table(model, connection, out)
    return counts, sorted(applied)


def _owner_free(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Archive members carry their mode but no owner (the restoring user owns them); temp files stay out."""
    if PurePosixPath(info.name).name.startswith("."):
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


async def backup_node(config: NodeConfig, archive: Path) -> BackupSummary:
    """Write ``archive``: manifest, ``files/`` (config, admin token, keys with their modes) and ``tables/``."""
    archive = archive.resolve()
    with tempfile.TemporaryDirectory(prefix="edufed-backup-") as work:
        tables = Path(work)
        store = await Store.open(config.effective_database_url)
        try:
            counts, applied = await _dump_database(store, tables)
            dialect = store.dialect
        finally:
            await store.close()
        manifest = {
            "format": FORMAT,
            "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "node": {"name": config.name, "base_url": config.base_url},
            "data_dir": str(config.data_dir),
            "database": {"dialect": dialect, "migrations": applied,
                         "tables": [{"table": t, "rows": n} for t, n in counts.items()]},
        }
        await asyncio.to_thread(_write_archive, config, archive, manifest, tables, list(counts))
    return BackupSummary(archive, counts, applied)


def _write_archive(config: NodeConfig, archive: Path, manifest: dict[str, Any], tables: Path,
                   names: list[str]) -> None:
    """Write to a temporary name and rename, so an interrupted backup never leaves a truncated archive."""
    tmp = archive.with_name(f".{archive.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the private keys
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            body = json.dumps(manifest, indent=2).encode("utf-8")
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(body), 0o600, int(dt.datetime.now().timestamp())
            tar.addfile(info, io.BytesIO(body))
            for name in (CONFIG_FILE, ADMIN_TOKEN_FILE):
                tar.add(config.data_dir / name, f"{FILES}/{name}", filter=_owner_free)
            tar.add(config.keys_dir, f"{FILES}/keys", filter=_owner_free)
            for table in names:
                tar.add(tables / f"{table}.jsonl", f"{TABLES}/{table}.jsonl", filter=_owner_free)
        tmp.replace(archive)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- restore ---

def _member_path(name: str) -> PurePosixPath:
    """A member's path, refusing anything that could land outside the target (absolute, ``..``)."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BadRequest("Unsafe path in backup archive", detail=name, field="file")
    return path


def _read_manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    """The manifest, once every member is known to be a safe regular file or folder."""
    for member in tar.getmembers():
        _member_path(member.name)
        if not (member.isfile() or member.isdir()):
            raise BadRequest("Unexpected member in backup archive", detail=member.name, field="file")
    try:
        handle = tar.extractfile(MANIFEST)
        manifest: dict[str, Any] = json.load(handle) if handle else {}
    except (KeyError, json.JSONDecodeError) as error:
        raise BadRequest("Not an EduFed backup", detail=f"no readable {MANIFEST}: {error}", field="file") from None
    if manifest.get("format") != FORMAT:
        raise BadRequest("Unsupported backup format", detail=str(manifest.get("format")), field="file")
    unknown = sorted(set(manifest["database"]["migrations"]) - set(shipped_migrations()))
    if unknown:
        raise BadRequest("Backup made by a newer EduFed", detail=f"unknown migrations: {', '.join(unknown)}",
                         field="file")
    return manifest


def _rows(tar: tarfile.TarFile, table: str) -> Iterator[dict[str, Any]]:
    handle = tar.extractfile(f"{TABLES}/{table}.jsonl")
    if handle is None:
        raise BadRequest("Backup archive is incomplete", detail=f"{table} is missing", field="file")
    for line in io.TextIOWrapper(handle, encoding="utf-8"):
        yield json.loads(line)


async def _load_table(model: type[Model], connection: BaseDBAsyncClient, rows: Iterator[dict[str, Any]]) -> int:
    """Insert rows with their own ids, converted exactly as the ORM converts them (so SQLite keeps the
    datetime text format its comparisons rely on); ``auto_now`` columns keep their dumped values."""
    executor = connection.executor_class(model=model, db=connection)
    columns = executor.regular_columns_all
    fields_map = model._meta.fields_map
    count = 0
    batch: list[list[Any]] = []
    for row in rows:
        batch.append([fields_map[c].to_db_value(_decode(fields_map[c], row.get(c)), model) for c in columns])
        if len(batch) == PAGE:
            await connection.execute_many(executor.insert_query_all, batch)
            count, batch = count + len(batch), []
    if batch:
        await connection.execute_many(executor.insert_query_all, batch)
    return count + len(batch)


async def _after_load(connection: BaseDBAsyncClient, dialect: str) -> None:
    """Rebuild what is derived rather than dumped: SQLite's full-text table, PostgreSQL's id sequences."""
    if dialect == "sqlite":
        await connection.execute_script(  # as Store._write_index fills it (node/store/records.py)
            "INSERT INTO record_fts(rowid, tokens) SELECT record_id, tokens FROM record_index")
        return
    for model in dumped_models():
        pk = model._meta.fields_map[model._meta.pk_attr]
        if pk.generated:
            table, column = model._meta.db_table, model._meta.db_pk_column
            await connection.execute_query(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), "
                f"COALESCE(MAX(\"{column}\"), 1), MAX(\"{column}\") IS NOT NULL) FROM \"{table}\""
            )


async def _load_database(tar: tarfile.TarFile, manifest: dict[str, Any], database_url: str) -> dict[str, int]:
    """Migrate the empty database to the dump's migration and load every table in one transaction."""
    context = TortoiseContext()
    counts: dict[str, int] = {}
    store = Store(context)
    with store.bound():
        await context.init(config={"connections": {"default": database_url}, "apps": APPS}, _create_db=False)
        try:
            connection = context.db()
            executor = MigrationExecutor(connection, APPS)
            await executor.migrate(targets=[])  # only creates the bookkeeping table: nothing to apply yet
            if await MigrationRecorder(connection).applied_migrations():
                raise Conflict("Target database is not empty", detail="restore needs a new, empty database",
                               field="database-url")
            migrations = manifest["database"]["migrations"]
            if migrations:
                await executor.migrate(targets=[MigrationTarget("models", migrations[-1])])
            dialect = connection.capabilities.dialect
            async with in_transaction() as transaction:
                for model in dumped_models():
                    table = model._meta.db_table
                    counts[table] = await _load_table(model, transaction, _rows(tar, table))
                await _after_load(transaction, dialect)
        finally:
            await context.close_connections()
    return counts


def _target_database(manifest: dict[str, Any], config_toml: dict[str, Any], data_dir: Path,
                     database_url: str | None) -> str:
    """``--database-url``, else ``EDUFED_DATABASE_URL``, else the backed-up URL, with the node's own SQLite
    file moved into the new data folder."""
    if database_url:
        return database_url
    if os.environ.get(DATABASE_ENV):
        return os.environ[DATABASE_ENV]
    original = str(config_toml["database"]["url"])
    if original == default_database_url(Path(manifest["data_dir"])):
        return default_database_url(data_dir)
    return original


def _extract_files(tar: tarfile.TarFile, data_dir: Path) -> None:
    """Write keys and the admin token with their archived modes; ``edufed.toml`` is written by the caller."""
    for member in tar.getmembers():
        path = _member_path(member.name)
        if path.parts[0] != FILES or len(path.parts) < 2 or path.parts[1:] == (CONFIG_FILE,):
            continue
        target = data_dir.joinpath(*path.parts[1:])
        if member.isdir():
            target.mkdir(mode=0o700, parents=True, exist_ok=True)
            target.chmod(member.mode & 0o777)
        elif member.isfile():
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle = tar.extractfile(member)
            assert handle is not None
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, member.mode & 0o777)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(handle, out)
        else:
            raise BadRequest("Unexpected member in backup archive", detail=member.name, field="file")


async def restore_node(archive: Path, data_dir: Path, database_url: str | None = None) -> NodeConfig:
    """Recreate a node from ``archive`` in ``data_dir`` (absent or empty) on an empty database."""
    data_dir = data_dir.resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        raise Conflict("Target data folder is not empty", detail=str(data_dir), field="data")
    with tarfile.open(archive, "r:gz") as tar:
        manifest = _read_manifest(tar)
        handle = tar.extractfile(f"{FILES}/{CONFIG_FILE}")
        if handle is None:
            raise BadRequest("Backup archive is incomplete", detail=f"{CONFIG_FILE} is missing", field="file")
        config_toml = tomllib.loads(handle.read().decode("utf-8"))
        url = _target_database(manifest, config_toml, data_dir, database_url)
        created = not data_dir.exists()
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            await _load_database(tar, manifest, url)
            store = await Store.open(url)  # applies migrations newer than the backup
            await store.close()
            _extract_files(tar, data_dir)
        except BaseException:
            if created:
                shutil.rmtree(data_dir, ignore_errors=True)
            raise
    config_toml["database"]["url"] = url
    tmp = data_dir / f".{CONFIG_FILE}.tmp"
    tmp.write_text(tomli_w.dumps(config_toml), "utf-8")
    tmp.replace(data_dir / CONFIG_FILE)  # last: its presence marks a finished restore, as after init
    return load(data_dir)


# --- command line ---

def cmd_backup(args: argparse.Namespace) -> int:
    summary = asyncio.run(backup_node(load(args.data), args.file))
    rows = sum(summary.tables.values())
    print(f"Backed up {args.data} to {summary.archive}: {rows} rows in {len(summary.tables)} tables, "
          f"schema at {summary.migrations[-1] if summary.migrations else 'none'}. It holds the private keys.")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    config = asyncio.run(restore_node(args.file, args.data, args.database_url))
    print(f"Restored {config.name!r} ({config.base_url}) into {config.data_dir}")
    return 0


def add_backup_commands(commands: Any) -> None:
    """``edufed backup`` and ``edufed restore`` on the parser's subcommands."""
    backup = commands.add_parser("backup", help="write the node's config, keys, admin token and database to one "
                                 "tar.gz (keep it like the keys)")
    backup.add_argument("--data", type=Path, required=True)
    backup.add_argument("file", type=Path, help="the archive to write, e.g. node-2025-01-31.tar.gz")
    backup.set_defaults(func=cmd_backup)
    restore = commands.add_parser("restore", help="recreate a node from a backup in a new data folder and an "
                                  "empty database")
    restore.add_argument("--data", type=Path, required=True, help="data folder to create (absent or empty)")
    restore.add_argument("file", type=Path, help="an archive written by `edufed backup`")
    restore.add_argument("--database-url", help="an empty database (default: $EDUFED_DATABASE_URL, else the "
                         "backed-up URL; a node's own SQLite file goes into the new folder)")
    restore.set_defaults(func=cmd_restore)
