"""Controller documents of issuers and signers: DIDs, and ``https://`` identifiers (W3C Controlled Identifiers).

Why ``https://`` issuers: Open Badges 3.0 issuers are commonly named by a web address, not a DID. Such an issuer
is accepted when the document at that address has the address as its ``id`` and lists the proof's verification
method (``<url>#…``) under ``assertionMethod``; the proof checks then bind the key to the issuer as for a DID.
Documents come through the guarded client only, and are kept for five minutes like DID documents; for a
loopback or private host (allowed by the node's configuration only) they are fetched over ``http:``, as
``did:web`` documents are.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from node.errors import EduFedError, Unprocessable
from node.net.addresses import is_private_host
from node.net.client import FetchError
from node.net.did_resolver import DidResolver

FRESH_SECONDS = 300.0
MAX_CACHED = 1000
CONTROLLER_ACCEPT = "application/json, application/ld+json;q=0.9, application/did+json;q=0.8"


class ControllerUnavailable(Unprocessable):
    code = "controller-unavailable"


def is_supported(identifier: str) -> bool:
    return identifier.startswith(("did:web:", "did:key:", "https://"))


class Controllers:
    """Resolves an identifier to its controller document: DIDs through the DID resolver, https URLs here."""

    def __init__(self, resolver: DidResolver) -> None:
        self.resolver = resolver
        self._documents: dict[str, tuple[float, dict[str, Any]]] = {}

    def _fetch_url(self, identifier: str) -> str:
        parts = urlsplit(identifier)
        if self.resolver.allow_private and parts.hostname and is_private_host(parts.hostname):
            return parts._replace(scheme="http", fragment="").geturl()
        return parts._replace(fragment="").geturl()

    async def resolve(self, identifier: str, method_ids: Iterable[str] = ()) -> dict[str, Any]:
        """The controller document of ``identifier``; ControllerUnavailable (or the resolver's error) if none."""
        if identifier.startswith("did:"):
            return await self.resolver.resolve_for(identifier, method_ids)
        if not identifier.startswith("https://") or "#" in identifier:
            raise ControllerUnavailable("Unsupported identifier", detail=identifier)
        cached = self._documents.get(identifier)
        if cached and time.monotonic() - cached[0] < FRESH_SECONDS:
            return cached[1]
        try:
            url = self._fetch_url(identifier)
        except ValueError as error:  # urlsplit: a malformed host such as "[::1"
            raise ControllerUnavailable("Not a usable URL", detail=f"{identifier}: {error}") from error
        try:
            document = await self.resolver.client.get_json(url, accept=CONTROLLER_ACCEPT)
        except FetchError as error:
            raise ControllerUnavailable("Controller document unavailable",
                                        detail=f"{identifier}: {error.reason}") from error
        except EduFedError as error:
            raise ControllerUnavailable("Controller document unavailable",
                                        detail=f"{identifier}: {error.detail or error.title}") from error
        if not isinstance(document, dict) or document.get("id") != identifier:
            raise ControllerUnavailable("Controller document does not match its URL",
                                        detail=f"the document at {identifier} must have it as its id")
        if len(self._documents) >= MAX_CACHED:
            del self._documents[min(self._documents, key=lambda key: self._documents[key][0])]
        self._documents[identifier] = (time.monotonic(), document)
        return document
