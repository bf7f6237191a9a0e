"""The ``edufed`` command as an operator runs it: real processes, real files, a real served node."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from node.config import load
from node.store.records import Store
from node.trust.proofs import verify
from tests.conftest import MakeDatabaseUrl
from tests.harness import free_port


def edufed(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def post_json(url: str, body: dict[str, Any], token: str) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/ld+json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_makes_a_private_data_folder_and_prints_the_token_once(tmp_path: Path, database_url: str) -> None:
    data = tmp_path / "node"
    done = edufed("init", "--data", str(data), "--base-url", "https://learn.example.org/", "--name", "Learn",
                  "--country", "FI", "--city", "Helsinki", "--database-url", database_url)
    assert done.returncode == 0, done.stderr
    token = (data / "admin-token").read_text().strip()
    assert done.stdout.count(token) == 1
    assert mode(data / "admin-token") == 0o600
    keys = [p for p in (data / "keys").iterdir() if p.suffix == ".pem"]
    assert len(keys) == 1 and mode(keys[0]) == 0o600
    config = load(data)
    assert config.base_url == "https://learn.example.org"
    assert token not in (data / "edufed.toml").read_text()  # only its hash is kept in the config

    again = edufed("init", "--data", str(data), "--base-url", "https://other.example", "--name", "X",
                   "--database-url", database_url)
    assert again.returncode != 0 and load(data).base_url == "https://learn.example.org"


def test_init_refuses_a_base_url_with_a_path(tmp_path: Path) -> None:
    """[ID-2] the DID is bound to an origin."""
    done = edufed("init", "--data", str(tmp_path / "n"), "--base-url", "https://x.example/catalog", "--name", "X")
    assert done.returncode == 2 and "base-url" in done.stderr.lower()
    assert not (tmp_path / "n" / "edufed.toml").exists()


def test_served_node_rotates_keys_and_old_records_still_verify(tmp_path: Path, database_url: str) -> None:
    """[ID-6] [ID-7] a record signed before a rotation verifies after it; the new key signs new records."""
    port = free_port()
    data = tmp_path / "node"
    base = f"http://127.0.0.1:{port}"
    assert edufed("init", "--data", str(data), "--base-url", base, "--name", "Rotating",
                  "--database-url", database_url).returncode == 0
    token = (data / "admin-token").read_text().strip()
    server = subprocess.Popen([sys.executable, "-m", "node.cli", "serve", "--data", str(data), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert get_json(f"{base}/healthz")["status"] == "ok"
                break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.2)
        course = {"@context": "https://w3id.org/edufed/v1", "type": "Course", "name": {"en": "Before rotation"}}
        before = post_json(f"{base}/api/records", course, token)

        rotated = edufed("key", "rotate", "--data", str(data))
        assert rotated.returncode == 0, rotated.stderr
        after = post_json(f"{base}/api/records", {**course, "name": {"en": "After rotation"}}, token)
        did_document = get_json(f"{base}/.well-known/did.json")
    finally:
        server.terminate()
        server.wait(10)
    methods = did_document["verificationMethod"]
    assert len(methods) == 2 and "revoked" in methods[0] and "revoked" not in methods[1]
    assert before["proof"]["verificationMethod"] == methods[0]["id"]
    assert after["proof"]["verificationMethod"] == methods[1]["id"]
    for record in (before, after):
        assert verify(record, lambda did: did_document).verified


def test_environment_database_url_overrides_the_config(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> None:
    """EDUFED_DATABASE_URL wins over the database named in edufed.toml (an operator's deployment switch)."""
    data = tmp_path / "node"
    configured, override = asyncio.run(make_database_url()), asyncio.run(make_database_url())
    assert edufed("init", "--data", str(data), "--base-url", "https://learn.example.org", "--name", "Env",
                  "--database-url", configured).returncode == 0
    rows = tmp_path / "one.csv"
    rows.write_text("type,id,name@en\nCourse,c1,Pottery\n", "utf-8")
    done = edufed("import", "--data", str(data), str(rows), "-q", env={"EDUFED_DATABASE_URL": override})
    assert done.returncode == 0, done.stderr

    async def count(url: str) -> int:
        store = await Store.open(url)
        try:
            return await store.count()
        finally:
            await store.close()

    assert asyncio.run(count(override)) == 1
    assert asyncio.run(count(configured)) == 0
