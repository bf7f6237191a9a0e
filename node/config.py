"""A node's configuration: one TOML file in its data folder, written by ``edufed init``.

Secrets do not live here: the signing keys are separate 0600 files and the admin token is stored only as a
SHA-256 hash, so the config can be read, copied and shared for support without leaking anything.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomli_w

from node.errors import BadRequest

CONFIG_FILE = "edufed.toml"
DATABASE_ENV = "EDUFED_DATABASE_URL"
ALLOW_PRIVATE_ENV = "EDUFED_ALLOW_PRIVATE_NETWORKS"

DEFAULT_PORT = 8000


@dataclass(frozen=True)
class Limits:
    """Bounds on every input, so no request can exhaust the node."""

    max_body_bytes: int = 1024 * 1024
    max_json_depth: int = 32
    max_import_bytes: int = 512 * 1024 * 1024
    work_seconds: float = 4.0  # CPU work for one request (canonicalization above all) is stopped after this
    verify_per_client: int = 4  # unauthenticated verifications in flight per client address (then 429)
    verify_total: int = 16  # ... and from all clients together (then 503)
    retry_after_seconds: int = 2  # the Retry-After of those 429 and 503 answers


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take to send a request, and how many connections one address may hold
    (``[server]`` in edufed.toml; 0 turns a limit off)."""

    header_timeout_seconds: float = 10.0  # from a request's first byte (or the connection) to its last header
    body_timeout_seconds: float = 60.0  # from the headers to the last byte of the body
    max_connections_per_client: int = 64  # per client IP address; behind a reverse proxy, the proxy's address


@dataclass(frozen=True)
class FederationPolicy:
    """Whom a node talks to and how often. Hosts are ``host[:port]`` as in a base URL."""

    seeds: tuple[str, ...] = ()  # base URLs to start gossip from
    allow: tuple[str, ...] = ()  # when not empty, only these hosts are followed or accepted
    deny: tuple[str, ...] = ()  # never followed, never accepted (refused with 403)
    auto_follow: bool = True  # follow every allowed peer that gossip finds, up to max_peers
    max_peers: int = 50
    max_hops: int = 2  # how far gossip goes from a seed
    discovery_per_cycle: int = 5  # peers checked per discovery cycle (rate limit)
    discovery_interval_seconds: float = 20.0
    sync_interval_seconds: float = 60.0
    replay_window_seconds: int = 300
    delivery_lease_seconds: float = 60.0  # a worker that dies mid-delivery leaves its rows to others after this
    tombstone_retention_days: int = 0  # 0 keeps Tombstones for ever (OAI-PMH deletedRecord "persistent")

    def allows(self, host: str) -> bool:
        return host not in self.deny and (not self.allow or host in self.allow)


@dataclass(frozen=True)
class CredentialPolicy:
    """How this node verifies credentials."""

    status_cache_seconds: float = 300.0  # how long a fetched status list is trusted before it is fetched again


DEFAULT_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
DEFAULT_TILE_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'


@dataclass(frozen=True)
class WebOptions:
    """The learning map's tile server (the page shows its points without it too)."""

    tile_url: str = DEFAULT_TILE_URL
    tile_attribution: str = DEFAULT_TILE_ATTRIBUTION  # shown as HTML: an operator's setting, never record data


@dataclass(frozen=True)
class NodeConfig:
    data_dir: Path
    name: str
    base_url: str
    database_url: str
    admin_token_sha256: str
    country: str | None = None
    city: str | None = None
    languages: tuple[str, ...] = ("en",)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    allow_private_networks: bool = False
    limits: Limits = field(default_factory=Limits)
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)
    federation: FederationPolicy = field(default_factory=FederationPolicy)
    credentials: CredentialPolicy = field(default_factory=CredentialPolicy)
    web: WebOptions = field(default_factory=WebOptions)

    @property
    def effective_database_url(self) -> str:
        """``EDUFED_DATABASE_URL`` wins over the file, so one data folder can move to PostgreSQL."""
        return os.environ.get(DATABASE_ENV) or self.database_url

    @property
    def private_networks_allowed(self) -> bool:
        return self.allow_private_networks or os.environ.get(ALLOW_PRIVATE_ENV) == "1"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def records_base(self) -> str:
        return f"{self.base_url}/records/"


def normalize_base_url(url: str) -> str:
    """Check that ``url`` is an http(s) origin without path, query or fragment, and drop a trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest("Base URL must be an http or https URL", detail=url, field="base-url")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise BadRequest(
            "Base URL must be an origin (scheme, host and port only)",
            detail=f"{url}: a did:web identity is bound to the origin",
            field="base-url",
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


def default_database_url(data_dir: Path) -> str:
    return f"sqlite://{(data_dir / 'edufed.sqlite3').resolve()}"


def save(config: NodeConfig) -> None:
    raw: dict[str, Any] = {
        "node": {
            "name": config.name,
            "base_url": config.base_url,
            "languages": list(config.languages),
            **({"country": config.country} if config.country else {}),
            **({"city": config.city} if config.city else {}),
        },
        "database": {"url": config.database_url},
        "admin": {"token_sha256": config.admin_token_sha256},
        "server": {"host": config.host, "port": config.port, **asdict(config.connections)},
        "network": {"allow_private_networks": config.allow_private_networks},
        "limits": asdict(config.limits),
        "federation": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config.federation).items()},
        "credentials": asdict(config.credentials),
        "web": asdict(config.web),
    }
    path = config.data_dir / CONFIG_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tomli_w.dumps(raw), "utf-8")
    tmp.replace(path)


def load(data_dir: Path) -> NodeConfig:
    path = data_dir / CONFIG_FILE
    if not path.is_file():
        raise BadRequest(
            "Not an EduFed data folder", detail=f"{path} does not exist; run `edufed init` first", field="data"
        )
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
        node = raw["node"]
        server = raw.get("server", {})
        return NodeConfig(
            data_dir=data_dir.resolve(),
            name=node["name"],
            base_url=normalize_base_url(node["base_url"]),
            country=node.get("country"),
            city=node.get("city"),
            languages=tuple(node.get("languages", ["en"])),
            database_url=raw["database"]["url"],
            admin_token_sha256=raw["admin"]["token_sha256"],
            host=server.get("host", "127.0.0.1"),
            port=int(server.get("port", DEFAULT_PORT)),
            connections=ConnectionLimits(**{k: v for k, v in server.items() if k not in ("host", "port")}),
            allow_private_networks=bool(raw.get("network", {}).get("allow_private_networks", False)),
            limits=Limits(**raw.get("limits", {})),
            federation=_federation(raw.get("federation", {})),
            credentials=CredentialPolicy(**raw.get("credentials", {})),
            web=WebOptions(**raw.get("web", {})),
        )
    except (KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise BadRequest("Invalid configuration file", detail=f"{path}: {exc}", field="config") from exc


def _federation(raw: dict[str, Any]) -> FederationPolicy:
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return FederationPolicy(**values)


class PolicySource:
    """The federation policy as ``edufed.toml`` says now: ``edufed policy`` edits the file and a running node
    picks the change up (deny-lists take effect on the next request) without a restart."""

    def __init__(self, config: NodeConfig) -> None:
        self._path = config.data_dir / CONFIG_FILE
        self._policy = config.federation
        self._stamp = self._mtime()

    def _mtime(self) -> int:
        try:
            return self._path.stat().st_mtime_ns
        except OSError:
            return -1

    def __call__(self) -> FederationPolicy:
        stamp = self._mtime()
        if stamp != self._stamp:
            self._stamp = stamp
            with contextlib.suppress(BadRequest):  # a half-edited file: keep the last good policy
                self._policy = load(self._path.parent).federation
        return self._policy


def with_server(config: NodeConfig, host: str | None, port: int | None) -> NodeConfig:
    return replace(config, host=host or config.host, port=port if port is not None else config.port)
