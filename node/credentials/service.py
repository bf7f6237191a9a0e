"""One node's credit bank: issuing, status, verification and transcripts, wired to the node's keys and store."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from node.catalog.records import Signer
from node.config import NodeConfig
from node.credentials.credits import CreditRules
from node.credentials.issuance import CredentialIssuer
from node.credentials.status import StatusRegistry
from node.credentials.transcript import build_transcript
from node.credentials.verification import CredentialVerifier, StatusCache
from node.net.client import SafeClient
from node.net.did_resolver import DidResolver
from node.store.models import Record
from node.store.records import Store
from node.trust.did import did_web_from_base_url

RULE_TYPES = ("CreditSystem", "CreditConversionRule")


class CreditBank:
    def __init__(
        self, config: NodeConfig, store: Store, signer: Callable[[], Signer], client: SafeClient, resolver: DidResolver
    ) -> None:
        did = did_web_from_base_url(config.base_url)
        self.store = store
        self.registry = StatusRegistry(store, config.base_url, did, signer)
        self.issuer = CredentialIssuer(store, did, config.name, signer, self.registry)
        self.verifier = CredentialVerifier(resolver, StatusCache(
            client, resolver, config.credentials.status_cache_seconds, local=self.registry.own_list))

    async def rules(self) -> CreditRules:
        """The bundled credit systems and rules, plus those published in the catalog (own and mirrored)."""
        with self.store.bound():
            rows = await Record.filter(type__in=list(RULE_TYPES), deleted=False).values_list("document", flat=True)
        documents = [json.loads(str(row)) for row in rows]
        bundled = CreditRules.bundled()
        return bundled.with_records(documents) if documents else bundled

    async def transcript(self, presentation: Any, *, challenge: str | None, domain: str | None,
                         target_unit: Any) -> tuple[bool, dict[str, Any]]:
        return await build_transcript(self.verifier, await self.rules(), presentation, challenge=challenge,
                                      domain=domain, target_unit=target_unit)
