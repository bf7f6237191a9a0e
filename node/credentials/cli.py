"""``edufed issue`` and ``edufed verify``: the credit bank from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from node.catalog.records import node_signer
from node.config import NodeConfig
from node.credentials.issuance import EDUFED_CREDENTIALS_CONTEXT, OB3_CONTEXT
from node.credentials.service import CreditBank
from node.credentials.verification import CredentialVerifier, StatusCache, Verdict
from node.errors import BadRequest
from node.json_text import parse_json
from node.ld.contexts import CREDENTIALS_V2_CONTEXT
from node.net.client import FetchPolicy, SafeClient
from node.net.did_resolver import DidResolver
from node.store.records import Store
from node.trust.keyring import KeyRing

CREDIT_SYSTEMS = "https://w3id.org/edufed/credit-systems/"


def achievement_request(subject: str, name: str, credits: str | None, system: str | None) -> dict[str, Any]:
    """An Open Badges 3.0 achievement credential for ``subject`` (a DID), with credits if given."""
    achievement: dict[str, Any] = {"type": ["Achievement"], "name": name,
                                   "criteria": {"narrative": f"Completed: {name}"}}
    if credits is not None:
        achievement["creditsAvailable"] = float(credits)
        achievement["creditSystem"] = system if system and ":" in system else CREDIT_SYSTEMS + (system or "ECTS")
    return {
        "@context": [CREDENTIALS_V2_CONTEXT, OB3_CONTEXT, EDUFED_CREDENTIALS_CONTEXT],
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": name,
        "credentialSubject": {"id": subject, "type": ["AchievementSubject"], "achievement": achievement},
    }


async def run_issue(config: NodeConfig, subject: str, name: str, credits: str | None, system: str | None) -> int:
    store = await Store.open(config.effective_database_url)
    try:
        async with SafeClient(FetchPolicy(allow_private=config.private_networks_allowed)) as client:
            keyring = KeyRing(config.keys_dir)
            bank = CreditBank(config, store, lambda: node_signer(config.base_url, keyring), client,
                              DidResolver(client, store, allow_private=config.private_networks_allowed))
            credential = await bank.issuer.issue(achievement_request(subject, name, credits, system))
    finally:
        await store.close()
    print(json.dumps(credential, indent=2, ensure_ascii=False))
    return 0


def print_verdict(verdict: Verdict, indent: str = "") -> None:
    for check in verdict.checks:
        print(f"{indent}{'ok  ' if check.ok else 'FAIL'} {check.name:<10} {check.reason}")
    for number, inner in enumerate(verdict.credentials, 1):
        print(f"{indent}credential {number}: {'verified' if inner.verified else 'NOT verified'}")
        print_verdict(inner, indent + "  ")


async def run_verify(path: Path, *, challenge: str | None, domain: str | None, allow_private: bool) -> int:
    """Verify a credential or presentation file against the network; exit 0 only when it verifies."""
    try:
        document = parse_json(path.read_bytes(), 64)
    except OSError as error:
        raise BadRequest("Cannot read the file", detail=str(error), field="file") from None
    async with SafeClient(FetchPolicy(allow_private=allow_private)) as client:
        resolver = DidResolver(client, None, allow_private=allow_private)
        verifier = CredentialVerifier(resolver, StatusCache(client, resolver, max_age=60.0))
        kinds = document.get("type", []) if isinstance(document, dict) else []
        if "VerifiablePresentation" in (kinds if isinstance(kinds, list) else [kinds]):
            verdict = await verifier.verify_presentation(document, challenge=challenge, domain=domain)
        else:
            verdict = await verifier.verify_credential(document)
    print("VERIFIED" if verdict.verified else "NOT VERIFIED", file=sys.stderr)
    print_verdict(verdict)
    return 0 if verdict.verified else 1
