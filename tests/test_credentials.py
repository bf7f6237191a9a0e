"""Credentials between real nodes: issue on one, verify on another and independently, revoke, suspend,
present from a wallet, and a transcript of credits from three cities converted by published rules."""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.config import CredentialPolicy
from node.credentials.wallet import Wallet
from node.store.models import IssuedCredential
from tests.conftest import MakeDatabaseUrl
from tests.harness import RunningNode, eventually, running_node
from tests.interop_verifier import sign_independently, verify_independently

VC2 = "https://www.w3.org/ns/credentials/v2"
OB3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
EDUFED_CREDENTIALS = "https://w3id.org/edufed/credentials/v1"
SYSTEMS = "https://w3id.org/edufed/credit-systems/"


def achievement_credential(subject: str, name: str, credits: float | None = None, system: str = "ECTS",
                           **extra: Any) -> dict[str, Any]:
    achievement: dict[str, Any] = {"id": f"https://example.org/achievements/{name.lower().replace(' ', '-')}",
                                   "type": ["Achievement"], "name": name,
                                   "criteria": {"narrative": "Attended every session and passed the final task."}}
    if credits is not None:
        achievement.update(creditsAvailable=credits, creditSystem=SYSTEMS + system)
    return {
        "@context": [VC2, OB3, EDUFED_CREDENTIALS],
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": name,
        "credentialSubject": {"id": subject, "type": ["AchievementSubject"], "achievement": achievement},
        **extra,
    }


@dataclass
class Bank:
    nodes: list[RunningNode]
    wallet: Wallet


async def issue(node: RunningNode, credential: dict[str, Any]) -> dict[str, Any]:
    async with node.http.post(f"{node.base_url}/credentials/issue", json={"credential": credential},
                              headers=node.admin) as response:
        assert response.status == 201, await response.text()
        body: dict[str, Any] = await response.json()
        return dict(body["verifiableCredential"])


async def verify_on(node: RunningNode, credential: Any) -> tuple[int, dict[str, Any]]:
    async with node.http.post(f"{node.base_url}/credentials/verify",
                              json={"verifiableCredential": credential}) as response:
        return response.status, await response.json(content_type=None)


async def set_status(node: RunningNode, credential_id: str, status: str) -> None:
    async with node.http.post(f"{node.base_url}/credentials/status", headers=node.admin,
                              json={"credentialId": credential_id, "credentialStatus": [
                                  {"type": "BitstringStatusListEntry", "status": status}]}) as response:
        assert response.status == 200, await response.text()


def failed(verdict: dict[str, Any]) -> list[str]:
    return [c["check"] for c in verdict["checks"] if not c["ok"]]


@pytest.fixture
async def bank(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> AsyncIterator[Bank]:
    """Three city nodes that trust status lists for one second, and a learner's wallet."""
    async with AsyncExitStack() as stack:
        quick = CredentialPolicy(status_cache_seconds=1.0)  # so a revocation shows within the test
        nodes = [
            await stack.enter_async_context(
                running_node(tmp_path / name, await make_database_url(), name, credentials=quick))
            for name in ("Shanghai", "Helsinki", "Bologna")
        ]
        wallet = Wallet(tmp_path / "wallet")
        wallet.init()
        yield Bank(nodes, wallet)


async def test_a_credential_issued_on_one_node_verifies_on_another_and_independently(bank: Bank) -> None:
    shanghai, helsinki, _ = bank.nodes
    credential = await issue(helsinki, achievement_credential(bank.wallet.did, "Finnish A1", 5))
    assert credential["issuer"]["id"].startswith("did:web:127.0.0.1")
    assert [e["statusPurpose"] for e in credential["credentialStatus"]] == ["revocation", "suspension"]
    status, verdict = await verify_on(shanghai, credential)
    assert status == 200 and verdict["verified"] is True, verdict
    assert {c["check"] for c in verdict["checks"]} >= {"structure", "issuer", "proof", "validity", "status", "schema"}
    async with shanghai.http.get(f"{helsinki.base_url}/.well-known/did.json") as response:
        did_document = await response.json(content_type=None)
    lists = {}
    for entry in credential["credentialStatus"]:
        async with shanghai.http.get(entry["statusListCredential"]) as response:
            lists[entry["statusListCredential"]] = await response.json(content_type=None)
    controllers = {did_document["id"]: did_document}
    assert verify_independently(credential, controllers, kind="credential", status_lists=lists) == {
        "verified": True, "error": ""}

    await set_status(helsinki, credential["id"], "revoked")  # the independent stack reads the bit too
    revocation = credential["credentialStatus"][0]["statusListCredential"]
    async with shanghai.http.get(revocation) as response:
        lists[revocation] = await response.json(content_type=None)
    result = verify_independently(credential, controllers, kind="credential", status_lists=lists)
    assert result["verified"] is False and "revocation" in result["error"]


async def test_revoke_suspend_and_reinstate_reach_verifiers_within_the_cache_age(bank: Bank) -> None:
    shanghai, helsinki, _ = bank.nodes
    credential = await issue(helsinki, achievement_credential(bank.wallet.did, "Sauna culture", 1))
    assert (await verify_on(shanghai, credential))[0] == 200

    async def verdict_says(reason: str) -> bool:
        status, verdict = await verify_on(shanghai, credential)
        return status == 422 and any(reason in c["reason"] for c in verdict["checks"] if c["check"] == "status")

    await set_status(helsinki, credential["id"], "suspended")
    await eventually(lambda: verdict_says("suspended"), timeout=5, what="the suspension")
    await set_status(helsinki, credential["id"], "reinstated")

    async def verified_again() -> bool:
        return (await verify_on(shanghai, credential))[0] == 200

    await eventually(verified_again, timeout=5, what="the reinstatement")
    await set_status(helsinki, credential["id"], "revoked")
    await eventually(lambda: verdict_says("revoked"), timeout=5, what="the revocation")
    async with helsinki.http.post(f"{helsinki.base_url}/credentials/status", headers=helsinki.admin,
                                  json={"credentialId": credential["id"], "status": "reinstated"}) as response:
        assert response.status == 422  # revoked stays revoked


async def test_every_bad_credential_gets_a_verdict_naming_the_failed_check(bank: Bank) -> None:
    shanghai, helsinki, _ = bank.nodes
    good = await issue(helsinki, achievement_credential(bank.wallet.did, "Kantele for beginners", 2))
    past = datetime.now(UTC) - timedelta(days=2)
    expired = await issue(helsinki, achievement_credential(
        bank.wallet.did, "Expired", 1, validFrom=(past - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        validUntil=past.strftime("%Y-%m-%dT%H:%M:%SZ")))
    soon = datetime.now(UTC) + timedelta(days=3)
    future = await issue(helsinki, achievement_credential(
        bank.wallet.did, "Not yet", 1, validFrom=soon.strftime("%Y-%m-%dT%H:%M:%SZ")))

    tampered = copy.deepcopy(good)
    tampered["credentialSubject"]["achievement"]["creditsAvailable"] = 20
    foreign_context = copy.deepcopy(good)
    foreign_context["@context"].append("https://example.org/unbundled/v1")
    stranger = copy.deepcopy(good)
    stranger["issuer"]["id"] = "did:web:issuer.invalid"
    proofless = {k: v for k, v in good.items() if k != "proof"}
    cases = [(tampered, "proof"), (foreign_context, "context"), (expired, "validity"), (future, "validity"),
             (stranger, "issuer"), (proofless, "structure")]
    for credential, check in cases:
        status, verdict = await verify_on(shanghai, credential)
        assert status == 422 and verdict["verified"] is False, (check, verdict)
        assert check in failed(verdict), (check, verdict)
        assert any(p["type"].endswith(check) for p in verdict["problemDetails"])

    async with shanghai.http.post(f"{shanghai.base_url}/credentials/verify", json={"credential": good}) as response:
        assert response.status == 400 and (await response.json(content_type=None))["field"] == "verifiableCredential"
    nested: Any = good
    for _ in range(40):
        nested = {"x": nested}
    async with shanghai.http.post(f"{shanghai.base_url}/credentials/verify",
                                  json={"verifiableCredential": nested}) as response:
        assert response.status == 400
    async with shanghai.http.post(f"{shanghai.base_url}/credentials/verify", data=b"{" + b" " * (2 << 20) + b"}",
                                  headers={"Content-Type": "application/json"}) as response:
        assert response.status == 413


async def test_an_unreachable_status_list_fails_the_status_check(
    tmp_path: Path, make_database_url: MakeDatabaseUrl
) -> None:
    """The issuer goes down: its DID document is remembered, its status list cannot be fetched."""
    no_cache = CredentialPolicy(status_cache_seconds=0.0)
    async with running_node(tmp_path / "verifier", await make_database_url(), "Verifier",
                            credentials=no_cache) as verifier:
        wallet = Wallet(tmp_path / "wallet")
        wallet.init()
        async with running_node(tmp_path / "issuer", await make_database_url(), "Issuer") as issuer:
            credential = await issue(issuer, achievement_credential(wallet.did, "Bookbinding", 1))
            assert (await verify_on(verifier, credential))[0] == 200
        status, verdict = await verify_on(verifier, credential)  # the issuer is down now
    assert status == 422 and failed(verdict) == ["status"], verdict
    status_check = next(c for c in verdict["checks"] if c["check"] == "status")
    assert "unreachable" in status_check["reason"]


async def test_issue_requests_are_checked_and_refusals_store_nothing(bank: Bank) -> None:
    _, helsinki, _ = bank.nodes
    no_did = achievement_credential("mailto:learner@example.org", "Finnish A2", 5)
    async with helsinki.http.post(f"{helsinki.base_url}/credentials/issue", json={"credential": no_did},
                                  headers=helsinki.admin) as response:
        assert response.status == 422
        assert (await response.json(content_type=None))["field"] == "credentialSubject.id"
    undefined = achievement_credential(bank.wallet.did, "Finnish A2", 5, favouriteColour="blue")
    async with helsinki.http.post(f"{helsinki.base_url}/credentials/issue", json={"credential": undefined},
                                  headers=helsinki.admin) as response:
        assert response.status == 422 and (await response.json(content_type=None))["field"] == "favouriteColour"
    async with helsinki.http.post(f"{helsinki.base_url}/credentials/issue",
                                  json={"credential": achievement_credential(bank.wallet.did, "X", 1)}) as response:
        assert response.status == 401
    with helsinki.services.store.bound():
        assert await IssuedCredential.all().count() == 0


async def test_credentials_never_federate(bank: Bank) -> None:
    """[PRIV-1] issuing changes nothing that a peer can read: outbox, digest, record list."""
    _, helsinki, _ = bank.nodes

    async def public_state() -> list[Any]:
        state = []
        for path in ("/outbox", "/federation/digest", "/api/records"):
            async with helsinki.http.get(helsinki.base_url + path) as response:
                state.append(await response.json(content_type=None))
        return state

    before = await public_state()
    credential = await issue(helsinki, achievement_credential(bank.wallet.did, "Private matter", 1))
    after = await public_state()
    assert before == after and credential["id"] not in str(after)


async def present(bank: Bank, credentials: list[dict[str, Any]], challenge: str = "c-42",
                  domain: str = "transcripts.example") -> dict[str, Any]:
    for credential in credentials:
        bank.wallet.add(credential)
    return bank.wallet.present(challenge, domain, [c["id"] for c in credentials])


async def test_presentations_check_challenge_domain_and_holder(bank: Bank) -> None:
    shanghai, helsinki, bologna = bank.nodes
    mine = await issue(helsinki, achievement_credential(bank.wallet.did, "Finnish A1", 5))
    presentation = await present(bank, [mine])
    options = {"challenge": "c-42", "domain": "transcripts.example"}
    request = {"verifiablePresentation": presentation, "options": options}
    async with bologna.http.post(f"{bologna.base_url}/presentations/verify", json=request) as response:
        assert response.status == 200, await response.text()
    for options, check in (({"challenge": "other", "domain": "transcripts.example"}, "challenge"),
                           ({"challenge": "c-42", "domain": "evil.example"}, "domain")):
        async with bologna.http.post(f"{bologna.base_url}/presentations/verify",
                                     json={**request, "options": options}) as response:
            verdict = await response.json(content_type=None)
            assert response.status == 422 and check in failed(verdict), verdict

    someone_else = Wallet(Path(str(bank.wallet.path) + "-other"))
    someone_else.init()
    theirs = await issue(shanghai, achievement_credential(someone_else.did, "Calligraphy", 2, "SH-CREDIT"))
    bank.wallet.add(theirs)
    borrowed = bank.wallet.present("c-42", "transcripts.example", [mine["id"], theirs["id"]])
    # VC 2.0 allows other holders: by default the verifier reports it and accepts it ...
    async with bologna.http.post(f"{bologna.base_url}/presentations/verify",
                                 json={**request, "verifiablePresentation": borrowed}) as response:
        verdict = await response.json(content_type=None)
    assert response.status == 200, verdict
    holder_checks = [next(c for c in r["checks"] if c["check"] == "holder") for r in verdict["credentialResults"]]
    assert [c["reason"] for c in holder_checks] == [
        "the holder is the subject", "the holder is not the subject (allowed: this verifier does not require it)"]
    # ... and a verifier that requires the holder to be the subject says which credential breaks it
    strict = {**request, "verifiablePresentation": borrowed,
              "options": {**options, "holderMustBeSubject": True}}
    async with bologna.http.post(f"{bologna.base_url}/presentations/verify", json=strict) as response:
        verdict = await response.json(content_type=None)
    assert response.status == 422
    assert [failed(r) for r in verdict["credentialResults"]] == [[], ["holder"]]
    # a transcript counts credits for the learner who presents them: the binding is always required there
    transcript_request = {**request, "verifiablePresentation": borrowed, "targetUnit": "ECTS"}
    async with bologna.http.post(f"{bologna.base_url}/credits/transcript", json=transcript_request) as response:
        transcript = await response.json(content_type=None)
    assert [line["counted"] for line in transcript["lines"]] == [True, False]
    assert "holder" in transcript["lines"][1]["reason"]


async def test_a_transcript_adds_up_credits_from_three_cities_by_published_rules(bank: Bank) -> None:
    shanghai, helsinki, bologna = bank.nodes
    credentials = [
        await issue(shanghai, achievement_credential(bank.wallet.did, "Calligraphy", 2, "SH-CREDIT")),
        await issue(helsinki, achievement_credential(bank.wallet.did, "Finnish A1", 5, "ECTS")),
        await issue(bologna, achievement_credential(bank.wallet.did, "Ceramics", 2.5, "ECTS")),
        await issue(bologna, achievement_credential(bank.wallet.did, "Open day visit")),  # no credits
    ]
    presentation = await present(bank, credentials)
    request = {"verifiablePresentation": presentation, "targetUnit": "HOURS",
               "options": {"challenge": "c-42", "domain": "transcripts.example"}}
    async with helsinki.http.post(f"{helsinki.base_url}/credits/transcript", json=request) as response:
        assert response.status == 200, await response.text()
        transcript = await response.json()
    lines = transcript["lines"]
    assert [line["converted"]["value"] if line["counted"] else None for line in lines] == [
        "32.0", "125.0", "62.5", None]
    assert transcript["total"] == {"value": "219.5", "unit": SYSTEMS + "HOURS", "counted": 3, "of": 4,
                                   "partial": True}
    assert [step["rule"].rsplit("/", 1)[-1] for step in lines[0]["rules"]] == ["SH-CREDIT-HOURS"]
    assert all(step["bibliographicCitation"] for line in lines[:3] for step in line["rules"])
    assert "states no credits" in lines[3]["reason"]

    async with helsinki.http.post(f"{helsinki.base_url}/credits/transcript",
                                  json={**request, "targetUnit": "ECTS"}) as response:
        in_ects = await response.json()
    assert in_ects["lines"][0]["counted"] is False and "no published rule" in in_ects["lines"][0]["reason"]
    assert in_ects["total"]["value"] == "7.5"

    async with helsinki.http.post(f"{helsinki.base_url}/credits/transcript",
                                  json={**request, "targetUnit": "PARSECS"}) as response:
        assert response.status == 422 and (await response.json(content_type=None))["field"] == "targetUnit"


def edufed(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node.cli", *args], capture_output=True, text=True, timeout=120)


async def test_the_command_line_issues_holds_presents_and_verifies(tmp_path: Path, database_url: str) -> None:
    """What a learner and an institution do without writing code: wallet, issue, present, verify."""
    async with running_node(tmp_path / "node", database_url, "Evening School") as node:
        wallet = str(tmp_path / "wallet")
        assert edufed("wallet", "init", "--wallet", wallet).returncode == 0
        did = edufed("wallet", "did", "--wallet", wallet).stdout.strip()
        issued = await asyncio.to_thread(edufed, "issue", "--data", str(node.config.data_dir), "--subject", did,
                                         "--name", "Evening pottery", "--credits", "2.5", "--system", "ECTS")
        assert issued.returncode == 0, issued.stderr
        credential_file = tmp_path / "credential.json"
        credential_file.write_text(issued.stdout, "utf-8")
        assert edufed("wallet", "add", "--wallet", wallet, str(credential_file)).returncode == 0
        checked = await asyncio.to_thread(edufed, "verify", str(credential_file), "--allow-private-networks")
        assert checked.returncode == 0 and "VERIFIED" in checked.stderr, checked.stdout + checked.stderr
        vp = tmp_path / "vp.json"
        assert edufed("wallet", "present", "--wallet", wallet, "--challenge", "n-1", "--domain", "school.example",
                      "--out", str(vp)).returncode == 0
        good = await asyncio.to_thread(edufed, "verify", str(vp), "--challenge", "n-1", "--domain",
                                       "school.example", "--allow-private-networks")
        wrong = await asyncio.to_thread(edufed, "verify", str(vp), "--challenge", "n-2", "--domain",
                                        "school.example", "--allow-private-networks")
    assert good.returncode == 0, good.stdout + good.stderr
    assert wrong.returncode == 1 and "FAIL challenge" in wrong.stdout


async def test_a_person_verifies_a_credential_on_the_web_page(bank: Bank) -> None:
    shanghai, helsinki, _ = bank.nodes
    credential = await issue(helsinki, achievement_credential(bank.wallet.did, "Finnish <A1> & more", 5))
    form = aiohttp.FormData()
    form.add_field("document", "")
    form.add_field("file", json.dumps(credential).encode(), filename="badge.json", content_type="application/json")
    async with shanghai.http.post(f"{shanghai.base_url}/verify", data=form) as response:
        page = await response.text()
        assert response.status == 200 and "Content-Security-Policy" in response.headers
    assert "Verified" in page and "<A1>" not in page  # the credential's text is escaped
    tampered = copy.deepcopy(credential)
    tampered["credentialSubject"]["achievement"]["name"] = "Finnish C2"
    async with shanghai.http.post(f"{shanghai.base_url}/verify", data={"document": json.dumps(tampered)}) as response:
        page = await response.text()
    assert response.status == 422 and "Not verified" in page and "signature" in page
    async with shanghai.http.post(f"{shanghai.base_url}/verify", data={"document": "{not json"}) as response:
        assert response.status == 400 and "Malformed JSON" in await response.text()


async def test_a_credential_signed_before_a_key_rotation_still_verifies(bank: Bank) -> None:
    shanghai, helsinki, _ = bank.nodes
    before = await issue(helsinki, achievement_credential(bank.wallet.did, "Before rotation", 1))
    rotated = await asyncio.to_thread(edufed, "key", "rotate", "--data", str(helsinki.config.data_dir))
    assert rotated.returncode == 0, rotated.stderr
    after = await issue(helsinki, achievement_credential(bank.wallet.did, "After rotation", 1))
    assert before["proof"]["verificationMethod"] != after["proof"]["verificationMethod"]
    fresh_verifier = bank.nodes[2]  # has never resolved helsinki's DID: sees the rotated document
    for node in (shanghai, fresh_verifier):
        for credential in (before, after):
            status, verdict = await verify_on(node, credential)
            assert status == 200, verdict


async def test_a_credential_from_another_implementation_with_a_did_key_issuer_verifies(bank: Bank) -> None:
    shanghai = bank.nodes[0]
    credential = achievement_credential(bank.wallet.did, "Issued elsewhere", 3, validFrom="2026-01-01T00:00:00Z")
    signed = sign_independently(credential, bytes(range(32)))
    issuer = signed["issuer"]
    assert (issuer["id"] if isinstance(issuer, dict) else issuer).startswith("did:key:")
    status, verdict = await verify_on(shanghai, signed)
    assert status == 200, verdict
    signed["credentialSubject"]["achievement"]["creditsAvailable"] = 30
    assert "proof" in failed((await verify_on(shanghai, signed))[1])
