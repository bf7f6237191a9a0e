"""Admin bearer tokens: shown once at ``edufed init``, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from node.errors import Unauthorized


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_bearer(authorization: str | None, expected_sha256: str) -> None:
    """Raise Unauthorized unless ``authorization`` is ``Bearer <the admin token>``."""
    if not authorization:
        raise Unauthorized(
            "Admin token required", detail="send Authorization: Bearer <admin token>", field="Authorization"
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must use the Bearer scheme", field="Authorization")
    if not hmac.compare_digest(token_hash(token.strip()), expected_sha256):
        raise Unauthorized("Wrong admin token", field="Authorization")
