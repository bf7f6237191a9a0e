"""Backup and restore of a node: a restored node is the same node (same keys, records, credentials, token).

The node under test holds an own record, a mirrored record, issued credentials (one revoked) and a peer. It is
backed up while serving, restored into new folders (on the test database kind, and on SQLite from whatever
the node ran on), served again on its base URL, and must answer exactly as before.
"""

from __future__ import annotations

import asyncio
import json
import stat
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from node.backup import DERIVED_TABLES, add_backup_commands, backup_node, dumped_models, restore_node
from node.bootstrap import ADMIN_TOKEN_FILE
from node.config import load
from node.credentials.wallet import Wallet
from node.errors import BadRequest, Conflict
from node.store.records import Store
from tests.conftest import MakeDatabaseUrl
from tests.harness import FAST, RunningNode, eventually, running_node
from tests.test_credentials import achievement_credential, issue, set_status, verify_on


def course(name: str) -> dict[str, Any]:
    return {"@context": "https://w3id.org/edufed/v1", "type": "Course", "name": {"en": name},
            "keywords": ["ceramics"]}


async def get_json(node: RunningNode, path: str, **params: str) -> tuple[int, Any]:
    async with node.http.get(f"{node.base_url}{path}", params=params) as response:
        return response.status, await response.json(content_type=None)


async def observe(node: RunningNode, own: str, mirrored: str, credentials: list[dict[str, Any]]) -> dict[str, Any]:
    """What a node answers about everything a backup must keep."""
    verdicts = [await verify_on(node, c) for c in credentials]
    status_list = credentials[0]["credentialStatus"][0]["statusListCredential"]
    peers = {p["url"]: p["state"] for p in (await node.federation_status())["peers"]}
    return {
        "own": await node.record(own),
        "mirrored": await node.record(mirrored),
        "did": await get_json(node, "/.well-known/did.json"),
        "status_list": await get_json(node, status_list.removeprefix(node.base_url)),
        "verdicts": [(status, verdict["verified"]) for status, verdict in verdicts],
        "peers": peers,
    }


async def table_lines(config_dir: Path, database_url: str) -> dict[str, list[dict[str, Any]]]:
    """Every dumped row of a node's database, through a backup of it (the restore's round trip)."""
    archive = config_dir.parent / f"{config_dir.name}-check.tar.gz"
    config = replace(load(config_dir), database_url=database_url)
    await backup_node(config, archive)
    return archive_tables(archive)


def archive_tables(archive: Path) -> dict[str, list[dict[str, Any]]]:
    with tarfile.open(archive) as tar:
        return {m.name: [json.loads(line) for line in tar.extractfile(m) or []]
                for m in tar.getmembers() if m.name.startswith("tables/")}


@pytest.mark.parametrize("via_cli", [False, True], ids=["api", "cli"])
async def test_a_restored_node_serves_the_same_records_keys_credentials_and_token(
    tmp_path: Path, make_database_url: MakeDatabaseUrl, via_cli: bool
) -> None:
    wallet = Wallet(tmp_path / "wallet")
    wallet.init()
    async with running_node(tmp_path / "origin", await make_database_url(), "Origin") as origin:
        policy = replace(FAST, seeds=(origin.base_url,))
        async with running_node(tmp_path / "node", await make_database_url(), "Node", federation=policy) as node:
            own = (await node.publish(course("Raku firing")))["id"]
            mirrored = (await origin.publish(course("Glaze chemistry")))["id"]

            async def mirrors() -> bool:
                return (await node.record(mirrored))[0] == 200

            await eventually(mirrors, what="the node to mirror the origin's record")
            kept = await issue(node, achievement_credential(wallet.did, "Wheel throwing", 2))
            revoked = await issue(node, achievement_credential(wallet.did, "Kiln safety", 1))
            await set_status(node, revoked["id"], "revoked")
            credentials = [kept, revoked]
            before = await observe(node, own, mirrored, credentials)
            archive = tmp_path / "node.tar.gz"
            if via_cli:  # the same functions behind `edufed backup --data DIR FILE`
                await asyncio.to_thread(run_cli, ["backup", "--data", str(node.config.data_dir), str(archive)])
            else:
                await backup_node(node.config, archive)  # while serving: one consistent snapshot
            original_url = node.config.database_url
        assert before["verdicts"] == [(200, True), (422, False)]
        assert before["peers"][origin.base_url] == "following"
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600  # it holds the private keys

        # Restoring onto the database still in use is refused, and leaves no half-made folder behind.
        with pytest.raises(Conflict):
            await restore_node(archive, tmp_path / "clash", original_url)
        assert not (tmp_path / "clash").exists()

        targets = {"same-kind": await make_database_url(), "sqlite": f"sqlite://{tmp_path / 'restored.sqlite3'}"}
        for name, url in targets.items():
            folder = tmp_path / f"restored-{name}"
            if via_cli:
                await asyncio.to_thread(run_cli, ["restore", "--data", str(folder), str(archive),
                                                  "--database-url", url])
            else:
                await restore_node(archive, folder, url)
            assert load(folder).database_url == url
            keys = sorted((tmp_path / "node" / "keys").iterdir())
            for key in keys:  # keys come back with their modes (0600 PEMs)
                copy = folder / "keys" / key.name
                assert copy.read_bytes() == key.read_bytes(), key.name
                assert stat.S_IMODE(copy.stat().st_mode) == stat.S_IMODE(key.stat().st_mode)
            assert stat.S_IMODE((folder / ADMIN_TOKEN_FILE).stat().st_mode) == 0o600
            # Row for row what was dumped, whichever database it now lives in.
            assert await table_lines(folder, url) == archive_tables(archive)

            async with running_node(folder, url, federation=policy) as restored:
                assert restored.base_url == node.base_url
                after = await observe(restored, own, mirrored, credentials)
                assert after == before, name
                async with restored.http.get(f"{restored.base_url}/api/search", params={"q": "raku"}) as response:
                    found = await response.json()
                    assert [item["id"] for item in found["items"]] == [own], found  # the full-text index too
                # The old admin token still works, and new rows take new ids (sequences were moved on).
                newer = await restored.publish(course("Smoke firing"))
                assert newer["id"] != own
                more = await issue(restored, achievement_credential(wallet.did, "Pit firing", 1))
                assert (await verify_on(restored, more))[0] == 200


def run_cli(argv: list[str]) -> None:
    """Parse and run like ``edufed`` does, with the backup commands registered as node/cli.py registers them."""
    import argparse

    parser = argparse.ArgumentParser(prog="edufed")
    add_backup_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    assert args.func(args) == 0


async def test_restore_refuses_a_folder_that_is_not_empty_and_an_unsafe_archive(
    tmp_path: Path, database_url: str, make_database_url: MakeDatabaseUrl
) -> None:
    async with running_node(tmp_path / "node", database_url) as node:
        await backup_node(node.config, tmp_path / "ok.tar.gz")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("x")
    with pytest.raises(Conflict):
        await restore_node(tmp_path / "ok.tar.gz", busy, await make_database_url())

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(tmp_path / "ok.tar.gz") as good, tarfile.open(evil, "w:gz") as bad:
        for member in good.getmembers():
            bad.addfile(member, good.extractfile(member) if member.isfile() else None)
        escape = tarfile.TarInfo("files/../../escaped")
        bad.addfile(escape, None)
    with pytest.raises(BadRequest):
        await restore_node(evil, tmp_path / "target", await make_database_url())
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "target").exists()


async def test_every_table_is_dumped_or_rebuilt(database_url: str) -> None:
    """A table added without a model (raw SQL in a migration) would silently be left out of backups."""
    store = await Store.open(database_url)
    try:
        if store.dialect == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        else:
            sql = "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'"
        rows = await store.connection().execute_query_dict(sql)
    finally:
        await store.close()
    tables = {row["name"] for row in rows}
    tables = {t for t in tables if not t.startswith("record_fts_")}  # FTS5's own shadow tables
    assert tables - DERIVED_TABLES == {m._meta.db_table for m in dumped_models()}
