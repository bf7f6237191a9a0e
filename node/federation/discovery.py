"""The documents by which nodes find each other: the node actor, NodeInfo 2.1 and WebFinger."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from node import __version__
from node.config import NodeConfig
from node.federation.activities import AS_CONTEXT, SECURITY_V1, actor_id, outbox_url
from node.trust.did import did_web_from_base_url

PROTOCOL_VERSION = "1.0"
NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.1"
ACTOR_USERNAME = "node"


def actor_document(config: NodeConfig, rsa_public_pem: str) -> dict[str, Any]:
    """The node's ActivityPub actor: a Service with inbox, outbox, followers and its keys.

    ``publicKey`` (RSA) is what fediverse servers verify draft-cavage signatures with. EduFed peers sign with
    the Ed25519 keys of the node's DID instead: ``did:web`` of the same origin, also named in NodeInfo.
    """
    actor = actor_id(config.base_url)
    return {
        # manuallyApprovesFollowers is not in the ActivityStreams context: defined inline, as Mastodon does
        "@context": [AS_CONTEXT, SECURITY_V1, {"manuallyApprovesFollowers": "as:manuallyApprovesFollowers"}],
        "id": actor,
        "type": "Service",
        "preferredUsername": ACTOR_USERNAME,
        "name": config.name,
        "summary": f"EduFed node of {config.name}: a catalog of courses, learning resources and places.",
        "url": config.base_url,
        "inbox": f"{config.base_url}/inbox",
        "outbox": outbox_url(config.base_url),
        "followers": f"{config.base_url}/followers",
        "following": f"{config.base_url}/following",
        "endpoints": {"sharedInbox": f"{config.base_url}/inbox"},
        "manuallyApprovesFollowers": False,
        "publicKey": {"id": f"{actor}#main-key", "owner": actor, "publicKeyPem": rsa_public_pem},
    }


def nodeinfo_links(base_url: str) -> dict[str, Any]:
    return {"links": [{"rel": NODEINFO_SCHEMA, "href": f"{base_url}/nodeinfo/2.1"}]}


def nodeinfo(config: NodeConfig, own_records: int, mirrored_records: int, peers: int) -> dict[str, Any]:
    """NodeInfo 2.1 with EduFed's metadata: who runs the node, where, in which languages, and what it holds."""
    return {
        "version": "2.1",
        "software": {"name": "edufed", "version": __version__, "homepage": "https://w3id.org/edufed"},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,
        "usage": {"users": {"total": 0}, "localPosts": own_records},
        "metadata": {
            "nodeName": config.name,
            "edufed": {
                "protocolVersion": PROTOCOL_VERSION,
                "did": did_web_from_base_url(config.base_url),
                "actor": actor_id(config.base_url),
                "country": config.country,
                "city": config.city,
                "languages": list(config.languages),
                "records": {"own": own_records, "mirrored": mirrored_records},
                "peers": peers,
            },
        },
    }


def webfinger(config: NodeConfig, resource: str) -> dict[str, Any] | None:
    """The JRD for ``acct:node@host`` or the actor URL; None for any other resource."""
    host = urlsplit(config.base_url).netloc
    actor = actor_id(config.base_url)
    if resource not in (f"acct:{ACTOR_USERNAME}@{host}", actor, config.base_url):
        return None
    return {
        "subject": f"acct:{ACTOR_USERNAME}@{host}",
        "aliases": [actor],
        "links": [
            {"rel": "self", "type": "application/activity+json", "href": actor},
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": config.base_url},
        ],
    }
