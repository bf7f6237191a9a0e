"""Every JSON example in ``protocol_spec/`` is checked: it parses, it equals its file in ``examples/``, records
satisfy their shapes, signed examples verify, and a running node accepts and produces the same shapes."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from node.catalog.records import node_signer
from node.catalog.validation import validate_document
from node.config import CredentialPolicy
from node.credentials.bitstring import Bitstring, decode, encode
from node.credentials.issuance import check_request
from node.credentials.verification import CredentialVerifier, StatusCache
from node.credentials.wallet import Wallet
from node.federation.activities import AS_CONTEXT, SECURITY_V1, note_activity, record_activity, seq_of
from node.federation.http_signatures import (
    SignatureError,
    parse_signature,
    sign_rfc9421,
    signature_base,
    verify_signature_params,
)
from node.federation.sync import digest
from node.net.client import SafeClient
from node.net.did_resolver import DidResolver
from node.store.feed import FeedEntry
from node.store.models import Delivery
from node.trust.did import did_web_from_base_url, find_verification_method
from node.trust.multikey import Ed25519Key, decode_public_multibase
from node.trust.proofs import sign, verify
from tests.conftest import MakeDatabaseUrl
from tests.harness import FAST, RunningNode, eventually, running_node

SPEC = Path(__file__).resolve().parents[1] / "protocol_spec"
EXAMPLES = SPEC / "examples"
BLOCK = re.compile(r"```json\n(.*?)\n```", re.S)
NAMED_BLOCK = re.compile(r"\(`examples/([\w.-]+)`[^\n]*\n(?:[^\n]+\n)*\n```json\n(.*?)\n```", re.S)


def load(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text("utf-8"))


def spec_blocks() -> list[tuple[str, str]]:
    return [(md.name, block) for md in sorted(SPEC.glob("*.md")) for block in BLOCK.findall(md.read_text("utf-8"))]


def named_blocks() -> list[tuple[str, str]]:
    return [pair for md in sorted(SPEC.glob("*.md")) for pair in NAMED_BLOCK.findall(md.read_text("utf-8"))]


@pytest.mark.parametrize(("where", "block"), spec_blocks())
def test_every_json_block_parses(where: str, block: str) -> None:
    json.loads(block)


@pytest.mark.parametrize(("name", "block"), named_blocks())
def test_named_blocks_equal_their_example_files(name: str, block: str) -> None:
    assert json.loads(block) == load(name)


def test_every_example_file_is_shown_in_the_spec() -> None:
    assert {name for name, _ in named_blocks()} == {p.name for p in EXAMPLES.glob("*.json")}


RECORD_EXAMPLES = ["course.json", "tombstone.json", "course-signed.json", "credit-conversion-rule.json"]


@pytest.mark.parametrize("name", RECORD_EXAMPLES)
def test_record_examples_satisfy_their_shapes(name: str) -> None:
    """[REC-6]"""
    assert validate_document(load(name)) == []


def test_signed_example_verifies_with_the_example_did_document() -> None:
    """[PRF-1] [PRF-4] [ID-4]"""
    did_document = load("did-document.json")
    signed = load("course-signed.json")
    assert {k: v for k, v in signed.items() if k != "proof"} == load("course.json")
    result = verify(signed, {did_document["id"]: did_document}.__getitem__, expected_controller=did_document["id"])
    assert result.verified, result


async def test_a_running_node_accepts_the_examples_and_serves_the_same_shapes(
    tmp_path: Path, database_url: str
) -> None:
    """[ID-3] [ID-4] [ID-5] [REC-1] [REC-4] [API-6]"""
    async with running_node(tmp_path / "node", database_url) as node:
        course = {k: v for k, v in load("course.json").items() if k not in ("id", "version", "dateModified")}
        signed = await node.publish(course)
        async with node.http.get(f"{node.base_url}/.well-known/did.json") as response:
            did_document: dict[str, Any] = await response.json(content_type=None)
    example_signed = load("course-signed.json")
    assert sorted(signed) == sorted(example_signed)
    assert signed["@context"] == example_signed["@context"]
    assert sorted(signed["proof"]) == sorted(example_signed["proof"])
    example_did = load("did-document.json")
    assert sorted(did_document) == sorted(example_did)
    assert did_document["@context"] == example_did["@context"]
    assert sorted(did_document["verificationMethod"][0]) == sorted(example_did["verificationMethod"][0])


# -- federation (sections 5 to 7) ---------------------------------------------------------------------------------

FEDERATION_EXAMPLES = ["outbox.json", "outbox-page.json", "activity-delete.json", "follow.json", "accept.json",
                       "undo.json", "note.json"]
LATER = datetime(2026, 12, 1, tzinfo=UTC)  # after every example's proof was created


def fenced(chapter: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)\n```", (SPEC / chapter).read_text("utf-8"), re.S)


def same_members(example: Any, served: Any, where: str = "$") -> None:
    """Objects have the same member names, recursively (lists: their first items); values may differ."""
    if isinstance(example, dict):
        assert isinstance(served, dict), f"{where}: expected an object, got {served!r}"
        assert sorted(example) == sorted(served), f"{where}: {sorted(example)} != {sorted(served)}"
        for name, value in example.items():
            same_members(value, served[name], f"{where}.{name}")
    elif isinstance(example, list) and example and served:
        assert isinstance(served, list), f"{where}: expected a list, got {served!r}"
        same_members(example[0], served[0], f"{where}[0]")


@pytest.mark.parametrize("name", FEDERATION_EXAMPLES)
def test_envelopes_use_only_the_activitystreams_context(name: str) -> None:
    """[PUSH-6] [DISC-4]"""
    assert load(name)["@context"] == AS_CONTEXT
    actor_context = load("actor.json")["@context"]
    assert actor_context[:2] == [AS_CONTEXT, SECURITY_V1]
    assert all(isinstance(term, dict) for term in actor_context[2:])  # inline definitions only: nothing to fetch


def test_activity_examples_are_what_the_builders_make_and_carry_records_that_verify() -> None:
    """[FEED-4] [PUSH-7] [SYNC-1]: the embedded records are the signed examples, verifiable by anyone."""
    did_document = load("did-document.json")
    resolve = {did_document["id"]: did_document}.__getitem__
    base = "https://learn.example.org"
    course = load("course-signed.json")
    created = FeedEntry(1, "Create", course["id"], 1, datetime(2026, 11, 28, 8, 0, tzinfo=UTC))
    withdrawn = FeedEntry(2, "Delete", course["id"], 2, datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    page = load("outbox-page.json")
    assert page["orderedItems"] == [record_activity(base, created, course)]
    delete = load("activity-delete.json")
    assert delete == record_activity(base, withdrawn, delete["object"])
    assert {k: v for k, v in delete["object"].items() if k != "proof"} == load("tombstone.json")
    assert verify(delete["object"], resolve, expected_controller=did_document["id"], now=LATER).verified
    assert load("note.json") == note_activity(base, created, course, ("en", "zh"))
    for name in ("outbox-page.json", "activity-delete.json"):
        activity = delete if name == "activity-delete.json" else page["orderedItems"][0]
        assert seq_of(base, activity["id"]) is not None


def _signed_request() -> tuple[dict[str, str], bytes]:
    request = fenced("06-feed-and-push.md", "http")[0]
    head, body = request.split("\n\n", 1)
    headers = dict(line.split(": ", 1) for line in head.splitlines()[1:])
    return headers, body.encode("utf-8")


def test_the_signed_request_example_verifies() -> None:
    """[PUSH-2] [PUSH-3]: the example's signature, digest and signature base are real."""
    headers, body = _signed_request()
    url = f"https://{headers['Host']}/inbox"
    params = parse_signature("POST", url, headers)
    did_document = load("did-document.json")
    method = find_verification_method(did_document, params.key_id, "authentication")
    public_key = decode_public_multibase(method["publicKeyMultibase"])
    assert params.components == ("@method", "@target-uri", "content-digest", "content-type")
    assert params.created is not None
    verify_signature_params(params, "POST", url, headers, body, public_key, now=params.created)
    base = fenced("06-feed-and-push.md", "text")[0]
    assert signature_base(params.components, params.params_value, "POST", url, headers).decode() == base
    with pytest.raises(SignatureError):
        verify_signature_params(params, "POST", url, headers, body.replace(b"Follow", b"Block"), public_key,
                                now=params.created)


def test_the_digest_example_follows_its_definition() -> None:
    """[SYNC-6]: the digest is recomputed here from the spec's text, not with the implementation's function."""
    hashed = fenced("07-sync-and-trust.md", "text")[0].replace("\\t", "\t").replace("\\n", "\n")
    lines = hashed.splitlines(keepends=True)
    assert lines == sorted(lines)
    assert load("digest.json") == {"count": len(lines), "sha256": hashlib.sha256(hashed.encode()).hexdigest()}
    pairs = [(line.split("\t")[0], int(line.split("\t")[1])) for line in lines]
    assert digest(pairs) == load("digest.json")


async def _get(node: RunningNode, path: str) -> tuple[str, Any]:
    async with node.http.get(node.base_url + path, headers={"Accept": "application/activity+json"}) as response:
        assert response.status == 200, (path, response.status)
        return response.content_type, await response.json(content_type=None)


async def _post_signed(sender: RunningNode, target: RunningNode, activity: dict[str, Any]) -> tuple[int, Any]:
    signer = node_signer(sender.base_url, sender.services.keyring)
    body = json.dumps(activity).encode()
    url = f"{target.base_url}/inbox"
    headers = {"Content-Type": "application/activity+json"}
    headers.update(sign_rfc9421("POST", url, headers, body, signer.key, signer.verification_method))
    async with sender.http.post(url, data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None) if response.status >= 400 else None


async def _queued(node: RunningNode, kind: str) -> dict[str, Any]:
    with node.services.store.bound():
        row = await Delivery.filter(activity_id__contains=f"/activities/{kind}-").first()
    assert row is not None, f"no {kind} in the delivery queue"
    result: dict[str, Any] = json.loads(row.body)
    return result


async def test_running_nodes_serve_what_the_federation_examples_show(
    tmp_path: Path, make_database_url: MakeDatabaseUrl
) -> None:
    """[DISC-1] [DISC-2] [DISC-3] [DISC-4] [DISC-8] [FEED-1] [FEED-3] [FEED-4] [FEED-7] [INBOX-5] [SYNC-6]"""
    async with running_node(tmp_path / "a", await make_database_url(), "A") as a:
        kept = await a.publish({k: v for k, v in load("course.json").items() if k not in ("id", "version")})
        gone = await a.publish({"@context": "https://w3id.org/edufed/v1", "type": "Course", "name": {"en": "Gone"}})
        async with a.http.delete(gone["id"], headers=a.admin) as response:
            assert response.status == 200
        policy = replace(FAST, seeds=(a.base_url,))
        async with running_node(tmp_path / "b", await make_database_url(), "B", federation=policy) as b:

            async def following() -> bool:
                peer = await b.peer(a)
                return peer is not None and peer["state"] == "following" and peer["cursor"] == 3

            await eventually(following, what="b to follow a and pull its feed")
            host = a.base_url.removeprefix("http://")
            served = {
                "nodeinfo-links.json": await _get(a, "/.well-known/nodeinfo"),
                "nodeinfo.json": await _get(a, "/nodeinfo/2.1"),
                "webfinger.json": await _get(a, f"/.well-known/webfinger?resource=acct:node@{host}"),
                "actor.json": await _get(a, "/actor"),
                "outbox.json": await _get(a, "/outbox"),
                "outbox-page.json": await _get(a, "/outbox?after=0&limit=1"),
                "activity-delete.json": await _get(a, "/outbox/3"),
                "peers.json": await _get(b, "/federation/peers"),
                "federation-status.json": await _get(b, "/federation/status"),
                "digest.json": await _get(a, "/federation/digest"),
            }
            served["follow.json"] = ("", await _queued(b, "follow"))
            served["accept.json"] = ("", await _queued(a, "accept"))
            like = {"@context": AS_CONTEXT, "id": f"{b.base_url}/activities/like-{uuid.uuid4()}", "type": "Like",
                    "actor": f"{b.base_url}/actor", "object": kept["id"]}
            assert (await _post_signed(b, a, like))[0] == 202
            status, problem = await _post_signed(b, a, like)
            assert status == 403
            served["inbox-refused.json"] = ("", problem)
            async with a.http.get(f"{a.base_url}/api/records", params={"limit": "1000"}) as response:
                listed = (await response.json())["items"]
    for name, (_, body) in served.items():
        same_members(load(name), body, name)
        if "@context" in load(name):
            assert body["@context"] == load(name)["@context"], name
    assert served["nodeinfo.json"][0] == "application/json"
    assert served["webfinger.json"][0] == "application/jrd+json"
    assert served["actor.json"][0] == "application/activity+json"
    outbox, page, delete = (served[n][1] for n in ("outbox.json", "outbox-page.json", "activity-delete.json"))
    assert outbox["totalItems"] == 3 and page["next"].endswith("/outbox?after=1&limit=1")
    assert [item["type"] for item in page["orderedItems"]] == ["Create"]
    assert delete["type"] == "Delete" and delete["object"]["type"] == "Tombstone"
    assert served["webfinger.json"][1]["subject"] == f"acct:node@{host}"
    assert served["nodeinfo.json"][1]["metadata"]["edufed"]["records"] == {"own": 1, "mirrored": 0}
    assert served["peers.json"][1]["peers"][0]["url"] == a.base_url
    assert "replay" in problem["title"] and problem["field"] == "id"
    # the digest recomputed from the record list by the definition of section 7.4
    live = sorted(f"{item['id']}\t{item['version']}\n" for item in listed if not item["deleted"])
    assert served["digest.json"][1] == {"count": len(live),
                                        "sha256": hashlib.sha256("".join(live).encode()).hexdigest()}


# -- credentials and status lists (sections 8 and 9) --------------------------------------------------------------

CREDENTIAL_EXAMPLES = ["credential-issue-request.json", "credential.json", "status-list-credential.json",
                       "verify-response.json", "verify-response-revoked.json", "transcript.json"]
NODE_FILLS = ("id", "issuer", "validFrom", "credentialStatus", "proof")
W3C_KEY_PAIR = Path(__file__).resolve().parent / "vectors" / "w3c-vc-di-eddsa" / "TestVectors" / "keyPair.json"


class _ExampleWeb:
    """The example DID document and status lists in place of the network (the example origins do not exist)."""

    def __init__(self, documents: dict[str, Any]) -> None:
        self.documents = documents

    async def resolve(self, did: str, *, refresh: bool = False) -> dict[str, Any]:
        return dict(self.documents[did])

    async def resolve_for(self, did: str, method_ids: Any) -> dict[str, Any]:
        return await self.resolve(did)

    async def get_json(self, url: str) -> Any:
        return self.documents[url]


def _offline_verifier(documents: dict[str, Any]) -> CredentialVerifier:
    web = _ExampleWeb(documents)
    return CredentialVerifier(cast(DidResolver, web), StatusCache(cast(SafeClient, web), cast(DidResolver, web), 0))


def _cleared_list(status_list: dict[str, Any], url: str) -> dict[str, Any]:
    """A list like the example but at ``url`` with no bit set, signed with the same (public W3C test) key."""
    key = Ed25519Key.from_private_multibase(json.loads(W3C_KEY_PAIR.read_text("utf-8"))["privateKeyMultibase"])
    unsigned = {k: v for k, v in status_list.items() if k != "proof"}
    purpose = url.rsplit("-", 1)[-1]
    unsigned.update(id=url, credentialSubject={**status_list["credentialSubject"], "id": f"{url}#list",
                                               "statusPurpose": purpose, "encodedList": encode(Bitstring())})
    created = datetime.fromisoformat(status_list["proof"]["created"].replace("Z", "+00:00"))
    return sign(unsigned, key, status_list["proof"]["verificationMethod"], created)


def test_the_credential_examples_are_what_the_verifier_says_of_them() -> None:
    """[VC-1] [VC-2] [VC-3] [VC-6] [VC-7] [VC-8] [VC-9] [STATUS-1] [STATUS-2] [STATUS-3] [STATUS-5] [STATUS-8]:
    the credential and the status list verify with the example DID document (the W3C test key); the credential's
    revocation bit is the list's only set bit; the verify responses are what the verifier answers with and without
    it."""
    did_document = load("did-document.json")
    did = did_document["id"]
    credential, status_list = load("credential.json"), load("status-list-credential.json")
    request = load("credential-issue-request.json")
    assert sorted(request) == ["credential"]
    assert check_request(request["credential"], did) == request["credential"]
    assert {k: v for k, v in credential.items() if k not in NODE_FILLS} == request["credential"]
    assert credential["issuer"] == {"id": did, "type": ["Profile"], "name": credential["issuer"]["name"]}
    for document in (credential, status_list):
        assert verify(document, {did: did_document}.__getitem__, expected_controller=did, now=LATER).verified
    revocation, suspension = credential["credentialStatus"]
    assert [revocation["statusPurpose"], suspension["statusPurpose"]] == ["revocation", "suspension"]
    assert revocation["statusListIndex"] == suspension["statusListIndex"]
    bits = decode(status_list["credentialSubject"]["encodedList"])
    assert bits.size == 131072 and bits.set_indices() == [int(revocation["statusListIndex"])]
    assert status_list["id"] == revocation["statusListCredential"] and status_list["issuer"] == did

    documents = {did: did_document, status_list["id"]: status_list}
    revoked = asyncio.run(_offline_verifier(documents).verify_credential(credential, LATER))
    assert revoked.as_json() == load("verify-response-revoked.json")
    documents[status_list["id"]] = _cleared_list(status_list, status_list["id"])
    documents[suspension["statusListCredential"]] = _cleared_list(status_list, suspension["statusListCredential"])
    assert asyncio.run(_offline_verifier(documents).verify_credential(credential, LATER)).as_json() == load(
        "verify-response.json")
    tampered = copy.deepcopy(credential)
    tampered["credentialSubject"]["achievement"]["creditsAvailable"] = 50
    failed = asyncio.run(_offline_verifier(documents).verify_credential(tampered, LATER)).as_json()
    # the proof fails, so the status lists are not fetched: the status stays unknown
    assert [c["check"] for c in failed["checks"] if not c["ok"]] == ["proof", "status"]
    assert "not checked" in next(c["reason"] for c in failed["checks"] if c["check"] == "status")


def _example_request(subject: str, name: str, credits: int, system: str) -> dict[str, Any]:
    request = copy.deepcopy(load("credential-issue-request.json"))
    request["credential"]["name"] = name
    request["credential"]["credentialSubject"]["id"] = subject
    request["credential"]["credentialSubject"]["achievement"].update(
        name=name, creditsAvailable=credits, creditSystem=f"https://w3id.org/edufed/credit-systems/{system}")
    return request


async def test_a_running_node_issues_verifies_and_adds_up_as_the_credential_examples_show(
    tmp_path: Path, database_url: str
) -> None:
    """[VC-6] [VC-9] [VC-12] [VC-14] [VC-15] [STATUS-5] [STATUS-6] [STATUS-8]"""
    wallet = Wallet(tmp_path / "wallet")
    wallet.init()
    uncached = CredentialPolicy(status_cache_seconds=0.0)  # so the revocation shows at once
    transcript_example = load("transcript.json")
    async with running_node(tmp_path / "node", database_url, credentials=uncached) as node:

        async def post(path: str, body: dict[str, Any], admin: bool = False) -> tuple[int, Any]:
            async with node.http.post(node.base_url + path, json=body,
                                      headers=node.admin if admin else {}) as response:
                return response.status, await response.json(content_type=None)

        credentials = []
        for line in transcript_example["lines"]:
            system = line["credits"]["unit"].rsplit("/", 1)[-1]
            status, issued = await post("/credentials/issue", _example_request(
                wallet.did, line["achievement"], int(line["credits"]["value"]), system), admin=True)
            assert status == 201 and sorted(issued) == ["verifiableCredential"], issued
            credentials.append(issued["verifiableCredential"])
        credential = credentials[0]
        status_url = credential["credentialStatus"][0]["statusListCredential"]
        async with node.http.get(status_url) as response:
            assert response.content_type == "application/ld+json"
            status_list = await response.json(content_type=None)
        verified = await post("/credentials/verify", {"verifiableCredential": credential})
        challenge, domain = "c-1", "transcripts.example"
        for issued_credential in credentials:
            wallet.add(issued_credential)
        presentation = wallet.present(challenge, domain, [c["id"] for c in credentials])
        transcript = await post("/credits/transcript", {
            "verifiablePresentation": presentation, "targetUnit": "ECTS",
            "options": {"challenge": challenge, "domain": domain}})
        update = await post("/credentials/status", {"credentialId": credential["id"], "status": "revoked"}, True)
        revoked = await post("/credentials/verify", {"verifiableCredential": credential})
    same_members(load("credential.json"), credential, "credential.json")
    assert credential["@context"] == load("credential.json")["@context"]
    assert credential["issuer"]["id"] == did_web_from_base_url(node.base_url)
    same_members(load("status-list-credential.json"), status_list, "status-list-credential.json")
    assert status_list["@context"] == load("status-list-credential.json")["@context"]
    assert verified[0] == 200
    assert verified[1] == {**load("verify-response.json"), "checks": [
        {**c, "reason": verified[1]["checks"][1]["reason"]} if c["check"] == "issuer" else c
        for c in load("verify-response.json")["checks"]]}
    assert update == (200, {"credentialId": credential["id"], "revoked": True, "suspended": False})
    assert revoked[0] == 422
    example_revoked = load("verify-response-revoked.json")
    same_members(example_revoked, revoked[1], "verify-response-revoked.json")
    assert [(c["check"], c["ok"]) for c in revoked[1]["checks"]] == [
        (c["check"], c["ok"]) for c in example_revoked["checks"]]
    assert revoked[1]["problemDetails"] == example_revoked["problemDetails"]
    assert transcript[0] == 200
    served = transcript[1]
    same_members(transcript_example, served, "transcript.json")
    assert served["total"] == transcript_example["total"]
    for example_line, line in zip(transcript_example["lines"], served["lines"], strict=True):
        same_members(example_line, line, "transcript.json lines")
        assert {k: v for k, v in line.items() if k not in ("credential", "issuer")} == {
            k: v for k, v in example_line.items() if k not in ("credential", "issuer")}
