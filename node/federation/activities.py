"""ActivityStreams envelopes a node sends and serves: record activities, follow handshakes, fediverse notes.

Envelopes use only the ActivityStreams context, so any ActivityPub server can expand them. A record inside an
envelope keeps its own ``@context`` and proof exactly as its origin signed it: the envelope is transport, the
record's proof is the trust.
"""

from __future__ import annotations

import html
import uuid
from datetime import UTC, datetime
from typing import Any

from node.catalog.indexing import texts
from node.store.feed import FeedEntry

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_V1 = "https://w3id.org/security/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ACTIVITY_MEDIA_TYPE = "application/activity+json"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def actor_id(base_url: str) -> str:
    return f"{base_url}/actor"


def outbox_url(base_url: str) -> str:
    return f"{base_url}/outbox"


def activity_id(base_url: str, seq: int) -> str:
    """Outbox activities are numbered: ``{base}/outbox/{seq}``, so a follower reads its cursor off the id."""
    return f"{outbox_url(base_url)}/{seq}"


def seq_of(base_url: str, identifier: str) -> int | None:
    """The sequence number in an activity id of the node at ``base_url`` (None if it is not one)."""
    prefix = outbox_url(base_url) + "/"
    tail = identifier.removeprefix(prefix)
    return int(tail) if identifier.startswith(prefix) and tail.isdigit() else None


def record_activity(base_url: str, entry: FeedEntry, record: dict[str, Any]) -> dict[str, Any]:
    """The outbox item of one change: the record (or its Tombstone) as the origin stores it now."""
    return {
        "@context": AS_CONTEXT,
        "id": activity_id(base_url, entry.seq),
        "type": entry.type,
        "actor": actor_id(base_url),
        "published": iso(entry.published),
        "to": [f"{base_url}/followers"],
        "object": record,
    }


def note_activity(
    base_url: str, entry: FeedEntry, record: dict[str, Any], languages: tuple[str, ...]
) -> dict[str, Any]:
    """What a fediverse follower gets for a new course: a Note any ActivityPub server can show."""
    names = texts(record.get("name"), languages)
    descriptions = texts(record.get("description"), languages)
    iri = str(record["id"])
    name = names[0] if names else iri
    content = f'<p><a href="{html.escape(iri)}">{html.escape(name)}</a></p>'
    if descriptions:
        content += f"<p>{html.escape(descriptions[0])}</p>"
    note = {
        "id": f"{iri}#note-v{record.get('version', 1)}",
        "type": "Note",
        "attributedTo": actor_id(base_url),
        "name": name,
        "content": content,
        "url": iri,
        "published": iso(entry.published),
        "to": [PUBLIC],
        "cc": [f"{base_url}/followers"],
    }
    return {
        "@context": AS_CONTEXT,
        "id": f"{activity_id(base_url, entry.seq)}#note",
        "type": "Create",
        "actor": actor_id(base_url),
        "published": iso(entry.published),
        "to": [PUBLIC],
        "cc": [f"{base_url}/followers"],
        "object": note,
    }


def follow(base_url: str, target_actor: str) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": f"{base_url}/activities/follow-{uuid.uuid4()}",
        "type": "Follow",
        "actor": actor_id(base_url),
        "object": target_actor,
    }


def accept(base_url: str, follow_activity: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": f"{base_url}/activities/accept-{uuid.uuid4()}",
        "type": "Accept",
        "actor": actor_id(base_url),
        "object": {k: v for k, v in follow_activity.items() if k != "@context"},
    }


def reject(base_url: str, follow_activity: dict[str, Any]) -> dict[str, Any]:
    return {**accept(base_url, follow_activity), "type": "Reject",
            "id": f"{base_url}/activities/reject-{uuid.uuid4()}"}


def undo(base_url: str, activity: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": f"{base_url}/activities/undo-{uuid.uuid4()}",
        "type": "Undo",
        "actor": actor_id(base_url),
        "object": {k: v for k, v in activity.items() if k != "@context"},
    }
