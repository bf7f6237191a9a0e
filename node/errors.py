"""The one exception family of EduFed.

Every failure a client can cause is an :class:`EduFedError`. It carries what an
RFC 9457 problem document needs, so the web layer renders any of them the same
way and the library layers (``ld``, ``trust``, ``catalog``) never import aiohttp::

    EduFedError                 status 500 unless a subclass says otherwise
    ├── BadRequest              400  malformed JSON, JSON-LD that does not expand, bad parameters
    ├── Unauthorized            401  missing or wrong admin token, bad signature
    ├── Forbidden               403
    ├── NotFound                404
    ├── Conflict                409
    ├── Gone                    410
    ├── PayloadTooLarge         413
    ├── UnsupportedMediaType    415
    └── Unprocessable           422  well-formed but invalid: shape violations, proofs that fail
"""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://w3id.org/edufed/problems#"


class EduFedError(Exception):
    """A failure with an HTTP status, a short title, and the offending field when there is one."""

    status = 500
    code = "internal-error"

    def __init__(
        self,
        title: str,
        *,
        detail: str | None = None,
        field: str | None = None,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(title if detail is None else f"{title}: {detail}")
        self.title = title
        self.detail = detail
        self.field = field
        if code is not None:
            self.code = code
        self.extra = extra or {}

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem document for this error."""
        doc: dict[str, Any] = {"type": PROBLEM_BASE + self.code, "title": self.title, "status": self.status}
        if self.detail:
            doc["detail"] = self.detail
        if self.field:
            doc["field"] = self.field
        doc.update(self.extra)
        return doc


class BadRequest(EduFedError):
    status = 400
    code = "bad-request"


class Unauthorized(EduFedError):
    status = 401
    code = "unauthorized"


class Forbidden(EduFedError):
    status = 403
    code = "forbidden"


class NotFound(EduFedError):
    status = 404
    code = "not-found"


class Conflict(EduFedError):
    status = 409
    code = "conflict"


class Gone(EduFedError):
    status = 410
    code = "gone"


class PayloadTooLarge(EduFedError):
    status = 413
    code = "payload-too-large"


class UnsupportedMediaType(EduFedError):
    status = 415
    code = "unsupported-media-type"


class Unprocessable(EduFedError):
    status = 422
    code = "unprocessable"
