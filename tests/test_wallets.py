"""Learners' wallets against a real node over HTTP: OpenID4VCI offers (ldp_vc and jwt_vc_json, with and without
PIN), every refused input issuing nothing, VC-API exchanges with DID authentication, and the staff QR page.

The wallet is tests/oid4vci_wallet.py (Python, joserfc); the credentials it receives are checked by the node's
own verifier and the JWT by the node's DID document key."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey

from node.bootstrap import init_node
from node.config import CredentialPolicy
from node.credentials.openid4vc.keys import did_jwk
from node.credentials.wallet import Wallet
from node.store.models import IssuedCredential, WalletOffer
from node.trust.did import did_key_document
from node.trust.multikey import Ed25519Key, decode_public_multibase
from node.trust.proofs import sign
from tests.harness import RunningNode, free_port, running_node
from tests.interop_verifier import INTEROP_DIR
from tests.oid4vci_wallet import (
    PyWallet,
    credential_request,
    fetch_json,
    new_nonce,
    presentation_key,
    read_offer,
    receive,
    token,
    unsigned_jwt,
)
from tests.test_credentials import achievement_credential, set_status, verify_on
from tests.test_workers import healthy, serve

LDP = "OpenBadgeCredential_ldp_vc"
JWT = "OpenBadgeCredential_jwt_vc_json"


def template(name: str = "Pottery for beginners") -> dict[str, Any]:
    credential = achievement_credential("did:example:replaced", name, 5)
    del credential["credentialSubject"]["id"]
    return credential


async def make_offer(node: RunningNode, **body: Any) -> dict[str, Any]:
    reply = await fetch_json(node.http, "POST", f"{node.base_url}/credentials/offers", headers=node.admin,
                             json={"credential": template(), **body})
    assert reply.status == 201, reply.body
    return dict(reply.body)


async def issued_count(node: RunningNode) -> int:
    with node.services.store.bound():
        return await IssuedCredential.all().count()


async def metadata(node: RunningNode) -> dict[str, Any]:
    reply = await fetch_json(node.http, "GET", f"{node.base_url}/.well-known/openid-credential-issuer")
    assert reply.status == 200
    return dict(reply.body)


@pytest.fixture
async def node(tmp_path: Path, database_url: str) -> Any:
    no_cache = CredentialPolicy(status_cache_seconds=0.0)  # a revocation shows at once
    async with running_node(tmp_path / "a", database_url, name="Riverside College", credentials=no_cache) as running:
        yield running


async def test_metadata_names_the_endpoints_and_configurations(node: RunningNode) -> None:
    """[WAL-1] [WAL-2]"""
    issuer = await metadata(node)
    assert issuer["credential_issuer"] == node.base_url
    assert issuer["credential_endpoint"] == f"{node.base_url}/openid4vci/credential"
    assert issuer["nonce_endpoint"] == f"{node.base_url}/openid4vci/nonce"
    assert issuer["display"] == [{"name": "Riverside College", "locale": "en"}]
    configurations = issuer["credential_configurations_supported"]
    assert {c["format"] for c in configurations.values()} == {"ldp_vc", "jwt_vc_json"}
    assert configurations[LDP]["cryptographic_binding_methods_supported"] == ["did:key", "did:jwk", "jwk"]
    assert "none" not in configurations[LDP]["proof_types_supported"]["jwt"]["proof_signing_alg_values_supported"]
    server = (await fetch_json(node.http, "GET", f"{node.base_url}/.well-known/oauth-authorization-server")).body
    assert server["issuer"] == node.base_url
    assert server["token_endpoint"] == f"{node.base_url}/openid4vci/token"
    assert server["pre-authorized_grant_anonymous_access_supported"] is True
    # a wallet running in a browser on another site may read the metadata and ask for nonces
    for method, path in (("GET", "/.well-known/openid-credential-issuer"), ("POST", "/openid4vci/nonce")):
        async with node.http.request(method, f"{node.base_url}{path}", headers={"Origin": "https://w.example"}) as r:
            assert r.headers["Access-Control-Allow-Origin"] == "*"


async def test_a_wallet_receives_an_ldp_vc_bound_to_its_did_key(node: RunningNode) -> None:
    """[WAL-3] [WAL-5] [WAL-7] [WAL-8]"""
    offer = await make_offer(node)
    assert offer["offer"].startswith("openid-credential-offer://?credential_offer=")
    assert "txCode" not in offer
    assert (await fetch_json(node.http, "GET", offer["status"])).body["state"] == "pending"
    wallet = PyWallet("ed25519")
    received = await receive(node.http, wallet, offer["offer"])
    credential = received["ldp_vc"]
    assert credential["credentialSubject"]["id"] == wallet.did
    assert credential["credentialSubject"]["achievement"]["name"] == "Pottery for beginners"
    status, verdict = await verify_on(node, credential)
    assert status == 200, verdict
    state = (await fetch_json(node.http, "GET", offer["status"])).body
    assert state["state"] == "redeemed"
    assert state["credentials"] == [{"format": "ldp_vc", "id": credential["id"]}]
    # the offer is spent: its code cannot be traded again, nor its link followed
    parsed = await read_offer(node.http, offer["offer"])
    again = await token(node.http, parsed)
    assert (again.status, again.body["error"]) == (400, "invalid_grant")
    by_reference = await fetch_json(node.http, "GET", offer["offerByReference"].split("credential_offer_uri=")[1]
                                    .replace("%3A", ":").replace("%2F", "/"))
    assert by_reference.status == 410
    assert await issued_count(node) == 1
    # revoking it works as for any credential
    await set_status(node, credential["id"], "revoked")
    status, verdict = await verify_on(node, credential)
    assert status == 422 and "revoked" in json.dumps(verdict)


async def test_pin_by_reference_both_formats_with_a_jwk_key(node: RunningNode) -> None:
    """[WAL-4] [WAL-6] [WAL-9]"""
    offer = await make_offer(node, formats=["ldp_vc", "jwt_vc_json"], txCode=True)
    assert len(offer["txCode"]) == 6 and offer["txCode"].isdigit()
    parsed = await read_offer(node.http, offer["offerByReference"])
    assert parsed["credential_configuration_ids"] == [LDP, JWT]
    grant = parsed["grants"]["urn:ietf:params:oauth:grant-type:pre-authorized_code"]
    assert grant["tx_code"]["length"] == 6 and grant["tx_code"]["input_mode"] == "numeric"
    missing = await token(node.http, parsed)
    assert (missing.status, missing.body["error"]) == (400, "invalid_request")
    wrong = await token(node.http, parsed, "000000" if offer["txCode"] != "000000" else "111111")
    assert (wrong.status, wrong.body["error"]) == (400, "invalid_grant")
    wallet = PyWallet("p256")
    received = await receive(node.http, wallet, offer["offerByReference"], offer["txCode"])
    assert received["ldp_vc"]["credentialSubject"]["id"] == wallet.did
    assert wallet.did.startswith("did:jwk:")
    assert (await verify_on(node, received["ldp_vc"]))[0] == 200
    # the JWT: typ vc+jwt, kid a key of the node's DID document, payload the credential bound to the wallet
    document = (await fetch_json(node.http, "GET", f"{node.base_url}/.well-known/did.json")).body
    token_text = received["jwt_vc_json"]
    header = json.loads(base64.urlsafe_b64decode(token_text.split(".")[0] + "=="))
    assert header["typ"] == "vc+jwt" and header["alg"] == "EdDSA"
    method = next(m for m in document["verificationMethod"] if m["id"] == header["kid"])
    key = OKPKey.import_key(decode_public_multibase(method["publicKeyMultibase"]))
    claims = jwt.decode(token_text, key, algorithms=["EdDSA"]).claims
    assert claims["credentialSubject"]["id"] == wallet.did
    assert claims["iss"] == document["id"] and claims["jti"] == claims["id"]
    assert claims["credentialStatus"][0]["type"] == "BitstringStatusListEntry"
    assert "proof" not in claims
    assert await issued_count(node) == 2


async def test_five_wrong_pins_void_the_offer(node: RunningNode) -> None:
    """[WAL-4]"""
    offer = await make_offer(node, txCode=True)
    parsed = await read_offer(node.http, offer["offer"])
    wrong = f"{(int(offer['txCode']) + 1) % 1_000_000:06d}"
    for _ in range(5):
        reply = await token(node.http, parsed, wrong)
        assert (reply.status, reply.body["error"]) == (400, "invalid_grant")
    right = await token(node.http, parsed, offer["txCode"])
    assert (right.status, right.body["error"]) == (400, "invalid_grant")
    state = (await fetch_json(node.http, "GET", offer["status"])).body
    assert state["state"] == "expired" and "transaction code" in state["reason"]
    assert await issued_count(node) == 0


async def test_an_expired_offer_is_refused(node: RunningNode) -> None:
    """[WAL-3]"""
    offer = await make_offer(node, expiresIn=60)
    with node.services.store.bound():
        await WalletOffer.all().update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    reply = await token(node.http, await read_offer(node.http, offer["offer"]))
    assert (reply.status, reply.body["error"]) == (400, "invalid_grant")
    assert (await fetch_json(node.http, "GET", offer["status"])).body["state"] == "expired"
    assert await issued_count(node) == 0


async def test_one_code_one_token_under_concurrency(node: RunningNode) -> None:
    """[WAL-3]"""
    parsed = await read_offer(node.http, (await make_offer(node))["offer"])
    replies = await asyncio.gather(*(token(node.http, parsed) for _ in range(8)))
    assert sorted(r.status for r in replies) == [200] + [400] * 7


BAD_PROOFS = {
    "wrong aud": ("invalid_proof", lambda w, aud, nonce: w.proof("https://elsewhere.example", nonce)),
    "missing nonce": ("invalid_proof", lambda w, aud, nonce: w.proof(aud, None)),
    "unknown nonce": ("invalid_nonce", lambda w, aud, nonce: w.proof(aud, "made-up")),
    "iat far off": ("invalid_proof", lambda w, aud, nonce: w.proof(aud, nonce, iat=time.time() - 3600)),
    "iat in the future": ("invalid_proof", lambda w, aud, nonce: w.proof(aud, nonce, iat=time.time() + 3600)),
    "alg none": ("invalid_proof", lambda w, aud, nonce: unsigned_jwt(
        {"typ": "openid4vci-proof+jwt", **w.key_header()}, {"aud": aud, "iat": int(time.time()), "nonce": nonce})),
    "unresolvable kid": ("invalid_proof", lambda w, aud, nonce: w.proof(
        aud, nonce, header={"kid": "did:web:elsewhere.example#key-1"})),
    "kid of another key": ("invalid_proof", lambda w, aud, nonce: w.proof(
        aud, nonce, header={"kid": f"{PyWallet('ed25519').did}#{PyWallet('ed25519').did[8:]}"})),
    "wrong typ": ("invalid_proof", lambda w, aud, nonce: w.proof(aud, nonce, header={"typ": "JWT"})),
    "private jwk": ("invalid_proof", lambda w, aud, nonce: w.proof(
        aud, nonce, header={"kid": None, "jwk": w.key.as_dict(private=True)})),
    "not a jwt": ("invalid_proof", lambda w, aud, nonce: "not.a.jwt"),
}


@pytest.mark.parametrize("case", list(BAD_PROOFS))
async def test_bad_key_proofs_issue_nothing(node: RunningNode, case: str) -> None:
    """[WAL-7] [WAL-8]"""
    error, make = BAD_PROOFS[case]
    offer = await read_offer(node.http, (await make_offer(node))["offer"])
    issuer = await metadata(node)
    granted = await token(node.http, offer)
    wallet = PyWallet("ed25519")
    bad = make(wallet, node.base_url, await new_nonce(node.http, issuer))
    reply = await credential_request(node.http, issuer, granted.body["access_token"],
                                     {"credential_configuration_id": LDP, "proofs": {"jwt": [bad]}})
    assert (reply.status, reply.body["error"]) == (400, error), reply.body
    assert reply.body["error_description"]
    assert await issued_count(node) == 0
    # the offer is not spent by a bad proof: the wallet can still finish with a good one
    good = wallet.proof(node.base_url, await new_nonce(node.http, issuer))
    reply = await credential_request(node.http, issuer, granted.body["access_token"],
                                     {"credential_configuration_id": LDP, "proofs": {"jwt": [good]}})
    assert reply.status == 200, reply.body
    assert await issued_count(node) == 1


async def test_credential_requests_outside_the_offer_are_refused(node: RunningNode) -> None:
    """[WAL-6] [WAL-8]"""
    offer = await read_offer(node.http, (await make_offer(node))["offer"])
    issuer = await metadata(node)
    granted = await token(node.http, offer)
    wallet = PyWallet("ed25519")
    nonce = await new_nonce(node.http, issuer)

    async def ask(body: dict[str, Any], access_token: str = granted.body["access_token"]) -> tuple[int, str]:
        reply = await credential_request(node.http, issuer, access_token, body)
        return reply.status, reply.body.get("error", "")

    proofs = {"jwt": [wallet.proof(node.base_url, nonce)]}
    unknown = (400, "unknown_credential_configuration")
    assert await ask({"credential_configuration_id": JWT, "proofs": proofs}) == unknown
    assert await ask({"credential_configuration_id": "Nope", "proofs": proofs}) == unknown
    assert await ask({"proofs": proofs}) == (400, "invalid_credential_request")
    assert await ask({"credential_configuration_id": LDP}) == (400, "invalid_proof")
    assert await ask({"credential_configuration_id": LDP, "proofs": proofs}, "wrong-token") == (401, "invalid_token")
    # a nonce is good once
    assert (await ask({"credential_configuration_id": LDP, "proofs": proofs}))[0] == 200
    again = {"jwt": [wallet.proof(node.base_url, nonce)]}
    assert await ask({"credential_configuration_id": LDP, "proofs": again}) == (400, "invalid_nonce")
    fresh = {"jwt": [wallet.proof(node.base_url, await new_nonce(node.http, issuer))]}
    assert await ask({"credential_configuration_id": LDP, "proofs": fresh}) == (400, "credential_request_denied")
    assert await issued_count(node) == 1


async def test_bad_offer_requests_get_problems(node: RunningNode) -> None:
    """[WAL-3]"""
    url = f"{node.base_url}/credentials/offers"
    unauthorised = await fetch_json(node.http, "POST", url, json={"credential": template()})
    assert unauthorised.status == 401
    cases = [
        ({"credential": template(), "formats": ["mso_mdoc"]}, 400, "formats"),
        ({"credential": template(), "formats": []}, 400, "formats"),
        ({"credential": template(), "txCode": "yes"}, 400, "txCode"),
        ({"credential": template(), "expiresIn": 5}, 400, "expiresIn"),
        ({"credential": achievement_credential("did:key:z6Mkabc", "x")}, 400, "credentialSubject.id"),
        ({"credential": {**template(), "@context": ["https://www.w3.org/ns/credentials/v2"]}}, 422, "@context"),
        ({}, 400, "credential"),
        ({"credential": {"@context": ["https://www.w3.org/ns/credentials/v2"],
                         "type": ["VerifiableCredential"], "credentialSubject": {"name": "x"}}}, 422, "type"),
    ]
    for body, status, field in cases:
        async with node.http.post(url, json=body, headers=node.admin) as response:
            problem = await response.json(content_type=None)
            assert (response.status, response.content_type, problem.get("field")) == (
                status, "application/problem+json", field), problem
    with node.services.store.bound():
        assert await WalletOffer.all().count() == 0


def did_auth(wallet: Wallet, vpr: dict[str, Any], key: Ed25519Key | None = None) -> dict[str, Any]:
    """The DID authentication presentation a VC-API wallet answers with (optionally signed by another key)."""
    request = vpr["verifiablePresentationRequest"]
    if key is None:
        return wallet.present(request["challenge"], request["domain"], credential_ids=[])
    presentation = {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiablePresentation"],
                    "holder": wallet.did}
    method = f"did:key:{key.public_multibase}#{key.public_multibase}"
    return sign(presentation, key, method, datetime.now(UTC), proof_purpose="authentication",
                challenge=request["challenge"], domain=request["domain"])


async def test_vc_api_exchange_binds_the_credential_to_the_authenticated_did(node: RunningNode,
                                                                               tmp_path: Path) -> None:
    """[WAL-10] [WAL-11]"""
    created = await fetch_json(node.http, "POST", f"{node.base_url}/exchanges", headers=node.admin,
                               json={"credential": template()})
    assert created.status == 201, created.body
    exchange = created.body["exchange"]
    assert created.body["protocols"] == {"vcapi": exchange}
    vpr = await fetch_json(node.http, "POST", exchange, json={})
    assert vpr.status == 200
    query = vpr.body["verifiablePresentationRequest"]
    assert query["query"][0]["type"] == "DIDAuthentication" and query["domain"] == node.base_url
    wallet = Wallet(tmp_path / "wallet")
    wallet.init()
    # signed by a key other than the holder's: refused, nothing issued
    other = await fetch_json(node.http, "POST", exchange,
                             json={"verifiablePresentation": did_auth(wallet, vpr.body, Ed25519Key.generate())})
    assert other.status == 422 and other.body["field"] == "verifiablePresentation.proof", other.body
    # for another challenge: refused
    stale = {"verifiablePresentationRequest": {**query, "challenge": "old"}}
    replayed = await fetch_json(node.http, "POST", exchange, json={"verifiablePresentation": did_auth(wallet, stale)})
    assert replayed.status == 422
    assert await issued_count(node) == 0
    done = await fetch_json(node.http, "POST", exchange, json={"verifiablePresentation": did_auth(wallet, vpr.body)})
    assert done.status == 200, done.body
    credential = done.body["verifiablePresentation"]["verifiableCredential"][0]
    assert credential["credentialSubject"]["id"] == wallet.did
    assert (await verify_on(node, credential))[0] == 200
    wallet.add(credential)
    again = await fetch_json(node.http, "POST", exchange, json={"verifiablePresentation": did_auth(wallet, vpr.body)})
    assert again.status == 409
    assert await issued_count(node) == 1
    assert did_key_document(wallet.did)["id"] == wallet.did


async def test_the_offer_page_shows_a_qr_code(node: RunningNode) -> None:
    """[WAL-12]"""
    async with node.http.get(f"{node.base_url}/wallets/offer") as response:
        assert response.status == 200
        assert 'name="token"' in await response.text()
    form = {"token": node.token, "credential": json.dumps(template()), "formats": "ldp_vc", "txCode": "on"}
    async with node.http.post(f"{node.base_url}/wallets/offer", data=form) as response:
        page = await response.text()
        assert response.status == 201, page
    assert "<svg" in page and "openid-credential-offer://?credential_offer_uri=" in page
    assert "PIN for the learner" in page
    async with node.http.post(f"{node.base_url}/wallets/offer", data={**form, "token": "wrong"}) as response:
        assert response.status == 401
        assert "Wrong admin token" in await response.text()
    with node.services.store.bound():
        assert await WalletOffer.all().count() == 1


async def owf_wallet(offer: str, tx_code: str | None, key: str) -> tuple[int, dict[str, Any]]:
    """Run tests/interop/openid4vci-wallet.mjs (the @openid4vc libraries) on an offer link."""
    node_binary = shutil.which("node")
    assert node_binary, "Node.js is needed for the interop wallet (npm ci --prefix tests/interop)"
    process = await asyncio.create_subprocess_exec(
        node_binary, str(INTEROP_DIR / "openid4vci-wallet.mjs"), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=INTEROP_DIR)
    out, err = await asyncio.wait_for(
        process.communicate(json.dumps({"offer": offer, "txCode": tx_code, "key": key}).encode()), 60)
    assert out, err.decode()
    return int(process.returncode or 0), json.loads(out)


@pytest.mark.parametrize(("formats", "tx_code", "key", "by_reference"), [
    (["ldp_vc"], False, "did:key", False),
    (["ldp_vc", "jwt_vc_json"], True, "jwk", True),
])
async def test_an_openwallet_foundation_wallet_follows_the_offer(node: RunningNode, formats: list[str],
                                                                 tx_code: bool, key: str,
                                                                 by_reference: bool) -> None:
    """[WAL-1] [WAL-3] [WAL-4] [WAL-7] [WAL-9] A wallet on @openid4vc/openid4vci receives every offered format."""
    offer = await make_offer(node, formats=formats, txCode=tx_code)
    link = offer["offerByReference" if by_reference else "offer"]
    if tx_code:  # with a wrong PIN the node refuses the library's token request, and nothing is issued
        wrong = f"{(int(offer['txCode']) + 1) % 1_000_000:06d}"
        status, refused = await owf_wallet(link, wrong, key)
        assert status == 1 and "invalid_grant" in json.dumps(refused), refused
        assert await issued_count(node) == 0
    status, received = await owf_wallet(link, offer.get("txCode"), key)
    assert status == 0, received
    holder = received["holder"]
    expected = holder if isinstance(holder, str) else did_jwk(holder)
    assert set(received["credentials"]) == set(formats)
    credential = received["credentials"]["ldp_vc"]
    assert credential["credentialSubject"]["id"] == expected
    assert (await verify_on(node, credential))[0] == 200
    if "jwt_vc_json" in formats:
        payload = json.loads(base64.urlsafe_b64decode(received["credentials"]["jwt_vc_json"].split(".")[1] + "=="))
        assert payload["credentialSubject"]["id"] == expected
    assert (await fetch_json(node.http, "GET", offer["status"])).body["state"] == "redeemed"
    assert await issued_count(node) == len(formats)


async def open_request(http: Any, link: str, verifier: RunningNode) -> dict[str, Any]:
    """What a wallet reads from an ``openid4vp://`` link: the request object, its signature checked with the
    verifier's did:web key."""
    assert parse_qs(urlsplit(link).query)["client_id"][0] == f"decentralized_identifier:{verifier.services.did}"
    return await open_request_object(http, link)


async def open_request_object(http: Any, link: str) -> dict[str, Any]:
    query = parse_qs(urlsplit(link).query)
    client_id = query["client_id"][0]
    async with http.get(query["request_uri"][0]) as response:
        assert response.status == 200 and response.content_type == "application/oauth-authz-req+jwt"
        text = await response.text()
    header = json.loads(base64.urlsafe_b64decode(text.split(".")[0] + "=="))
    base = query["request_uri"][0].split("/openid4vp/")[0]
    document = (await fetch_json(http, "GET", f"{base}/.well-known/did.json")).body
    method = next(m for m in document["verificationMethod"] if m["id"] == header["kid"])
    claims = jwt.decode(text, OKPKey.import_key(decode_public_multibase(method["publicKeyMultibase"])),
                        algorithms=["EdDSA"]).claims
    assert claims["client_id"] == client_id and claims["response_mode"] == "direct_post"
    return dict(claims)


def vp_for(wallet: PyWallet, credentials: list[dict[str, Any]], nonce: str, client_id: str) -> dict[str, Any]:
    """The wallet's presentation for OpenID4VP (ldp_vc): challenge = nonce, domain = client_id."""
    key = presentation_key(wallet)
    presentation = {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiablePresentation"],
                    "holder": wallet.did, "verifiableCredential": credentials}
    return sign(presentation, key, f"{wallet.did}#{key.public_multibase}", datetime.now(UTC),
                proof_purpose="authentication", challenge=nonce, domain=client_id)


async def present(http: Any, request: dict[str, Any], vp: dict[str, Any], state: str | None = None) -> Any:
    form = {"vp_token": json.dumps({request["dcql_query"]["credentials"][0]["id"]: [vp]}),
            "state": state or request["state"]}
    return await fetch_json(http, "POST", request["response_uri"], data=form)


async def ask(verifier: RunningNode, issuer: RunningNode) -> tuple[dict[str, Any], str]:
    created = await fetch_json(verifier.http, "POST", f"{verifier.base_url}/presentations/requests",
                               json={"types": ["OpenBadgeCredential"], "issuers": [issuer.services.did]})
    assert created.status == 201, created.body
    assert created.body["request"].startswith("openid4vp://?client_id=")
    return await open_request(verifier.http, created.body["request"], verifier), created.body["result"]


async def test_the_verify_page_shows_a_presentation_request_as_a_qr_code(node: RunningNode) -> None:
    """[WAL-12] [WAL-14]"""
    async with node.http.post(f"{node.base_url}/wallets/verify", data={"types": "OpenBadgeCredential"}) as response:
        page = await response.text()
        assert response.status == 201, page
    assert "<svg" in page and "openid4vp://?client_id=" in page
    answer = re.search(r'href="(/wallets/verify/[^"]+)"', page)
    assert answer
    async with node.http.get(node.base_url + answer.group(1)) as response:
        assert response.status == 200 and "Waiting for the wallet" in await response.text()


async def test_a_verifier_asks_a_wallet_through_openid4vp(tmp_path: Path, make_database_url: Any) -> None:
    """[WAL-14] [WAL-15] [WAL-16] valid with credits; wrong nonce, unknown state, replay refused; then revoked,
    then unknown when the issuer's status list is unreachable."""
    no_cache = CredentialPolicy(status_cache_seconds=0.0)
    issuer_node = running_node(tmp_path / "a", await make_database_url(), name="Issuer", credentials=no_cache)
    a = await issuer_node.__aenter__()
    stopped = False
    try:
        async with running_node(tmp_path / "b", await make_database_url(), name="Verifier",
                                credentials=no_cache) as b:
            wallet = PyWallet("ed25519")
            first = (await receive(a.http, wallet, (await make_offer(a))["offer"]))["ldp_vc"]
            second = (await receive(a.http, wallet, (await make_offer(a))["offer"]))["ldp_vc"]
            request, result_url = await ask(b, a)
            assert request["dcql_query"]["credentials"][0]["format"] == "ldp_vc"
            assert (await fetch_json(b.http, "GET", result_url)).body == {"state": "pending"}
            good = vp_for(wallet, [first], request["nonce"], request["client_id"])
            wrong_nonce = await present(b.http, request, vp_for(wallet, [first], "other", request["client_id"]))
            assert (wrong_nonce.status, wrong_nonce.body["error"]) == (400, "invalid_request")
            wrong_audience = await present(b.http, request, vp_for(wallet, [first], request["nonce"], "x:y"))
            assert wrong_audience.status == 400
            unknown_state = await present(b.http, request, good, state="made-up")
            assert (unknown_state.status, unknown_state.body["error"]) == (400, "invalid_request")
            assert (await fetch_json(b.http, "GET", result_url)).body == {"state": "pending"}
            answered = await present(b.http, request, good)
            assert answered.status == 200, answered.body
            verdict = (await fetch_json(b.http, "GET", result_url)).body
            assert (verdict["state"], verdict["status"]) == ("done", "valid"), verdict
            assert verdict["credits"]["total"]["value"] == "5"
            async with b.http.get(f"{b.base_url}/wallets/verify/{result_url.rsplit('/', 1)[1]}") as response:
                page = await response.text()
                assert response.status == 200 and "Valid: every check passed" in page and wallet.did in page
            assert (await present(b.http, request, good)).status == 400  # answered once
            # revoked at the issuer: the next request says so
            await set_status(a, first["id"], "revoked")
            request, result_url = await ask(b, a)
            assert (await present(b.http, request, vp_for(wallet, [first], request["nonce"],
                                                          request["client_id"]))).status == 200
            assert (await fetch_json(b.http, "GET", result_url)).body["status"] == "revoked"
            # the issuer is gone: its status list cannot be fetched, so the status is unknown, never valid
            await issuer_node.__aexit__(None, None, None)
            stopped = True
            request, result_url = await ask(b, a)
            assert (await present(b.http, request, vp_for(wallet, [second], request["nonce"],
                                                          request["client_id"]))).status == 200
            assert (await fetch_json(b.http, "GET", result_url)).body["status"] == "unknown"
    finally:
        if not stopped:
            await issuer_node.__aexit__(None, None, None)


async def test_presentation_requests_are_rate_limited(node: RunningNode) -> None:
    """[WAL-14] anyone may start requests, but not without bound; nothing is stored for a refused one."""
    url = f"{node.base_url}/presentations/requests"
    statuses = [(await fetch_json(node.http, "POST", url, json={})).status for _ in range(31)]
    assert statuses == [201] * 30 + [429]
    refused = await fetch_json(node.http, "POST", url, json={"formats": ["dc+sd-jwt"]})
    assert refused.status == 429 and refused.body["retryAfter"] > 0
    with node.services.store.bound():
        assert await WalletOffer.filter(kind="presentation").count() == 30


async def test_bad_presentation_requests_get_problems(node: RunningNode) -> None:
    """[WAL-14]"""
    url = f"{node.base_url}/presentations/requests"
    for body, field in (({"formats": ["dc+sd-jwt"]}, "formats"), ({"types": "OpenBadgeCredential"}, "types"),
                        ({"issuers": [""]}, "issuers"), ({"targetUnit": 5}, "targetUnit"),
                        ({"expiresIn": 10}, "expiresIn")):
        reply = await fetch_json(node.http, "POST", url, json=body)
        assert (reply.status, reply.body["field"]) == (400, field), reply.body
    with node.services.store.bound():
        assert await WalletOffer.all().count() == 0
    unknown = await fetch_json(node.http, "GET", f"{url}/nope")
    assert unknown.status == 404


async def test_a_worker_killed_mid_flow_loses_nothing_the_wallet_can_finish(tmp_path: Path,
                                                                            make_database_url: Any) -> None:
    """[WAL-13] Two `edufed serve` workers of one node on one database: the wallet trades its code at the first,
    which is then killed, and gets its nonce and credential from the second."""
    port, other = free_port(), free_port()
    config, admin_token = await init_node(tmp_path / "a", base_url=f"http://127.0.0.1:{port}", name="A",
                                          database_url=await make_database_url(), allow_private_networks=True)
    first = serve(config.data_dir, port, tmp_path / "a1.log")
    second = serve(config.data_dir, other, tmp_path / "a2.log")
    try:
        await healthy(port)
        await healthy(other)
        async with aiohttp.ClientSession() as http:
            made = await fetch_json(http, "POST", f"{config.base_url}/credentials/offers", json={
                "credential": template()}, headers={"Authorization": f"Bearer {admin_token}"})
            assert made.status == 201, made.body
            offer = await read_offer(http, made.body["offer"])
            granted = await token(http, offer)
            assert granted.status == 200, granted.body
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            second_worker = {"nonce_endpoint": f"http://127.0.0.1:{other}/openid4vci/nonce",
                             "credential_endpoint": f"http://127.0.0.1:{other}/openid4vci/credential"}
            wallet = PyWallet()
            proof = wallet.proof(config.base_url, await new_nonce(http, second_worker))
            reply = await credential_request(http, second_worker, granted.body["access_token"],
                                             {"credential_configuration_id": LDP, "proofs": {"jwt": [proof]}})
            assert reply.status == 200, reply.body
            assert reply.body["credentials"][0]["credential"]["credentialSubject"]["id"] == wallet.did
            state = await fetch_json(http, "GET", made.body["status"].replace(f":{port}/", f":{other}/"))
            assert state.body["state"] == "redeemed"
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(10)
