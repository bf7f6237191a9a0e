"""The outbound client against real aiohttp servers on loopback: the address guard (literal IPs, resolved names,
every redirect hop), redirect limits, size caps, deadlines, and JSON handling."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from node.federation.http_signatures import (
    SignatureError,
    parse_signature,
    sign_cavage,
    sign_rfc9421,
    verify_signature_params,
)
from node.net.addresses import is_private_host, is_public_address
from node.net.client import (
    AddressRefused,
    FetchError,
    FetchPolicy,
    SafeClient,
    _Guard,
    _GuardedResolver,
)
from node.trust.multikey import Ed25519Key
from node.trust.rsa_keys import RsaKey

LOOPBACK_ONLY = FetchPolicy(allowed_networks=("127.0.0.1/32",))  # the test server counts as "public", nothing else


class FakeResolver(AbstractResolver):
    """Points made-up host names at chosen addresses, as a hostile DNS server could."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.names:
            raise OSError(f"unknown host {host}")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in self.names[host]
        ]

    async def close(self) -> None:
        return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


HITS = web.AppKey("hits", list[str])


async def serve(routes: dict[str, Handler], hits: list[str] | None = None) -> TestServer:
    app = web.Application()
    app[HITS] = [] if hits is None else hits
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    hits: list[str] = []

    async def record(request: web.Request) -> None:
        hits.append(f"{request.method} {request.path_qs}")

    async def doc(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response(
            {
                "ok": True,
                "cookie": request.headers.get("Cookie"),
                "auth": request.headers.get("Authorization"),
                "accept": request.headers.get("Accept"),
                "ua": request.headers.get("User-Agent"),
            }
        )

    async def text(request: web.Request) -> web.Response:
        return web.Response(text="<html>not json</html>", content_type="text/html")

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="nope")

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound(request.query["to"])

    async def see_other(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPSeeOther("/doc")

    async def loop(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound("/loop")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000)

    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: no Content-Length to check up front
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"y" * 500)
        await response.write_eof()
        return response

    async def bomb(request: web.Request) -> web.Response:
        packed = gzip.compress(b"0" * 1_000_000)
        return web.Response(body=packed, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def cookie(request: web.Request) -> web.Response:
        response = web.json_response({})
        response.set_cookie("session", "secret")
        return response

    srv = await serve(
        {
            "/doc": doc,
            "/text": text,
            "/status/{code}": status,
            "/redirect": redirect,
            "/see-other": see_other,
            "/loop": loop,
            "/big": big,
            "/drip": drip,
            "/bomb": bomb,
            "/slow": slow,
            "/cookie": cookie,
        },
        hits,
    )
    yield srv
    await srv.close()


def hits(server: TestServer) -> list[str]:
    assert server.app is not None
    return server.app[HITS]


def url(server: TestServer, path: str, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{server.port}{path}"


# -- the guard --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("127.9.9.9", False),
        ("::1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.0.1", False),
        ("fc00::1", False),
        ("fd00::1", False),
        ("169.254.169.254", False),
        ("fe80::1", False),
        ("100.64.0.1", False),
        ("100.127.255.254", False),
        ("224.0.0.1", False),
        ("ff02::1", False),
        ("0.0.0.0", False),
        ("::", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("2002:7f00:1::1", False),
        ("64:ff9b::a9fe:a9fe", False),
        ("fec0::1", False),
    ],
)
def test_address_classification(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


async def test_guarded_resolver_keeps_only_allowed_addresses() -> None:
    inner = FakeResolver({"mixed.test": ["127.0.0.1", "93.184.216.34", "::1"], "inside.test": ["10.1.1.1"]})
    resolver = _GuardedResolver(inner, _Guard(FetchPolicy()))
    assert [r["host"] for r in await resolver.resolve("mixed.test", 80)] == ["93.184.216.34"]
    with pytest.raises(AddressRefused):
        await resolver.resolve("inside.test", 80)


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost"])
async def test_loopback_is_refused_by_default(server: TestServer, host: str) -> None:
    async with SafeClient() as client:
        with pytest.raises(FetchError) as exc:
            await client.get_json(url(server, "/doc", host))
    assert exc.value.permanent
    assert "refused" in exc.value.reason
    assert hits(server) == []  # nothing reached the server


async def test_allow_private_reaches_loopback(server: TestServer) -> None:
    async with SafeClient(FetchPolicy(allow_private=True)) as client:
        document = await client.get_json(url(server, "/doc"))
    assert document["ok"] is True
    assert document["ua"] == "EduFed/0.1"
    assert document["accept"].startswith("application/activity+json")


@pytest.mark.parametrize(
    "target",
    ["file:///etc/passwd", "ftp://example.org/x", "gopher://x/", "http:///nohost", "http://user:pw@127.0.0.1/"],
)
async def test_bad_urls_are_refused_permanently(target: str) -> None:
    async with SafeClient(FetchPolicy(allow_private=True)) as client:
        with pytest.raises(FetchError) as exc:
            await client.request("GET", target)
    assert exc.value.permanent


async def test_dns_answer_pointing_inside_is_refused_at_connect_time(server: TestServer) -> None:
    resolver = FakeResolver({"good.test": ["127.0.0.1"], "rebind.test": ["127.0.0.2"]})
    async with SafeClient(LOOPBACK_ONLY, resolver=resolver) as client:
        assert (await client.get_json(url(server, "/doc", "good.test")))["ok"] is True
        with pytest.raises(FetchError) as exc:
            await client.get_json(url(server, "/doc", "rebind.test"))
    assert exc.value.permanent
    assert "127.0.0.2" in exc.value.reason


# -- redirects --------------------------------------------------------------------------------------------------


async def test_redirect_chain_is_followed(server: TestServer) -> None:
    final = url(server, "/doc")
    middle = url(server, f"/redirect?to={final}")
    async with SafeClient(LOOPBACK_ONLY) as client:
        response = await client.request("GET", url(server, f"/redirect?to={middle}"))
    assert response.status == 200
    assert response.url == final
    assert response.json()["ok"] is True


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/doc",
        "http://[::1]:{port}/doc",
        "http://rebind.test:{port}/doc",
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
async def test_redirect_to_a_refused_address_is_refused(server: TestServer, target: str) -> None:
    resolver = FakeResolver({"good.test": ["127.0.0.1"], "rebind.test": ["127.0.0.2"]})
    start = url(server, "/redirect?to=" + target.format(port=server.port), "good.test")
    async with SafeClient(LOOPBACK_ONLY, resolver=resolver) as client:
        with pytest.raises(FetchError) as exc:
            await client.request("GET", start)
    assert exc.value.permanent
    assert len(hits(server)) == 1  # the first hop only; the refused one was never connected to
    assert hits(server)[0].startswith("GET /redirect?to=")


async def test_too_many_redirects(server: TestServer) -> None:
    async with SafeClient(FetchPolicy(allow_private=True, max_redirects=3)) as client:
        with pytest.raises(FetchError, match="more than 3 redirects") as exc:
            await client.request("GET", url(server, "/loop"))
        not_followed = await client.request("GET", url(server, "/loop"), follow_redirects=False)
    assert exc.value.permanent
    assert len(hits(server)) == 4 + 1  # first request + 3 redirects, then one more
    assert not_followed.status == 302
    assert not_followed.headers["location"] == "/loop"


async def test_303_turns_post_into_get_and_credentials_stay_home(server: TestServer) -> None:
    other = await serve({"/doc": _echo})  # a second origin (another port)
    try:
        async with SafeClient(FetchPolicy(allow_private=True)) as client:
            response = await client.request(
                "POST", url(server, "/see-other"), body=b"{}", headers={"Content-Type": "application/json"}
            )
            assert response.status == 200
            assert hits(server)[-1] == "GET /doc"
            same = await client.request(
                "GET", url(server, f"/redirect?to={url(server, '/doc')}"), headers={"Authorization": "Bearer t"}
            )
            assert same.json()["auth"] == "Bearer t"
            cross = await client.request(
                "GET", url(server, f"/redirect?to={url(other, '/doc')}"), headers={"Authorization": "Bearer t"}
            )
            assert cross.json()["auth"] is None
    finally:
        await other.close()


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"auth": request.headers.get("Authorization")})


# -- limits -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/big", "/drip", "/bomb"], ids=["content-length", "chunked", "gzip-bomb"])
async def test_oversized_bodies_are_cut_off(server: TestServer, path: str) -> None:
    async with SafeClient(FetchPolicy(allow_private=True, max_bytes=1000)) as client:
        with pytest.raises(FetchError, match="byte limit") as exc:
            await client.request("GET", url(server, path))
    assert not exc.value.permanent
    assert exc.value.status == 200


async def test_body_at_the_limit_is_accepted(server: TestServer) -> None:
    async with SafeClient(FetchPolicy(allow_private=True, max_bytes=5000)) as client:
        response = await client.request("GET", url(server, "/big"))
    assert len(response.body) == 5000


async def test_slow_server_times_out(server: TestServer) -> None:
    started = time.monotonic()
    async with SafeClient(FetchPolicy(allow_private=True, timeout_seconds=0.3)) as client:
        with pytest.raises(FetchError) as exc:
            await client.request("GET", url(server, "/slow"))
    assert time.monotonic() - started < 2
    assert not exc.value.permanent


# -- answers ----------------------------------------------------------------------------------------------------


async def test_non_json_is_a_fetch_error(server: TestServer) -> None:
    async with SafeClient(FetchPolicy(allow_private=True)) as client:
        with pytest.raises(FetchError, match="not JSON") as exc:
            await client.get_json(url(server, "/text"))
    assert exc.value.status == 200
    assert not exc.value.permanent


@pytest.mark.parametrize(("code", "permanent"), [(404, True), (410, True), (500, False), (503, False), (401, False)])
async def test_get_json_error_statuses(server: TestServer, code: int, permanent: bool) -> None:
    async with SafeClient(FetchPolicy(allow_private=True)) as client:
        with pytest.raises(FetchError) as exc:
            await client.get_json(url(server, f"/status/{code}"))
        response = await client.request("GET", url(server, f"/status/{code}"))  # request() returns any status
    assert (exc.value.status, exc.value.permanent) == (code, permanent)
    assert (response.status, response.body) == (code, b"nope")


async def test_no_cookies_are_kept(server: TestServer) -> None:
    async with SafeClient(FetchPolicy(allow_private=True)) as client:
        first = await client.request("GET", url(server, "/cookie"))
        assert "session=secret" in first.headers["set-cookie"]
        assert (await client.get_json(url(server, "/doc")))["cookie"] is None


async def test_headers_are_case_insensitive_and_client_must_be_started(server: TestServer) -> None:
    async with SafeClient(FetchPolicy(allow_private=True)) as client:
        response = await client.request("GET", url(server, "/doc"))
    assert response.headers["content-type"] == response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(response.body)["ok"] is True
    with pytest.raises(RuntimeError):
        await SafeClient().request("GET", url(server, "/doc"))


async def test_connection_refused_is_temporary() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    async with SafeClient(FetchPolicy(allow_private=True)) as client:
        with pytest.raises(FetchError) as exc:
            await client.request("GET", f"http://127.0.0.1:{port}/")
    assert not exc.value.permanent


# -- signed requests end to end ---------------------------------------------------------------------------------


async def test_signed_posts_verify_on_a_real_server() -> None:
    """What the inbox will do: verify with aiohttp's own request.headers and str(request.url)."""
    ed_key = Ed25519Key.generate()
    rsa_key = RsaKey.generate()
    keys: dict[str, Ed25519PublicKey | RSAPublicKey] = {"ed": ed_key.public_key, "rsa": rsa_key.public_key}
    outcomes: list[str] = []

    async def inbox(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            params = parse_signature(request.method, str(request.url), request.headers)
            key = keys[params.key_id]
            verify_signature_params(params, request.method, str(request.url), request.headers, body, key)
        except SignatureError as exc:
            outcomes.append(exc.reason)
            return web.json_response(exc.problem(), status=exc.status)
        outcomes.append(params.scheme)
        return web.Response(status=202)

    srv = await serve({"/inbox": inbox})
    target = url(srv, "/inbox?x=1")
    body = b'{"type": "Create"}'
    try:
        async with SafeClient(FetchPolicy(allow_private=True)) as client:
            headers = {"Content-Type": "application/activity+json"}
            rfc = {**headers, **sign_rfc9421("POST", target, headers, body, ed_key, "ed")}
            assert (await client.request("POST", target, body=body, headers=rfc)).status == 202
            cavage = {**headers, **sign_cavage("POST", target, headers, body, rsa_key, "rsa")}
            assert (await client.request("POST", target, body=body, headers=cavage)).status == 202
            refused = await client.request("POST", target, body=body + b" ", headers=rfc)
    finally:
        await srv.close()
    assert refused.status == 401
    assert json.loads(refused.body)["field"] == "Signature"
    assert outcomes == ["rfc9421", "cavage", "Content-Digest does not match the body (digest mismatch)"]


@pytest.mark.parametrize(
    ("host", "private"),
    [
        ("localhost:8001", True),
        ("api.localhost", True),
        ("127.0.0.1:9499", True),
        ("10.0.0.1", True),
        ("100.64.0.1", True),  # CGNAT: the old resolver rule called it public, the client refused it
        ("[::ffff:127.0.0.1]:8000", True),  # IPv4-mapped loopback
        ("[::1]", True),
        ("169.254.169.254", True),
        ("93.184.215.14:443", False),
        ("learn.helsinki.example", False),  # a name is judged by its addresses when connecting
    ],
)
def test_one_private_host_rule_for_resolver_and_client(host: str, private: bool) -> None:
    assert is_private_host(host) is private
