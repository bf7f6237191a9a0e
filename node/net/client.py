"""The one outbound HTTP client of a node: every federation request goes through :class:`SafeClient`.

Why one client: a node fetches URLs that strangers choose (actor ids, inbox URLs, peer lists, redirects). Without
a guard, any peer could make the node call its own admin API, a cloud metadata endpoint or the operator's LAN
(server-side request forgery). The guard refuses loopback, private, link-local, CGNAT, multicast, reserved and
unspecified addresses, also when they hide inside IPv6 (IPv4-mapped, 6to4, Teredo, NAT64).

The check runs on the addresses actually connected to: a resolver wrapper filters what DNS returns, so a host
name that resolves to a public address when checked and to 127.0.0.1 when connected (DNS rebinding) cannot slip
through; literal IPs in URLs (which aiohttp never resolves) are checked before connecting. Redirects are followed
by hand so each hop is checked again. Bodies are read with a cap (after decompression, so a gzip bomb stops at
the cap) and the whole request, redirects included, has one deadline. No cookies are kept.

Errors::

    FetchError            refused, failed, too large, timed out, or (get_json / json) not the expected answer
      .permanent == True  bad scheme or URL, refused address, 404/410, too many redirects: a retry will not help
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from node.net.addresses import is_public_address

_ALLOWED_SCHEMES = ("http", "https")
_REDIRECTS = (301, 302, 303, 307, 308)
_PERMANENT_STATUSES = (404, 410)
_CHUNK = 64 * 1024
_CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")
# Said with every refused address, so whoever meets the refusal learns how to lift it where that is intended.
PRIVATE_HINT = ("loopback and private networks are reached only with --allow-private-networks, "
                "EDUFED_ALLOW_PRIVATE_NETWORKS=1 or [network] allow_private_networks = true")
DEFAULT_ACCEPT = "application/activity+json, application/ld+json;q=0.9, application/json;q=0.8"


@dataclass(frozen=True)
class FetchPolicy:
    """Limits of outbound requests. ``allow_private`` lifts the address guard entirely (tests, the demo);
    ``allowed_networks`` (CIDR strings) lifts it for chosen networks only, e.g. an operator's LAN peers."""

    allow_private: bool = False
    timeout_seconds: float = 10.0
    max_bytes: int = 2 * 1024 * 1024
    max_redirects: int = 3
    user_agent: str = "EduFed/0.1"
    allowed_networks: tuple[str, ...] = ()


class FetchError(Exception):
    """An outbound request that was refused or failed; ``permanent`` says whether retrying can help."""

    def __init__(self, url: str, reason: str, *, status: int | None = None, permanent: bool = False) -> None:
        super().__init__(f"{url}: {reason}" + (f" (HTTP {status})" if status is not None else ""))
        self.url = url
        self.reason = reason
        self.status = status
        self.permanent = permanent


@dataclass(frozen=True)
class FetchResponse:
    """A complete response. ``headers`` is a case-insensitive ``multidict.CIMultiDictProxy`` (repeated fields
    kept); ``url`` is the final URL after redirects."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    def json(self) -> Any:
        """The body as JSON; FetchError (not permanent) when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FetchError(self.url, f"response is not JSON ({exc})", status=self.status) from None


# -- the address guard ------------------------------------------------------------------------------------------


class _Guard:
    """Decides whether an address may be connected to under a policy."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self._networks = [ipaddress.ip_network(net, strict=False) for net in policy.allowed_networks]

    def allows(self, address: str) -> bool:
        if self.policy.allow_private:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if any(ip.version == net.version and ip in net for net in self._networks):
            return True
        return is_public_address(ip)


class AddressRefused(OSError):
    """Raised inside the connector when every address of a host is refused; an OSError so aiohttp passes it up
    as the cause of its connection error, where :class:`SafeClient` finds it."""

    def __init__(self, host: str, addresses: list[str]) -> None:
        super().__init__(f"{host} resolves only to refused addresses ({', '.join(addresses) or 'none'}); "
                         f"{PRIVATE_HINT}")
        self.host = host


class _GuardedResolver(AbstractResolver):
    """Wraps a resolver and drops the addresses the guard refuses, at connection time."""

    def __init__(self, inner: AbstractResolver, guard: _Guard) -> None:
        self._inner = inner
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [result for result in results if self._guard.allows(result["host"])]
        if not allowed:
            raise AddressRefused(host, [result["host"] for result in results])
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _refusal(exc: BaseException) -> AddressRefused | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressRefused):
            return seen
        os_error = getattr(seen, "os_error", None)
        if isinstance(os_error, AddressRefused):
            return os_error
        seen = seen.__cause__ or seen.__context__
    return None


# -- the client -------------------------------------------------------------------------------------------------


class SafeClient:
    """Outbound HTTP for federation; use as ``async with SafeClient(policy) as client`` or ``start()``/``close()``.

    ``resolver`` replaces the system resolver under the guard (tests point fake host names at loopback ports);
    it never bypasses the guard.
    """

    def __init__(self, policy: FetchPolicy | None = None, *, resolver: AbstractResolver | None = None) -> None:
        self.policy = policy or FetchPolicy()
        self._guard = _Guard(self.policy)
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is not None:
            return
        inner = self._resolver or DefaultResolver()
        connector = aiohttp.TCPConnector(resolver=_GuardedResolver(inner, self._guard), ttl_dns_cache=30)
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,  # an environment proxy would connect for us, out of the guard's sight
            timeout=aiohttp.ClientTimeout(total=self.policy.timeout_seconds),
            headers={"User-Agent": self.policy.user_agent},
            auto_decompress=True,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> SafeClient:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def check_url(self, url: str) -> URL:
        """The parsed URL if the scheme and a literal IP host are acceptable; permanent FetchError otherwise.
        Host names are checked later, on the addresses they resolve to."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError) as exc:
            raise FetchError(str(url), f"invalid URL ({exc})", permanent=True) from None
        if parsed.scheme not in _ALLOWED_SCHEMES:
            raise FetchError(url, f"scheme {parsed.scheme!r} is not http or https", permanent=True)
        if not parsed.host:
            raise FetchError(url, "URL has no host", permanent=True)
        if parsed.user is not None or parsed.password is not None:
            raise FetchError(url, "credentials in URLs are not sent", permanent=True)
        host = parsed.host.split("%", 1)[0]
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None and not self._guard.allows(str(literal)):
            raise FetchError(url, f"address {literal} is refused; {PRIVATE_HINT}", permanent=True)
        return parsed

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = True,
    ) -> FetchResponse:
        """Send one request (following up to ``max_redirects`` redirects, each checked) and return the response
        whatever its status. FetchError only when refused, failed, too large or past the deadline."""
        if self._session is None:
            raise RuntimeError("SafeClient is not started")
        try:
            async with asyncio.timeout(self.policy.timeout_seconds):
                return await self._follow(method.upper(), url, body, CIMultiDict(headers or {}), follow_redirects)
        except TimeoutError:
            raise FetchError(url, f"no complete answer within {self.policy.timeout_seconds} s") from None

    async def _follow(
        self, method: str, url: str, body: bytes | None, headers: CIMultiDict[str], follow_redirects: bool
    ) -> FetchResponse:
        current = self.check_url(url)
        for hop in range(self.policy.max_redirects + 1):
            status, response_headers, data = await self._send(method, current, body, headers)
            location = response_headers.get("Location")
            if not follow_redirects or status not in _REDIRECTS or not location:
                return FetchResponse(status, response_headers, data, str(current))
            if hop == self.policy.max_redirects:
                break
            try:
                target = current.join(URL(location))
            except ValueError:
                raise FetchError(str(current), f"bad redirect Location {location!r}", status=status) from None
            target = self.check_url(str(target))
            if status == 303 or (status in (301, 302) and method == "POST"):
                method, body = ("HEAD" if method == "HEAD" else "GET"), None
                for name in ("Content-Type", "Content-Length", "Content-Digest", "Digest"):
                    headers.popall(name, None)
            headers.popall("Host", None)  # belongs to the URL; a caller-set Host would point the next hop astray
            if target.origin() != current.origin():
                for name in _CREDENTIAL_HEADERS:
                    headers.popall(name, None)
            current = target
        raise FetchError(url, f"more than {self.policy.max_redirects} redirects", permanent=True)

    async def _send(
        self, method: str, url: URL, body: bytes | None, headers: CIMultiDict[str]
    ) -> tuple[int, CIMultiDictProxy[str], bytes]:
        assert self._session is not None
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, allow_redirects=False
            ) as response:
                declared = response.content_length
                if declared is not None and declared > self.policy.max_bytes:
                    raise FetchError(
                        str(url),
                        f"body of {declared} bytes is over the {self.policy.max_bytes} byte limit",
                        status=response.status,
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(_CHUNK):
                    size += len(chunk)
                    if size > self.policy.max_bytes:
                        raise FetchError(
                            str(url), f"body is over the {self.policy.max_bytes} byte limit", status=response.status
                        )
                    chunks.append(chunk)
                return response.status, CIMultiDictProxy(CIMultiDict(response.headers)), b"".join(chunks)
        except aiohttp.ClientError as exc:
            refused = _refusal(exc)
            if refused is not None:
                raise FetchError(str(url), str(refused), permanent=True) from None
            raise FetchError(str(url), f"{type(exc).__name__}: {exc}") from None
        except AddressRefused as exc:
            raise FetchError(str(url), str(exc), permanent=True) from None
        except OSError as exc:
            raise FetchError(str(url), f"{type(exc).__name__}: {exc}") from None

    async def get_json(self, url: str, *, accept: str = DEFAULT_ACCEPT) -> Any:
        """GET and parse JSON; FetchError carrying the status for any answer >= 400 (permanent for 404/410)."""
        response = await self.request("GET", url, headers={"Accept": accept})
        if response.status >= 400:
            raise FetchError(
                response.url,
                f"answered HTTP {response.status}",
                status=response.status,
                permanent=response.status in _PERMANENT_STATUSES,
            )
        return response.json()
