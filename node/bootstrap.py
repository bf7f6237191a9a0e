"""Creating a node's data folder: config, signing key, database schema and admin token."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from node.config import DEFAULT_PORT, NodeConfig, default_database_url, normalize_base_url, save
from node.errors import Conflict
from node.store.records import Store
from node.trust.admin_token import new_token, token_hash
from node.trust.keyring import KeyRing

ADMIN_TOKEN_FILE = "admin-token"


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")


async def init_node(
    data_dir: Path,
    *,
    base_url: str,
    name: str,
    country: str | None = None,
    city: str | None = None,
    languages: tuple[str, ...] = ("en",),
    database_url: str | None = None,
    allow_private_networks: bool = False,
) -> tuple[NodeConfig, str]:
    """Create everything a node needs; returns its config and the admin token (which is not stored in clear
    anywhere but ``DIR/admin-token``). The config file is written last: its presence marks a finished init."""
    data_dir = data_dir.resolve()
    if (data_dir / "edufed.toml").exists():
        raise Conflict("Data folder already initialised", detail=str(data_dir), field="data")
    origin = normalize_base_url(base_url)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = new_token()
    config = NodeConfig(
        data_dir=data_dir,
        name=name,
        base_url=origin,
        country=country,
        city=city,
        languages=languages,
        database_url=database_url or default_database_url(data_dir),
        admin_token_sha256=token_hash(token),
        allow_private_networks=allow_private_networks,
        port=urlsplit(origin).port or DEFAULT_PORT,  # a base URL with a port says where to listen
    )
    if not (config.keys_dir / "keyring.json").exists():
        KeyRing.create(config.keys_dir)
    store = await Store.open(config.effective_database_url)
    await store.close()
    _write_secret(data_dir / ADMIN_TOKEN_FILE, token)
    save(config)
    return config, token
