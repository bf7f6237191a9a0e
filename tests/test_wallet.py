"""The holder wallet: a did:key, stored credentials, and presentations bound to a challenge and domain.

A presentation must verify with EduFed's verifier and with the independent JavaScript stack, and fail for any
other challenge or domain, any changed credential, or a key that is not the holder's.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from node.credentials.wallet import (
    NotACredential,
    Wallet,
    WalletError,
    add_wallet_commands,
    credential_name,
    main_wallet,
)
from node.errors import Conflict, NotFound, Unprocessable
from node.trust.did import did_key_document
from node.trust.multikey import Ed25519Key
from node.trust.proofs import VerificationResult, sign, verify
from tests.interop_verifier import verify_independently

V2 = "https://www.w3.org/ns/credentials/v2"
OB3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
ISSUER_KEY = Ed25519Key.from_seed(b"\x11" * 32)
ISSUER = f"did:key:{ISSUER_KEY.public_multibase}"
CHALLENGE = "c7a1f0e2-5d4b-4f6e-9a3c-1b2d3e4f5a6b"
DOMAIN = "helsinki.edufed.example"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _issue(subject: str, number: int, name: str = "Introduction to Statistics") -> dict[str, Any]:
    """An Open Badges 3.0 credential signed by a did:key issuer (as another node would)."""
    credential = {
        "@context": [V2, OB3],
        "id": f"urn:uuid:00000000-0000-4000-8000-{number:012d}",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {"id": ISSUER, "type": ["Profile"], "name": "Elsewhere Academy"},
        "validFrom": f"2025-0{number}-01T00:00:00Z",
        "credentialSubject": {
            "id": subject,
            "type": ["AchievementSubject"],
            "achievement": {
                "id": f"https://elsewhere.example/achievements/{number}",
                "type": ["Achievement"],
                "name": name,
                "description": "A course.",
                "criteria": {"narrative": "Passed the examination."},
            },
        },
    }
    return sign(credential, ISSUER_KEY, f"{ISSUER}#{ISSUER_KEY.public_multibase}", NOW - timedelta(days=30))


def _resolve(did: str) -> dict[str, Any]:
    return did_key_document(did)


def _verify_vp(vp: dict[str, Any], challenge: str = CHALLENGE, domain: str = DOMAIN) -> VerificationResult:
    return verify(vp, _resolve, expected_purpose="authentication", challenge=challenge, domain=domain)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def wallet(tmp_path: Path) -> Wallet:
    made = Wallet(tmp_path / "wallet")
    made.init()
    return made


@pytest.fixture
def filled(wallet: Wallet) -> Wallet:
    wallet.add(_issue(wallet.did, 1))
    wallet.add(_issue(wallet.did, 2, "Linear Algebra"))
    return wallet


# ---- the wallet folder ----------------------------------------------------------------------------------------


def test_init_makes_a_private_key_and_a_did_key(tmp_path: Path) -> None:
    wallet = Wallet(tmp_path / "w")
    did = wallet.init()
    assert did.startswith("did:key:z6Mk") and did == wallet.did
    assert wallet.verification_method == f"{did}#{did.removeprefix('did:key:')}"
    assert _mode(wallet.key_file) == 0o600
    assert _mode(wallet.path) == 0o700
    assert (wallet.path / "did.txt").read_text().strip() == did
    assert (wallet.path / "credentials").is_dir()
    again = Wallet(tmp_path / "w")  # reads the same key back
    assert again.did == did
    assert did_key_document(did)["authentication"] == [wallet.verification_method]


def test_init_never_overwrites_a_key(wallet: Wallet) -> None:
    before = wallet.key_file.read_bytes()
    with pytest.raises(Conflict):
        Wallet(wallet.path).init()
    assert wallet.key_file.read_bytes() == before


def test_uninitialised_wallet_is_a_clear_error(tmp_path: Path) -> None:
    empty = Wallet(tmp_path / "none")
    with pytest.raises(WalletError, match="wallet init"):
        _ = empty.did
    with pytest.raises(WalletError):
        empty.add(_issue("did:example:x", 1))
    assert empty.credentials() == []


def test_add_stores_under_the_hash_of_the_id(wallet: Wallet) -> None:
    credential = _issue(wallet.did, 1)
    path = wallet.add(credential)
    assert path.name == hashlib.sha256(credential["id"].encode()).hexdigest() + ".json"
    assert _mode(path) == 0o600
    assert json.loads(path.read_text()) == credential
    assert wallet.add(credential) == path  # the same credential again: nothing changes
    assert wallet.credentials() == [credential]


def test_a_different_credential_with_the_same_id_needs_replace(wallet: Wallet) -> None:
    first = _issue(wallet.did, 1)
    wallet.add(first)
    second = _issue(wallet.did, 1, "Renamed")
    with pytest.raises(Conflict):
        wallet.add(second)
    assert wallet.credentials() == [first]
    wallet.add(second, replace=True)
    assert wallet.credentials() == [second]


def _without(document: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != key}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c: {**c, "@context": ["https://www.w3.org/2018/credentials/v1", OB3]}, "validFrom"),  # VC 1.1 mixed
        (lambda c: {**c, "@context": ["https://example.org/credentials/v9", OB3]}, "@context"),
        (lambda c: _without(c, "@context"), "@context"),
        (lambda c: {**c, "@context": [OB3, V2]}, "@context"),
        (lambda c: {**c, "type": ["VerifiablePresentation"]}, "type"),
        (lambda c: _without(c, "type"), "type"),
        (lambda c: _without(c, "issuer"), "issuer"),
        (lambda c: _without(c, "credentialSubject"), "credentialSubject"),
        (lambda c: _without(c, "proof"), "proof"),
        (lambda c: {**c, "proof": "z123"}, "proof"),
    ],
)
def test_add_refuses_what_is_not_a_vc2_credential(wallet: Wallet, change: Any, field: str) -> None:
    with pytest.raises(NotACredential) as caught:
        wallet.add(change(_issue(wallet.did, 1)))
    assert caught.value.field == field
    assert wallet.credentials() == []


def test_add_file_refuses_non_json_and_non_objects(wallet: Wallet, tmp_path: Path) -> None:
    for name, content in (("a.json", b"not json {"), ("b.json", b"[1, 2]"), ("c.json", b"\xff\xfe")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(NotACredential):
            wallet.add_file(tmp_path / name)
    with pytest.raises(NotACredential):
        wallet.add_file(tmp_path / "missing.json")
    assert wallet.credentials() == []


def test_credential_name() -> None:
    credential = _issue("did:example:x", 1)
    assert credential_name(credential) == "Introduction to Statistics"
    assert credential_name({**credential, "name": "Badge"}) == "Badge"
    assert credential_name({"credentialSubject": {}}) == "-"


# ---- presentations --------------------------------------------------------------------------------------------


def test_presentation_verifies_here(filled: Wallet) -> None:
    vp = filled.present(CHALLENGE, DOMAIN, now=NOW)
    assert vp["@context"] == [V2]
    assert vp["type"] == ["VerifiablePresentation"]
    assert vp["holder"] == filled.did
    assert [c["id"] for c in vp["verifiableCredential"]] == [c["id"] for c in filled.credentials()]
    proof = vp["proof"]
    assert proof["proofPurpose"] == "authentication"
    assert (proof["challenge"], proof["domain"]) == (CHALLENGE, DOMAIN)
    assert proof["verificationMethod"] == filled.verification_method
    assert proof["created"] == "2025-06-01T12:00:00Z"
    result = _verify_vp(vp)
    assert result.verified, result.error
    for credential in vp["verifiableCredential"]:  # and each credential still verifies as issued
        assert verify(credential, _resolve, expected_controller=ISSUER).verified


@pytest.mark.parametrize(("challenge", "domain", "check"), [
    ("another-challenge", DOMAIN, "challenge"),
    (CHALLENGE, "evil.example", "domain"),
])
def test_presentation_for_another_challenge_or_domain_fails(
    filled: Wallet, challenge: str, domain: str, check: str
) -> None:
    vp = filled.present(CHALLENGE, DOMAIN, now=NOW)
    result = _verify_vp(vp, challenge, domain)
    assert not result.verified
    assert result.failures[0].name == check


def test_presentation_signed_for_authentication_only(filled: Wallet) -> None:
    vp = filled.present(CHALLENGE, DOMAIN, now=NOW)
    result = verify(vp, _resolve, expected_purpose="assertionMethod", challenge=CHALLENGE, domain=DOMAIN)
    assert not result.verified and result.failures[0].name == "purpose"


def test_changed_presentation_fails(filled: Wallet) -> None:
    vp = filled.present(CHALLENGE, DOMAIN, now=NOW)
    changed = copy.deepcopy(vp)
    changed["verifiableCredential"][0]["credentialSubject"]["achievement"]["name"] = "Quantum Physics"
    assert _verify_vp(changed).failures[0].name == "signature"
    dropped = copy.deepcopy(vp)
    dropped["verifiableCredential"].pop()
    assert _verify_vp(dropped).failures[0].name == "signature"
    other_holder = copy.deepcopy(vp)
    other_holder["holder"] = ISSUER
    assert _verify_vp(other_holder).failures[0].name == "signature"


def test_present_chosen_credentials(filled: Wallet) -> None:
    second = filled.credentials()[1]["id"]
    vp = filled.present(CHALLENGE, DOMAIN, [second], now=NOW)
    assert [c["id"] for c in vp["verifiableCredential"]] == [second]
    assert _verify_vp(vp).verified
    with pytest.raises(NotFound):
        filled.present(CHALLENGE, DOMAIN, ["urn:uuid:not-in-the-wallet"], now=NOW)


@pytest.mark.parametrize(("challenge", "domain"), [("", DOMAIN), (CHALLENGE, "")])
def test_present_needs_challenge_and_domain(filled: Wallet, challenge: str, domain: str) -> None:
    with pytest.raises(Unprocessable):
        filled.present(challenge, domain)


# ---- the independent verifier ---------------------------------------------------------------------------------


def test_presentation_verifies_in_the_independent_stack(filled: Wallet) -> None:
    vp = filled.present(CHALLENGE, DOMAIN)
    result = verify_independently(vp, {}, kind="presentation", challenge=CHALLENGE, domain=DOMAIN)
    assert result == {"verified": True, "error": ""}


@pytest.mark.parametrize(("challenge", "domain"), [("another-challenge", DOMAIN), (CHALLENGE, "evil.example")])
def test_independent_stack_refuses_another_challenge_or_domain(
    filled: Wallet, challenge: str, domain: str
) -> None:
    vp = filled.present(CHALLENGE, DOMAIN)
    result = verify_independently(vp, {}, kind="presentation", challenge=challenge, domain=domain)
    assert result["verified"] is False
    assert "presentation:" in result["error"]


def test_independent_stack_refuses_a_changed_credential(filled: Wallet) -> None:
    vp = filled.present(CHALLENGE, DOMAIN)
    vp["verifiableCredential"][1]["credentialSubject"]["achievement"]["name"] = "Quantum Physics"
    result = verify_independently(vp, {}, kind="presentation", challenge=CHALLENGE, domain=DOMAIN)
    assert result["verified"] is False
    assert "credential 1" in result["error"]


def test_independent_stack_refuses_a_key_that_is_not_the_holders(filled: Wallet) -> None:
    """A valid authentication proof by someone else's key does not prove the holder is present."""
    vp = filled.present(CHALLENGE, DOMAIN)
    forged = sign({k: v for k, v in vp.items() if k != "proof"}, ISSUER_KEY,
                  f"{ISSUER}#{ISSUER_KEY.public_multibase}", datetime.now(UTC),
                  proof_purpose="authentication", challenge=CHALLENGE, domain=DOMAIN)
    result = verify_independently(forged, {}, kind="presentation", challenge=CHALLENGE, domain=DOMAIN)
    assert result["verified"] is False
    assert "not by its holder" in result["error"]


def test_presentation_kind_needs_a_challenge(filled: Wallet) -> None:
    with pytest.raises(ValueError):
        verify_independently(filled.present(CHALLENGE, DOMAIN), {}, kind="presentation")


# ---- the command line -----------------------------------------------------------------------------------------


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="edufed")
    add_wallet_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    assert args.func is main_wallet
    return int(args.func(args))


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = str(tmp_path / "cli-wallet")
    assert _run("wallet", "init", "--wallet", folder) == 0
    did = capsys.readouterr().out.strip().splitlines()[-1]
    assert did.startswith("did:key:z6Mk")
    assert _run("wallet", "did", "--wallet", folder) == 0
    assert capsys.readouterr().out.strip() == did
    with pytest.raises(Conflict):
        _run("wallet", "init", "--wallet", folder)

    file = tmp_path / "credential.json"
    file.write_text(json.dumps(_issue(did, 3, "Data Science")))
    assert _run("wallet", "add", "--wallet", folder, str(file)) == 0
    other = tmp_path / "other.json"
    other.write_text(json.dumps(_issue("did:example:someone-else", 4)))
    assert _run("wallet", "add", "--wallet", folder, str(other)) == 0
    assert "not this wallet's DID" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(NotACredential):
        _run("wallet", "add", "--wallet", folder, str(bad))

    assert _run("wallet", "list", "--wallet", folder) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split("\t") == ["urn:uuid:00000000-0000-4000-8000-000000000003", ISSUER, "Data Science",
                                    "2025-03-01T00:00:00Z"]
    assert len(lines) == 2
    assert _run("wallet", "list", "--wallet", folder, "--json") == 0
    assert [row["name"] for row in json.loads(capsys.readouterr().out)] == ["Data Science",
                                                                             "Introduction to Statistics"]

    out = tmp_path / "vp.json"
    assert _run("wallet", "present", "--wallet", folder, "--challenge", CHALLENGE, "--domain", DOMAIN,
                "--credential", "urn:uuid:00000000-0000-4000-8000-000000000003", "--out", str(out)) == 0
    assert _mode(out) == 0o600
    vp = json.loads(out.read_text())
    assert vp["holder"] == did and len(vp["verifiableCredential"]) == 1
    assert _verify_vp(vp).verified

    assert _run("wallet", "present", "--wallet", folder, "--challenge", CHALLENGE, "--domain", DOMAIN) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["verifiableCredential"]) == 2 and _verify_vp(printed).verified


def test_cli_wallet_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EDUFED_WALLET", str(tmp_path / "env-wallet"))
    assert _run("wallet", "init") == 0
    assert (tmp_path / "env-wallet" / "key.pem").is_file()
