"""A frozen JSON-LD document loader: it serves bundled contexts and refuses everything else.

pyld calls the loader synchronously for every context IRI it meets. Returning ``tag: static`` tells pyld's
context resolver that the document never changes, so it caches the processed context across operations
(design note 9: without the tag pyld re-processes the same contexts for every document).
"""

from __future__ import annotations

from typing import Any

from node.errors import BadRequest
from node.ld.contexts import context_document


class UnknownContextError(BadRequest):
    """A document referred to a context EduFed does not bundle; it is never fetched."""

    code = "unknown-context"


def frozen_document_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld document loader serving only bundled, pinned contexts."""
    try:
        document = context_document(url)
    except KeyError:
        raise UnknownContextError(
            "Unknown JSON-LD context",
            detail=f"{url} is not one of the contexts this node bundles; remote contexts are never fetched",
            field="@context",
        ) from None
    return {"contextUrl": None, "documentUrl": url, "document": document, "tag": "static"}
