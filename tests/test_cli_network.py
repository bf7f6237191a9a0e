"""The ``edufed`` commands that reach other nodes, as a newcomer meets them on loopback: each takes
``--allow-private-networks`` and honours ``EDUFED_ALLOW_PRIVATE_NETWORKS=1``, and a refusal names the flag;
``edufed serve`` says where it listens."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

from node.bootstrap import init_node
from node.catalog.importer import import_file
from node.config import ALLOW_PRIVATE_ENV
from tests.harness import free_port, running_node

FLAG = "--allow-private-networks"


async def edufed(*args: str, private_env: bool = False, timeout: float = 120) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of an ``edufed`` process; the node under test keeps serving meanwhile."""
    env = {k: v for k, v in os.environ.items() if k != ALLOW_PRIVATE_ENV}
    if private_env:
        env[ALLOW_PRIVATE_ENV] = "1"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "node.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_serve_says_where_it_listens_and_fails_without_a_data_folder(tmp_path: Path, database_url: str) -> None:
    status, _, err = await edufed("serve", "--data", str(tmp_path / "missing"))
    assert status == 2 and "Not an EduFed data folder" in err

    data, port = tmp_path / "node", free_port()
    await init_node(data, base_url=f"http://127.0.0.1:{port}", name="Banner", database_url=database_url)
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "node.cli", "serve", "--data", str(data), "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert server.stdout is not None
        banner = (await asyncio.wait_for(server.stdout.readline(), 60)).decode()
    finally:
        server.terminate()
        assert await asyncio.wait_for(server.wait(), 30) == 0  # SIGTERM is a clean stop
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        status, _, err = await edufed("serve", "--data", str(data), "--port", str(taken.getsockname()[1]))
    assert status == 2 and err.startswith("edufed: Cannot listen [port]: 127.0.0.1:") and "Traceback" not in err
    assert f"listening on http://127.0.0.1:{port}" in banner
    assert f"data folder {data.resolve()}" in banner
    kind = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
    assert f"database {kind} " in banner and "@" not in banner.split("database", 1)[1]  # no credentials shown


async def test_peer_add_refuses_loopback_unless_allowed(tmp_path: Path, database_url: str) -> None:
    data = tmp_path / "node"
    await init_node(data, base_url="https://learn.example.org", name="Peers", database_url=database_url)
    for url in ("http://127.0.0.1:9499", "http://2130706433:9499", "http://localhost:9499", "http://[::1]:9499"):
        status, _, err = await edufed("peer", "add", "--data", str(data), url)
        assert status == 2 and FLAG in err and "EDUFED_ALLOW_PRIVATE_NETWORKS=1" in err, (url, err)
    status, _, err = await edufed("peer", "add", "--data", str(data), "http://127.0.0.1:99999")
    assert status == 2 and "Not an http(s) URL" in err
    status, out, _ = await edufed("peer", "list", "--data", str(data))
    assert "No peers yet" in out  # nothing refused was stored

    assert (await edufed("peer", "add", "--data", str(data), "http://127.0.0.1:9499", FLAG))[0] == 0
    assert (await edufed("peer", "add", "--data", str(data), "http://127.0.0.2:9499", private_env=True))[0] == 0
    status, out, _ = await edufed("peer", "list", "--data", str(data))
    assert "http://127.0.0.1:9499" in out and "http://127.0.0.2:9499" in out


async def test_import_conformance_sync_and_verify_reach_a_loopback_node_when_allowed(
    tmp_path: Path, database_url: str
) -> None:
    async with running_node(tmp_path / "source", database_url, "Source") as source:
        rows = tmp_path / "rows.csv"
        rows.write_text("type,id,name\nCourse,c1,Pottery\nCourse,c2,Weaving\n", "utf-8")
        assert (await import_file(source.config, source.services.store, rows))[0] == 2
        target = tmp_path / "target"  # on SQLite, made in its own process as an operator would
        assert (await edufed("init", "--data", str(target), "--base-url", "https://learn.example.org", "--name",
                             "Target", "--database-url", f"sqlite://{tmp_path / 'target.sqlite3'}"))[0] == 0
        oai = f"{source.base_url}/oai"

        status, _, err = await edufed("import", "-q", "--data", str(target), oai)
        assert status == 2 and FLAG in err
        status, out, err = await edufed("import", "-q", "--data", str(target), oai, FLAG)
        assert status == 0 and "Harvested 2 record(s)" in out, err
        status, out, err = await edufed("import", "-q", "--data", str(target), oai, private_env=True)
        assert status == 0 and "Harvested 2 record(s)" in out, err

        status, _, err = await edufed("conformance", "-q", source.base_url)
        assert status == 2 and FLAG in err
        status, out, err = await edufed("conformance", "-q", "--json", source.base_url, private_env=True)
        assert status == 0, out[-2000:] + err[-2000:]

        assert (await edufed("sync", "-q", "--data", str(target), FLAG))[0] == 0

        wallet = tmp_path / "wallet"
        status, did, err = await edufed("wallet", "init", "--wallet", str(wallet))
        assert status == 0, err
        subject = did.strip().split()[-1]
        status, credential, err = await edufed("issue", "--data", str(source.config.data_dir), "--subject", subject,
                                               "--name", "Pottery", "--credits", "2", "--system", "ECTS")
        assert status == 0, err
        path = tmp_path / "pottery.json"
        path.write_text(credential, "utf-8")
        status, out, err = await edufed("verify", str(path))
        assert status == 1 and FLAG in out + err  # the issuer's did:web is on loopback: refused, and said why
        assert (await edufed("verify", str(path), FLAG))[0] == 0
        assert (await edufed("verify", str(path), private_env=True))[0] == 0
