"""The shared inbox: who sent this (HTTP signature), may they (policy, replay), and what it means.

Every request must be signed by the actor it claims to come from: EduFed peers sign with RFC 9421 and a key
of their ``did:web`` (listed under ``authentication``), fediverse servers with draft-cavage and the RSA key of
their actor. The activity's ``actor`` must be that signer and the activity id must live on the signer's
origin. A record inside a Create/Update/Delete is then judged on its own proof (``Mirror``), whoever sent it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from tortoise.exceptions import IntegrityError

from node.config import FederationPolicy, NodeConfig
from node.errors import EduFedError, Forbidden, Unprocessable
from node.federation import activities
from node.federation.delivery import CAVAGE, RFC9421, Deliverer
from node.federation.http_signatures import SignatureError, parse_signature, verify_signature_params
from node.federation.mirror import Mirror
from node.federation.peers import PeerBook
from node.net.client import FetchError, SafeClient
from node.net.did_resolver import DidResolver, did_web_host
from node.store.models import Follower, SeenActivity
from node.store.records import Store
from node.trust.did import find_verification_method
from node.trust.multikey import decode_public_multibase
from node.trust.rsa_keys import load_public_pem

log = logging.getLogger(__name__)


class InboxRefused(Forbidden):
    code = "inbox-refused"


class ReplayRefused(InboxRefused):
    """An activity id already applied: its sender may take the answer as proof of delivery."""

    code = "replay"


@dataclass(frozen=True)
class Sender:
    """Who signed a request: their origin host, actor id and signature scheme."""

    host: str
    actor: str
    scheme: str


class Inbox:
    def __init__(
        self,
        config: NodeConfig,
        policy: Callable[[], FederationPolicy],
        store: Store,
        client: SafeClient,
        resolver: DidResolver,
        mirror: Mirror,
        deliverer: Deliverer,
        peers: PeerBook,
        on_following: Callable[[str], Awaitable[None]],
    ) -> None:
        self.config = config
        self.policy = policy
        self.store = store
        self.client = client
        self.resolver = resolver
        self.mirror = mirror
        self.deliverer = deliverer
        self.peers = peers
        self.on_following = on_following

    async def receive(self, url: str, headers: Mapping[str, str], body: bytes, activity: dict[str, Any]) -> None:
        """Check and apply one POSTed activity; raise a 401/403/422 problem to refuse it."""
        claimed_host = urlsplit(str(activity.get("actor", ""))).netloc
        try:
            sender = self._check_policy(await self.authenticate(url, headers, body), activity)
            await self._check_replay(str(activity["id"]))
        except EduFedError:
            await self.peers.count_refusal(claimed_host)
            raise
        try:
            await self._dispatch(sender, activity)
        except EduFedError:
            await self.peers.count_refusal(sender.host)
            raise
        await self._remember(str(activity["id"]))  # only once applied: a refused activity may be sent again

    async def authenticate(self, url: str, headers: Mapping[str, str], body: bytes) -> Sender:
        params = parse_signature("POST", url, headers)
        if params.scheme == "rfc9421":
            did = params.key_id.split("#", 1)[0]
            if not did.startswith("did:web:"):
                raise SignatureError("RFC 9421 keyid must be a did:web verification method")
            host = did_web_host(did)
            try:
                method = await self._authentication_method(did, params.key_id)
            except EduFedError as error:  # a key we cannot find or trust is a signature we cannot verify: 401
                raise SignatureError(f"Signing key could not be resolved: {error.title}") from error
            if "revoked" in method:
                raise SignatureError("Signing key has been revoked")
            public_key: Any = decode_public_multibase(str(method["publicKeyMultibase"]))
            sender = Sender(host, "", RFC9421)  # the actor is any actor of that origin: see _check_policy
        else:
            actor_url = params.key_id.split("#", 1)[0]
            try:
                actor = await self.client.get_json(actor_url)
            except FetchError as error:
                raise SignatureError(f"Signer's actor could not be fetched: {error.reason}") from error
            key = actor.get("publicKey") if isinstance(actor, dict) else None
            if not isinstance(key, dict) or key.get("id") != params.key_id or key.get("owner") != actor.get("id"):
                raise SignatureError("Signer's actor does not list this key")
            public_key = load_public_pem(str(key.get("publicKeyPem", "")))
            sender = Sender(urlsplit(str(actor["id"])).netloc, str(actor["id"]), CAVAGE)
        verify_signature_params(params, "POST", url, headers, body, public_key,
                                max_age_seconds=self.policy().replay_window_seconds)
        return sender

    async def _authentication_method(self, did: str, key_id: str) -> dict[str, Any]:
        return find_verification_method(await self.resolver.resolve_for(did, [key_id]), key_id, "authentication")

    def _check_policy(self, sender: Sender, activity: dict[str, Any]) -> Sender:
        """Refuse deny-listed senders and activities not by the signer; returns the sender with its actor."""
        if sender.host in self.policy().deny:
            raise InboxRefused("Sender is on this node's deny-list", detail=sender.host, field="actor")
        actor = str(activity.get("actor", ""))
        same_actor = actor == sender.actor if sender.scheme == CAVAGE else urlsplit(actor).netloc == sender.host
        if not same_actor:
            raise InboxRefused("Activity actor is not the signer", detail=f"{actor} signed by {sender.host}",
                               field="actor")
        if urlsplit(str(activity.get("id", ""))).netloc != sender.host:
            raise InboxRefused("Activity id is not on the sender's origin", detail=str(activity.get("id")),
                               field="id")
        return replace(sender, actor=actor)

    async def _check_replay(self, activity_id: str) -> None:
        """Refuse an activity id already applied (older signatures fail on their age; housekeeping forgets ids
        once their signatures would be too old anyway)."""
        with self.store.bound():
            if await SeenActivity.exists(activity_id=activity_id):
                raise ReplayRefused("Activity already received (replay)", detail=activity_id, field="id")

    async def _remember(self, activity_id: str) -> None:
        with self.store.bound(), contextlib.suppress(IntegrityError):  # a concurrent copy was applied too
            await SeenActivity.create(activity_id=activity_id, received_at=datetime.now(UTC))

    async def _dispatch(self, sender: Sender, activity: dict[str, Any]) -> None:
        kind = activity.get("type")
        target = activity.get("object")
        if kind == "Follow":
            await self._follow(sender, activity)
        elif kind in ("Accept", "Reject") and isinstance(target, dict) and target.get("type") == "Follow":
            if target.get("actor") != activities.actor_id(self.config.base_url):
                raise Unprocessable("Accept/Reject of a Follow this node did not send", field="object")
            following = kind == "Accept"
            await self.peers.set_state_by_host(sender.host, "following" if following else "refused")
            if following:
                await self.on_following(sender.host)
        elif kind == "Undo" and isinstance(target, dict) and target.get("type") == "Follow":
            with self.store.bound():
                await Follower.filter(actor_id=sender.actor).delete()
        elif kind in ("Create", "Update", "Delete") and isinstance(target, str) and target.startswith("http"):
            # The object by reference: fetch it; its own proof decides, wherever it comes from.
            try:
                document = await self.client.get_json(target)
            except FetchError as error:
                raise Unprocessable("Activity object could not be fetched", detail=error.reason,
                                    field="object") from error
            if isinstance(document, dict) and "proof" in document:
                await self.mirror.accept(document, via=f"{urlsplit(sender.actor).scheme}://{sender.host}")
        elif kind in ("Create", "Update", "Delete") and isinstance(target, dict) and "proof" in target:
            await self.mirror.accept(target, via=f"{urlsplit(sender.actor).scheme}://{sender.host}")
        # Anything else (likes, boosts, notes from fediverse accounts) is acknowledged and ignored.

    async def _follow(self, sender: Sender, activity: dict[str, Any]) -> None:
        if activity.get("object") != activities.actor_id(self.config.base_url):
            raise Unprocessable("Follow must name this node's actor", field="object")
        try:
            actor = await self.client.get_json(sender.actor)
        except FetchError as error:
            raise Unprocessable("Follower's actor could not be fetched", detail=error.reason, field="actor") from error
        endpoints = actor.get("endpoints") if isinstance(actor.get("endpoints"), dict) else {}
        inbox = endpoints.get("sharedInbox") or actor.get("inbox")
        if not isinstance(inbox, str) or urlsplit(inbox).netloc != sender.host:
            raise Unprocessable("Follower's inbox must be on its own origin", detail=str(inbox), field="inbox")
        if not self.policy().allows(sender.host):
            await self.deliverer.enqueue(inbox, activities.reject(self.config.base_url, activity), sender.scheme)
            return
        kind = "edufed" if sender.scheme == RFC9421 else "activitypub"
        with self.store.bound():
            await Follower.update_or_create(defaults={"inbox": inbox, "kind": kind}, actor_id=sender.actor)
        if kind == "edufed":
            origin = f"{urlsplit(sender.actor).scheme}://{sender.host}"
            await self.peers.add(origin, hops=1, only_if_new=True)
        await self.deliverer.enqueue(inbox, activities.accept(self.config.base_url, activity), sender.scheme)
