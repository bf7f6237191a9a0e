"""Credentials as the VC 2.0 data model defines them, between a real node and real web servers on loopback:
generic issuance, the data model's refusals, https:// issuers, VC 1.1 credentials, proof sets and chains,
presentations without a holder, the node's own revocations, and links never followed after a failed proof."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from node.config import CredentialPolicy
from node.credentials.bitstring import Bitstring, encode
from node.credentials.wallet import Wallet
from node.store.models import IssuedCredential
from node.trust.did import did_web_from_base_url
from node.trust.multikey import Ed25519Key, encode_multibase
from node.trust.proofs import _hash_data, _with_suite_context, sign
from tests.conftest import MakeDatabaseUrl
from tests.harness import RunningNode, free_port, running_node
from tests.interop_verifier import verify_independently
from tests.test_credentials import failed, set_status, verify_on

VC1 = "https://www.w3.org/2018/credentials/v1"
VC2 = "https://www.w3.org/ns/credentials/v2"
EXAMPLES = "https://www.w3.org/ns/credentials/examples/v2"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
async def node(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> AsyncIterator[RunningNode]:
    async with running_node(tmp_path / "node", await make_database_url(), "Registry") as running:
        yield running


class Web:
    """A plain web server on loopback: a controller document, a status list, and a count of every GET."""

    def __init__(self) -> None:
        self.port = free_port()
        self.documents: dict[str, Any] = {}
        self.hits: list[str] = []

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"  # the node fetches loopback over http (private allowed)

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        document = self.documents.get(request.path)
        return web.json_response(document) if document is not None else web.Response(status=404)


@pytest.fixture
async def site() -> AsyncIterator[Web]:
    server = Web()
    app = web.Application()
    app.router.add_get("/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", server.port).start()
    try:
        yield server
    finally:
        await runner.cleanup()


def did_key_signer() -> tuple[Ed25519Key, str, str]:
    key = Ed25519Key.generate()
    did = f"did:key:{key.public_multibase}"
    return key, did, f"{did}#{key.public_multibase}"


def plain(issuer: str, **extra: Any) -> dict[str, Any]:
    return {"@context": [VC2, EXAMPLES], "type": ["VerifiableCredential", "ExampleDegreeCredential"],
            "issuer": issuer, "validFrom": "2025-01-01T00:00:00Z",
            "credentialSubject": {"id": "did:example:ebfeb1f712ebc6f1c276e12ec21", "degree": "Bachelor"},
            **extra}


async def issue_request(node: RunningNode, credential: Any) -> tuple[int, dict[str, Any]]:
    async with node.http.post(f"{node.base_url}/credentials/issue", json={"credential": credential},
                              headers=node.admin) as response:
        return response.status, await response.json(content_type=None)


async def issued_count(node: RunningNode) -> int:
    with node.services.store.bound():
        return await IssuedCredential.all().count()


async def test_any_vc2_credential_is_issued_with_every_property_kept_and_signed(node: RunningNode) -> None:
    """[VC-5] [VC-6] [VC-7]"""
    did = did_web_from_base_url(node.base_url)
    credential = {
        "@context": [VC2, EXAMPLES],
        "id": "urn:uuid:1c3a6f4e-8f7b-4c4e-9e0f-2f8e8b7c9d10",
        "type": ["VerifiableCredential", "ExampleMembershipCredential"],
        "name": [{"@value": "Membership", "@language": "en"}, {"@value": "Mitgliedschaft", "@language": "de"}],
        "description": {"@value": "Member of the pottery guild", "@language": "en", "@direction": "ltr"},
        "credentialSubject": [{"id": "did:example:alice", "memberOf": "Pottery guild"}, {"name": "Bob"}],
        "evidence": [{"type": "ExampleEvidence", "id": "https://example.org/evidence/1"}],
        "termsOfUse": {"type": "ExampleIssuerPolicy"},
        "refreshService": {"type": "ExampleRefresh", "id": "https://example.org/refresh/1"},
        "credentialSchema": {"type": "JsonSchema", "id": "https://example.org/schemas/membership.json"},
        "relatedResource": [{"id": VC2, "digestSRI":
                             "sha384-NSOcNpmdIVUxIJGvGUoe22FjTWrXiaXlsZ8q6912LdnR3KraQO2n75Ica4wK4Qeg"}],
        "credentialStatus": {"type": "ExampleStatusMethod", "id": "https://example.org/status/1"},
    }
    status, body = await issue_request(node, credential)
    assert status == 201, body
    issued = body["verifiableCredential"]
    for member in ("id", "name", "description", "credentialSubject", "evidence", "termsOfUse", "refreshService",
                   "credentialSchema", "relatedResource"):
        assert issued[member] == credential[member], member
    assert issued["issuer"] == did
    # the caller's status entry is kept, the node's own come after it
    assert [e["type"] for e in issued["credentialStatus"]] == [
        "ExampleStatusMethod", "BitstringStatusListEntry", "BitstringStatusListEntry"]
    status, verdict = await verify_on(node, issued)
    # a status method the node cannot check leaves the status unknown: refused, and said so
    assert status == 422 and failed(verdict) == ["status"], verdict
    assert "not supported" in next(c["reason"] for c in verdict["checks"] if c["check"] == "status")

    status, body = await issue_request(node, credential)
    assert status == 409 and body["field"] == "id"

    simple = {k: v for k, v in credential.items() if k not in ("id", "credentialStatus")}
    status, body = await issue_request(node, simple)
    assert status == 201, body
    issued = body["verifiableCredential"]
    assert issued["id"].startswith("urn:uuid:") and issued["proof"]["cryptosuite"] == "eddsa-rdfc-2022"
    status, verdict = await verify_on(node, issued)
    assert status == 200, verdict
    schema = next(c for c in verdict["checks"] if c["check"] == "schema")
    assert schema["ok"] and "not an Open Badges credential" in schema["reason"]
    # and the independent JavaScript stack (digitalbazaar vc) verifies it too, status lists included
    async with node.http.get(f"{node.base_url}/.well-known/did.json") as response:
        did_document = await response.json(content_type=None)
    lists = {}
    for entry in issued["credentialStatus"]:
        async with node.http.get(entry["statusListCredential"]) as response:
            lists[entry["statusListCredential"]] = await response.json(content_type=None)
    result = await asyncio.to_thread(verify_independently, issued, {did: did_document}, kind="credential",
                                     status_lists=lists)
    assert result == {"verified": True, "error": ""}


async def test_the_issuer_refuses_what_breaks_the_data_model_and_stores_nothing(node: RunningNode) -> None:
    """[VC-0] [VC-5]"""
    base = {"@context": [VC2], "type": ["VerifiableCredential"], "credentialSubject": {"id": "did:example:s"}}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**base, "@context": [EXAMPLES]}, "@context"),
        ({**base, "@context": [VC2, "https ://not-a-url/v1"]}, "@context"),
        ({**base, "@context": [VC2, 12]}, "@context"),
        ({**base, "@context": [VC2, "https://example.org/unbundled/v1"]}, "@context"),
        ({k: v for k, v in base.items() if k != "type"}, "type"),
        ({**base, "type": ["ExampleCredential"]}, "type"),
        ({**base, "@context": [VC2, {"@vocab": None}], "type": ["VerifiableCredential", "Unmapped"]}, "@context"),
        ({**base, "@context": [VC2, {"VerifiableCredential": "https://example.org/#Bad"}]}, "@context"),
        ({**base, "id": None}, "id"),
        ({**base, "id": ["https://a.example/1", "https://b.example/1"]}, "id"),
        ({**base, "id": "https ://not-a-url/1"}, "id"),
        ({**base, "id": "urn:uuid:" + "7" * 300}, "id"),
        ({**base, "issuer": "did:web:someone-else.example"}, "issuer"),
        ({**base, "issuer": None}, "issuer"),
        ({k: v for k, v in base.items() if k != "credentialSubject"}, "credentialSubject"),
        ({**base, "credentialSubject": {}}, "credentialSubject"),
        ({**base, "credentialSubject": [{"id": "did:example:s"}, {}]}, "credentialSubject[1]"),
        ({**base, "credentialSubject": {"id": ["did:example:a", "did:example:b"]}}, "credentialSubject.id"),
        ({**base, "validFrom": "Sat 25 Feb 2023 07:16:31 PM CST"}, "validFrom"),
        ({**base, "validFrom": "2023-02-26T01:21:51"}, "validFrom"),
        ({**base, "validFrom": "2027-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z"}, "validUntil"),
        ({**base, "issuanceDate": "2023-02-26T01:21:51Z"}, "issuanceDate"),
        ({**base, "@context": [VC1], "validFrom": "2023-02-26T01:21:51Z"}, "validFrom"),
        ({**base, "credentialStatus": {"id": "https://example.org/status/1"}}, "credentialStatus.type"),
        ({**base, "credentialStatus": {"type": 2}}, "credentialStatus.type"),
        ({**base, "termsOfUse": {}}, "termsOfUse.type"),
        ({**base, "evidence": [{"type": "Evidence"}, "https://example.org/e"]}, "evidence[1]"),
        ({**base, "credentialSchema": {"type": "JsonSchema"}}, "credentialSchema.id"),
        ({**base, "name": {"@value": "N", "@language": "en", "url": "x"}}, "name"),
        ({**base, "name": {"@value": "N", "@language": "not a lang!!"}}, "name"),
        ({**base, "description": 7}, "description"),
        ({**base, "relatedResource": ["https://example.org/r"]}, "relatedResource[0]"),
        ({**base, "relatedResource": [{"id": VC2}]}, "relatedResource[0]"),
        ({**base, "relatedResource": [{"id": VC2, "digestMultibase":
                                       "uM4RgWQc3RUDtjJCSgTJtTfvpZ7SPEg_LNO0ESlovQC0"}]},
         "relatedResource[0].digestMultibase"),
        ({**base, "statusEntry": {"type": "BitstringStatusListEntry", "statusListIndex": True,
                                  "statusListCredential": "https://example.com", "statusPurpose": "revocation"}},
         "statusEntry.statusListIndex"),
        ({**base, "proof": {"type": "DataIntegrityProof"}}, "proof"),
        ({**base, "type": ["VerifiableCredential", "OpenBadgeCredential"]}, "@context"),
    ]
    for credential, field in cases:
        status, problem = await issue_request(node, credential)
        assert status == 422, (field, problem)
        assert problem["field"] == field, (field, problem)
        assert problem["title"] and problem["type"].startswith("https://w3id.org/edufed/problems#")
    assert await issued_count(node) == 0  # nothing was stored
    status, body = await issue_request(node, {**base, "id": "urn:uuid:00000000-0000-4000-8000-000000000001"})
    assert status == 201, body
    assert await issued_count(node) == 1


async def test_the_node_knows_its_own_revocations_at_once(node: RunningNode) -> None:
    """[STATUS-9] Its own verifier reads its own lists from its database: no cache between revoke and verify."""
    status, body = await issue_request(node, {"@context": [VC2], "type": ["VerifiableCredential"],
                                              "credentialSubject": {"id": "did:example:learner"}})
    assert status == 201, body
    credential = body["verifiableCredential"]
    assert (await verify_on(node, credential))[0] == 200
    await set_status(node, credential["id"], "suspended")
    status, verdict = await verify_on(node, credential)
    assert status == 422 and "suspended" in next(c["reason"] for c in verdict["checks"] if c["check"] == "status")
    await set_status(node, credential["id"], "reinstated")
    assert (await verify_on(node, credential))[0] == 200
    await set_status(node, credential["id"], "revoked")
    status, verdict = await verify_on(node, credential)
    assert status == 422 and "revoked" in next(c["reason"] for c in verdict["checks"] if c["check"] == "status")


async def test_an_https_issuer_verifies_through_its_controller_document(node: RunningNode, site: Web) -> None:
    """[VC-10]"""
    key = Ed25519Key.generate()
    issuer = site.url("/issuers/565049")
    method = f"{issuer}#key-1"
    site.documents["/issuers/565049"] = {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": issuer,
        "verificationMethod": [{"id": method, "type": "Multikey", "controller": issuer,
                                "publicKeyMultibase": key.public_multibase}],
        "assertionMethod": [method],
    }
    credential = sign(plain(issuer), key, method, NOW)
    status, verdict = await verify_on(node, credential)
    assert status == 200, verdict
    assert next(c for c in verdict["checks"] if c["check"] == "issuer")["reason"] == issuer

    # a document that names another identifier is not this issuer's
    site.documents["/issuers/other"] = {**site.documents["/issuers/565049"], "id": site.url("/issuers/565049")}
    other = sign(plain(site.url("/issuers/other")), key, f"{site.url('/issuers/other')}#key-1", NOW)
    status, verdict = await verify_on(node, other)
    assert status == 422 and failed(verdict) == ["issuer"], verdict
    # a key the issuer's document lists but not for assertions does not sign its credentials
    site.documents["/issuers/auth-only"] = {
        "id": site.url("/issuers/auth-only"),
        "verificationMethod": [{"id": site.url("/issuers/auth-only") + "#key-1", "type": "Multikey",
                                "controller": site.url("/issuers/auth-only"),
                                "publicKeyMultibase": key.public_multibase}],
        "authentication": [site.url("/issuers/auth-only") + "#key-1"],
    }
    auth_only = sign(plain(site.url("/issuers/auth-only")), key, site.url("/issuers/auth-only") + "#key-1", NOW)
    status, verdict = await verify_on(node, auth_only)
    assert status == 422 and "proof" in failed(verdict), verdict
    # a plain http:// issuer is not accepted
    status, verdict = await verify_on(node, {**credential, "issuer": issuer.replace("https:", "http:")})
    assert status == 422 and failed(verdict) == ["issuer"], verdict


async def test_a_credential_whose_proof_fails_is_not_followed(node: RunningNode, site: Web) -> None:
    """[VC-16] Its status list (any URL a stranger writes) is never fetched."""
    key, did, method = did_key_signer()
    lists = f"http://127.0.0.1:{site.port}/lists/1"
    entry = {"id": f"{lists}#5", "type": "BitstringStatusListEntry", "statusPurpose": "revocation",
             "statusListIndex": "5", "statusListCredential": lists}
    credential = sign(plain(did, credentialStatus=entry), key, method, NOW)
    tampered = copy.deepcopy(credential)
    tampered["credentialSubject"]["degree"] = "Doctorate"
    status, verdict = await verify_on(node, tampered)
    assert status == 422 and failed(verdict) == ["proof", "status"], verdict
    assert site.hits == []
    status, verdict = await verify_on(node, credential)  # a good proof: the list is fetched (and is missing)
    assert status == 422 and failed(verdict) == ["status"], verdict
    assert site.hits == ["/lists/1"]


def proof_for(document: dict[str, Any], key: Ed25519Key, method: str, **extra: str) -> dict[str, Any]:
    """An eddsa-rdfc-2022 proof with members ``sign`` does not set (``id``, ``previousProof``): built by hand
    from the cryptosuite's steps, as another implementation would."""
    options = {"type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022", "created": "2026-01-05T12:00:00Z",
               "verificationMethod": method, "proofPurpose": "assertionMethod", **extra}
    data = _hash_data({"@context": document["@context"], **options}, document)
    return {**options, "proofValue": encode_multibase(key.sign(data))}


def _vc11(issuer: str) -> dict[str, Any]:
    return {"@context": [VC1, {"@context": {"AlumniCredential": "https://www.example.org/AlumniCredential",
                                            "alumniOf": "https://www.example.org/alumniOf"}}],
            "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33", "type": ["VerifiableCredential", "AlumniCredential"],
            "issuer": issuer, "issuanceDate": "2023-01-01T00:00:00Z",
            "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School of Examples"}}


async def test_vc11_credentials_and_proof_chains_verify_with_each_proof_reported(node: RunningNode) -> None:
    """[VC-7] [VC-8]"""
    issuer_key, issuer, issuer_method = did_key_signer()
    notary_key, notary, notary_method = did_key_signer()
    single = sign(_vc11(issuer), issuer_key, issuer_method, NOW)
    status, verdict = await verify_on(node, single)
    assert status == 200, verdict
    assert next(c for c in verdict["checks"] if c["check"] == "structure")["reason"] == "VC 1.1 data model"

    document = {**_vc11(issuer), "@context": _with_suite_context(_vc11(issuer)["@context"])}
    notary_proof = proof_for(document, notary_key, notary_method, id="urn:uuid:26329423-bec9-4b2e-88cb-a7c7d9dc4544")
    # the issuer's proof chains to the notary's (previousProof): it signs the document with that proof in it
    issuer_proof = proof_for({**document, "proof": notary_proof}, issuer_key, issuer_method,
                             previousProof=notary_proof["id"])
    chain = {**document, "proof": [notary_proof, issuer_proof]}
    status, verdict = await verify_on(node, chain)
    assert status == 200, verdict["checks"]
    proof_check = next(c for c in verdict["checks"] if c["check"] == "proof")
    assert f"1 by {issuer}" in proof_check["reason"] and notary in proof_check["reason"]

    broken = copy.deepcopy(chain)
    broken["proof"][1]["previousProof"] = "urn:uuid:not-in-this-set"
    status, verdict = await verify_on(node, broken)
    assert status == 422 and "previous-proof" in verdict["checks"][2]["reason"], verdict

    only_notary = {**document, "proof": notary_proof}  # the issuer's proof is required
    status, verdict = await verify_on(node, only_notary)
    assert status == 422 and f"no proof is made with a key of {issuer}" in verdict["checks"][2]["reason"]

    mixed = _vc11(issuer)
    mixed["validFrom"] = "2023-01-01T00:00:00Z"
    status, verdict = await verify_on(node, sign(mixed, issuer_key, issuer_method, NOW))
    assert status == 422 and failed(verdict) == ["structure"] and "validFrom" in verdict["checks"][0]["reason"]


async def test_presentations_as_vc2_defines_them(node: RunningNode) -> None:
    """[VC-12] [VC-13] [VC-17]"""
    holder_key, holder, holder_method = did_key_signer()
    issuer_key, issuer, issuer_method = did_key_signer()
    credential = sign(plain(issuer), issuer_key, issuer_method, NOW)
    empty = sign({"@context": [VC2], "type": ["VerifiablePresentation"]}, holder_key, holder_method, NOW,
                 proof_purpose="authentication", challenge="c-1", domain="verifier.example")
    with_credential = sign({"@context": [VC2], "type": ["VerifiablePresentation"], "holder": {"id": holder},
                            "verifiableCredential": [credential]}, holder_key, holder_method, NOW,
                           proof_purpose="authentication", challenge="c-1", domain="verifier.example")
    options = {"challenge": "c-1", "domain": "verifier.example"}
    for route in ("/presentations/verify", "/credentials/verify"):  # VC-API clients send them to both
        for presentation in (empty, with_credential):
            async with node.http.post(f"{node.base_url}{route}", json={
                    "verifiablePresentation": presentation, "options": options}) as response:
                assert response.status == 200, await response.text()
    bad_requests: list[tuple[dict[str, Any], str]] = [
        ({"verifiablePresentation": with_credential, "options": {"challenge": 7}}, "options.challenge"),
        ({"verifiablePresentation": with_credential, "options": {**options, "holderMustBeSubject": "yes"}},
         "options.holderMustBeSubject"),
        ({"verifiablePresentation": with_credential, "options": []}, "options"),
    ]
    for body, field in bad_requests:
        async with node.http.post(f"{node.base_url}/presentations/verify", json=body) as response:
            problem = await response.json(content_type=None)
            assert response.status == 400 and problem["field"] == field, problem
    refused: list[tuple[Any, str]] = [
        ({**with_credential, "holder": "z6MkNotAUrl"}, "structure"),
        ({**with_credential, "verifiableCredential": ["eyJhbGciOiJFUzI1NiJ9.e30.sig"]}, "structure"),
        ({**with_credential, "@context": [{"X": "https://example.org/X"}, VC2]}, "structure"),
        ({k: v for k, v in with_credential.items() if k != "proof"}, "structure"),
        ({**with_credential, "type": ["ExamplePresentation"]}, "structure"),
    ]
    for presentation, check in refused:
        async with node.http.post(f"{node.base_url}/presentations/verify", json={
                "verifiablePresentation": presentation, "options": options}) as response:
            verdict = await response.json(content_type=None)
            assert response.status == 422 and check in failed(verdict), verdict
    tampered = copy.deepcopy(with_credential)
    tampered["verifiableCredential"][0]["credentialSubject"]["degree"] = "Doctorate"
    async with node.http.post(f"{node.base_url}/presentations/verify", json={
            "verifiablePresentation": tampered, "options": options}) as response:
        verdict = await response.json(content_type=None)
        assert response.status == 422 and "proof" in failed(verdict["credentialResults"][0]), verdict


async def test_an_open_badges_302_vc11_credential_with_status_list_2021_counts_in_a_transcript(
    site: Web, tmp_path: Path, make_database_url: MakeDatabaseUrl
) -> None:
    """[VC-7] [VC-14] [STATUS-8] A credential already in a wallet: Open Badges 3.0.2 on VC 1.1, its status in a
    Status List 2021, verified and counted like the node's own; revoked, it no longer counts."""
    key, issuer, method = did_key_signer()
    wallet = Wallet(tmp_path / "wallet")
    wallet.init()
    lists = f"http://127.0.0.1:{site.port}/status/2021"

    def status_list(bits: Bitstring) -> dict[str, Any]:
        return sign({"@context": [VC1, "https://w3id.org/vc/status-list/2021/v1"], "id": lists,
                     "type": ["VerifiableCredential", "StatusList2021Credential"], "issuer": issuer,
                     "issuanceDate": "2025-01-01T00:00:00Z",
                     "credentialSubject": {"id": f"{lists}#list", "type": "StatusList2021",
                                           "statusPurpose": "revocation", "encodedList": encode(bits)[1:]}},
                    key, method, NOW)

    site.documents["/status/2021"] = status_list(Bitstring())
    badge = sign({
        "@context": [VC1, "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.2.json",
                     "https://w3id.org/vc/status-list/2021/v1", "https://w3id.org/edufed/credentials/v1"],
        "id": "urn:uuid:9b1f2c7e-3d4a-4e5b-8c6d-7e8f9a0b1c2d",
        "type": ["VerifiableCredential", "OpenBadgeCredential"], "name": "Glassblowing",
        "issuer": {"id": issuer, "type": "Profile", "name": "Glass studio"},
        "issuanceDate": "2025-03-01T00:00:00Z",
        "credentialSubject": {"id": wallet.did, "type": "AchievementSubject", "achievement": {
            "id": "https://glass.example/achievements/1", "type": "Achievement", "name": "Glassblowing",
            "criteria": {"narrative": "Blew a vase."}, "creditsAvailable": 3,
            "creditSystem": "https://w3id.org/edufed/credit-systems/ECTS"}},
        "credentialStatus": {"id": f"{lists}#42", "type": "StatusList2021Entry", "statusPurpose": "revocation",
                             "statusListIndex": "42", "statusListCredential": lists},
    }, key, method, NOW)
    no_cache = CredentialPolicy(status_cache_seconds=0.0)
    async with running_node(tmp_path / "bank", await make_database_url(), "Bank", credentials=no_cache) as node:
        await _count_and_revoke(node, site, wallet, badge, status_list)


async def _count_and_revoke(node: RunningNode, site: Web, wallet: Wallet, badge: dict[str, Any],
                            status_list: Any) -> None:
    status, verdict = await verify_on(node, badge)
    assert status == 200, verdict
    assert next(c for c in verdict["checks"] if c["check"] == "schema")["ok"]
    wallet.add(badge)
    request = {"verifiablePresentation": wallet.present("c-9", "bank.example"), "targetUnit": "ECTS",
               "options": {"challenge": "c-9", "domain": "bank.example"}}
    async with node.http.post(f"{node.base_url}/credits/transcript", json=request) as response:
        transcript = await response.json(content_type=None)
    assert response.status == 200 and transcript["total"]["value"] == "3", transcript

    revoked = Bitstring()
    revoked.set(42, True)
    site.documents["/status/2021"] = status_list(revoked)
    status, verdict = await verify_on(node, badge)
    assert status == 422 and failed(verdict) == ["status"], verdict
    async with node.http.post(f"{node.base_url}/credits/transcript", json=request) as response:
        transcript = await response.json(content_type=None)
    assert transcript["total"]["value"] == "0" and "revoked" in transcript["lines"][0]["reason"], transcript


async def test_odd_links_in_a_signed_credential_get_a_verdict_not_a_server_error(node: RunningNode) -> None:
    """Issuer URLs and status list URLs that no client can fetch fail their check with a reason."""
    key, did, method = did_key_signer()
    for url in ("ftp://lists.example/1", "did:example:list", "http://[::1", "https://", "urn:uuid:1",
                "http://10.0.0.1:99999/x"):
        entry = {"type": "BitstringStatusListEntry", "statusPurpose": "revocation", "statusListIndex": "1",
                 "statusListCredential": url}
        status, verdict = await verify_on(node, sign(plain(did, credentialStatus=entry), key, method, NOW))
        assert status == 422 and failed(verdict) == ["status"], (url, verdict)
    for issuer in ("https://[::1", "https://", "https://issuer.example/a#frag", "https://127.0.0.1:1/none"):
        credential = sign(plain(issuer), key, f"{issuer}#key-1", NOW)
        status, verdict = await verify_on(node, credential)
        assert status == 422 and failed(verdict) == ["issuer"], (issuer, verdict)
