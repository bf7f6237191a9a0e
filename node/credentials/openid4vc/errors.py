"""The error form of OAuth 2.0 and OpenID4VCI endpoints: ``{"error", "error_description"}`` JSON, not problem+json.

Why a class of its own: wallets act on the ``error`` code the specifications name (``invalid_grant``,
``invalid_proof``, ``invalid_nonce``, …), so these endpoints must answer in that form, never as RFC 9457.
"""

from __future__ import annotations

from typing import Any


class OAuthError(Exception):
    """An error answered as ``{"error": code, "error_description": text}`` with ``status``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def as_json(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description}
