"""Signing and verifying HTTP requests between nodes.

Two schemes, because the network has two kinds of peers:

* RFC 9421 HTTP Message Signatures with Ed25519 and an RFC 9530 ``Content-Digest``: what EduFed nodes speak.
* draft-cavage-http-signatures-12 with ``rsa-sha256`` and a ``Digest`` header: what Mastodon and most of the
  fediverse speak, so that an ordinary ActivityPub server can follow a node.

Verification is two steps because finding the key is the caller's business and may need the network (fetching
the actor named by ``keyId``): :func:`parse_signature` says who claims to have signed, the caller looks the key up,
then :func:`verify_signature_params` checks signature, digest, coverage and age. Everything here is synchronous
and opens no socket.

Headers are any ``Mapping[str, str]``; names are compared case-insensitively. aiohttp's ``request.headers``
(a ``CIMultiDictProxy``) can be passed as is: a field sent several times is combined with ", " as RFC 9110 does.
Every failure is a :class:`SignatureError` (401 problem, field ``Signature``) whose ``reason`` says why.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from http_sfv import Dictionary, InnerList, Item, Token
from yarl import URL

from node.errors import Unauthorized
from node.trust.multikey import Ed25519Key
from node.trust.rsa_keys import RsaKey

RFC9421_LABEL = "sig1"
RFC9421_ALG = "ed25519"
CAVAGE_ALGORITHMS = (None, "rsa-sha256", "hs2019")
MAX_CLOCK_SKEW_SECONDS = 60
DEFAULT_MAX_AGE_SECONDS = 300

_DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "sha-256": lambda data: hashlib.sha256(data).digest(),
    "sha-512": lambda data: hashlib.sha512(data).digest(),
}
_DERIVED = ("@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query")


class SignatureError(Unauthorized):
    """A request whose signature is missing, malformed, stale, or does not verify."""

    code = "invalid-signature"

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__("HTTP signature refused", detail=reason, field="Signature", code=code)
        self.reason = reason


@dataclass(frozen=True)
class SignatureParams:
    """What a request's signature claims, before any key is looked up.

    ``components`` are RFC 9421 component ids (``"@method"``, ``"content-digest"``) or, for cavage, the lowercased
    ``headers`` list (``"(request-target)"``, ``"host"``…). ``params_value`` is the serialised RFC 9421 signature
    parameters (the last line of the signature base); ``date`` is the request's ``Date`` header, if any.
    """

    scheme: Literal["rfc9421", "cavage"]
    key_id: str
    components: tuple[str, ...]
    signature: bytes
    created: int | None = None
    expires: int | None = None
    algorithm: str | None = None
    date: str | None = None
    label: str | None = None
    params_value: str = ""


# -- shared helpers ---------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lowercased names, trimmed values, repeated fields joined with ", " (RFC 9421 section 2.1)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        clean = re.sub(r"\s*\r?\n\s*", " ", value).strip()
        out[key] = f"{out[key]}, {clean}" if key in out else clean
    return out


def _authority(url: URL) -> str:
    host = url.raw_host or ""
    if ":" in host:
        host = f"[{host}]"
    return host if url.is_default_port() else f"{host}:{url.port}"


def _request_target(url: URL) -> str:
    return url.raw_path_qs or "/"


def _check_age(issued: float, expires: float | None, now: float, max_age_seconds: int) -> None:
    if issued > now + MAX_CLOCK_SKEW_SECONDS:
        raise SignatureError(f"signature created {int(issued - now)} s in the future", code="signature-expired")
    if now - issued > max_age_seconds:
        raise SignatureError(
            f"signature too old ({int(now - issued)} s, at most {max_age_seconds} s)", code="signature-expired"
        )
    if expires is not None and now > expires + MAX_CLOCK_SKEW_SECONDS:
        raise SignatureError("signature expired", code="signature-expired")


# -- digests ----------------------------------------------------------------------------------------------------


def content_digest(body: bytes) -> str:
    """RFC 9530 ``Content-Digest`` value: ``sha-256=:<base64>:``."""
    return f"sha-256=:{_b64(hashlib.sha256(body).digest())}:"


def _parse_dictionary(value: str, field: str) -> Dictionary:
    parsed = Dictionary()
    try:
        parsed.parse(value.encode("ascii"))
    except ValueError:
        raise SignatureError(f"{field} is not a structured-field dictionary") from None
    return parsed


def check_content_digest(headers: Mapping[str, str], body: bytes) -> None:
    """The ``Content-Digest`` header must name sha-256 or sha-512 and every such digest must match ``body``."""
    value = lower_headers(headers).get("content-digest")
    if value is None:
        raise SignatureError("Content-Digest header missing")
    checked = False
    for algorithm, member in _parse_dictionary(value, "Content-Digest").items():
        digest = _DIGESTS.get(algorithm)
        if digest is None:
            continue
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise SignatureError(f"Content-Digest {algorithm} is not a byte sequence")
        if not hmac.compare_digest(member.value, digest(body)):
            raise SignatureError("Content-Digest does not match the body (digest mismatch)", code="digest-mismatch")
        checked = True
    if not checked:
        raise SignatureError("Content-Digest has no supported algorithm (sha-256, sha-512)")


def legacy_digest(body: bytes) -> str:
    """RFC 3230 ``Digest`` value as draft-cavage peers expect: ``SHA-256=<base64>``."""
    return f"SHA-256={_b64(hashlib.sha256(body).digest())}"


def check_legacy_digest(headers: Mapping[str, str], body: bytes) -> None:
    """The ``Digest`` header must carry SHA-256 or SHA-512 and every such digest must match ``body``."""
    value = lower_headers(headers).get("digest")
    if value is None:
        raise SignatureError("Digest header missing")
    checked = False
    for entry in value.split(","):
        algorithm, sep, encoded = entry.strip().partition("=")
        digest = _DIGESTS.get(algorithm.lower())
        if not sep or digest is None:
            continue
        try:
            claimed = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise SignatureError(f"Digest {algorithm} is not base64") from None
        if not hmac.compare_digest(claimed, digest(body)):
            raise SignatureError("Digest does not match the body (digest mismatch)", code="digest-mismatch")
        checked = True
    if not checked:
        raise SignatureError("Digest has no supported algorithm (SHA-256, SHA-512)")


# -- RFC 9421 ---------------------------------------------------------------------------------------------------


def _component_value(name: str, method: str, url: URL, headers: Mapping[str, str]) -> str:
    if name == "@method":
        return method.upper()
    if name == "@target-uri":
        return str(url)
    if name == "@authority":
        return _authority(url)
    if name == "@scheme":
        return url.scheme.lower()
    if name == "@request-target":
        return _request_target(url)
    if name == "@path":
        return url.raw_path or "/"
    if name == "@query":
        return "?" + url.raw_query_string
    if name.startswith("@"):
        raise SignatureError(f"unsupported derived component {name}")
    value = headers.get(name)
    if value is None:
        raise SignatureError(f"covered field {name} is not in the request")
    return value


def signature_base(
    components: Sequence[str], params_value: str, method: str, url: str, headers: Mapping[str, str]
) -> bytes:
    """The RFC 9421 signature base (section 2.5): one ``"name": value`` line per component, then the params."""
    if len(set(components)) != len(components):
        raise SignatureError("a component is covered twice")
    target = URL(url)
    fields = lower_headers(headers)
    lines = [f'"{name}": {_component_value(name, method, target, fields)}' for name in components]
    lines.append(f'"@signature-params": {params_value}')
    try:
        return "\n".join(lines).encode("ascii")
    except UnicodeEncodeError:
        raise SignatureError("a covered value is not ASCII") from None


def sign_rfc9421(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key: Ed25519Key,
    key_id: str,
    created: int | None = None,
) -> dict[str, str]:
    """Headers to add to a request so an EduFed peer accepts it: ``Content-Digest`` (when there is a body),
    ``Signature-Input`` and ``Signature``, label ``sig1``, covering the method, the target URI and the digest and
    content type when present. Send the body and ``Content-Type`` byte for byte as given here."""
    fields = lower_headers(headers)
    added: dict[str, str] = {}
    if body:
        added["Content-Digest"] = fields["content-digest"] = content_digest(body)
    components = ["@method", "@target-uri"] + [name for name in ("content-digest", "content-type") if name in fields]
    inner = InnerList([Item(name) for name in components])
    inner.params["created"] = int(time.time()) if created is None else created
    inner.params["keyid"] = key_id
    inner.params["alg"] = RFC9421_ALG
    params_value = str(inner)
    signature = key.sign(signature_base(components, params_value, method, url, fields))
    added["Signature-Input"] = f"{RFC9421_LABEL}={params_value}"
    added["Signature"] = f"{RFC9421_LABEL}=:{_b64(signature)}:"
    return added


def _int_param(params: Mapping[str, object], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SignatureError(f"Signature-Input parameter {name} is not an integer")
    return value


def _parse_rfc9421(fields: Mapping[str, str]) -> SignatureParams:
    inputs = _parse_dictionary(fields["signature-input"], "Signature-Input")
    signatures = _parse_dictionary(fields.get("signature", ""), "Signature") if "signature" in fields else None
    if not signatures:
        raise SignatureError("Signature-Input without a Signature header", code="missing-signature")
    label = next((name for name in inputs if name in signatures), None)
    if label is None:
        raise SignatureError("no Signature-Input label has a matching Signature")
    member, signed = inputs[label], signatures[label]
    if not isinstance(member, InnerList):
        raise SignatureError(f"Signature-Input {label} is not an inner list")
    if not isinstance(signed, Item) or not isinstance(signed.value, bytes):
        raise SignatureError(f"Signature {label} is not a byte sequence")
    components: list[str] = []
    for item in member:
        if not isinstance(item.value, str) or isinstance(item.value, Token):
            raise SignatureError("a covered component is not a string")
        if item.params:
            raise SignatureError(f"component parameters are not supported ({item})")
        components.append(item.value)
    params = member.params
    key_id = params.get("keyid")
    if not isinstance(key_id, str) or not key_id:
        raise SignatureError("Signature-Input has no keyid")
    algorithm = params.get("alg")
    if algorithm is not None and not isinstance(algorithm, str):
        raise SignatureError("Signature-Input alg is not a string")
    return SignatureParams(
        scheme="rfc9421",
        key_id=key_id,
        components=tuple(components),
        signature=signed.value,
        created=_int_param(params, "created"),
        expires=_int_param(params, "expires"),
        algorithm=algorithm,
        date=fields.get("date"),
        label=label,
        params_value=str(member),
    )


def _verify_rfc9421(
    params: SignatureParams,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    public_key: object,
    now: float,
    max_age_seconds: int,
) -> None:
    if not isinstance(public_key, Ed25519PublicKey):
        raise SignatureError("an RFC 9421 signature needs an Ed25519 key")
    if params.algorithm not in (None, RFC9421_ALG):
        raise SignatureError(f"unsupported alg {params.algorithm!r} (expected ed25519)")
    covered = set(params.components)
    if "@method" not in covered:
        raise SignatureError("@method is not covered")
    if "@target-uri" not in covered and not {"@authority", "@path"} <= covered:
        raise SignatureError("the target (@target-uri, or @authority and @path) is not covered")
    if body and "content-digest" not in covered:
        raise SignatureError("the request has a body but content-digest is not covered")
    if params.created is None:
        raise SignatureError("Signature-Input has no created parameter")
    _check_age(params.created, params.expires, now, max_age_seconds)
    base = signature_base(params.components, params.params_value, method, url, headers)
    try:
        public_key.verify(params.signature, base)
    except InvalidSignature:
        raise SignatureError("bad signature") from None
    if "content-digest" in covered:
        check_content_digest(headers, body or b"")


# -- draft-cavage-http-signatures-12 ----------------------------------------------------------------------------

_CAVAGE_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"([^"]*)"|([^\s",]+))\s*')


def _cavage_string(
    components: Sequence[str], params: SignatureParams | None, method: str, url: str, fields: Mapping[str, str]
) -> bytes:
    """The draft-cavage signing string: ``name: value`` lines, lowercased names, no trailing newline."""
    target = URL(url)
    lines = []
    for name in components:
        if name == "(request-target)":
            value = f"{method.lower()} {_request_target(target)}"
        elif name in ("(created)", "(expires)"):
            number = None if params is None else (params.created if name == "(created)" else params.expires)
            if number is None:
                raise SignatureError(f"{name} is covered but the parameter is missing")
            value = str(number)
        elif name in fields:
            value = fields[name]
        else:
            raise SignatureError(f"covered header {name} is not in the request")
        lines.append(f"{name}: {value}")
    try:
        return "\n".join(lines).encode("ascii")
    except UnicodeEncodeError:
        raise SignatureError("a covered value is not ASCII") from None


def sign_cavage(
    method: str, url: str, headers: Mapping[str, str], body: bytes | None, rsa_key: RsaKey, key_id: str
) -> dict[str, str]:
    """Headers to add so a Mastodon-compatible server accepts the request: ``Date`` (unless given), ``Host``,
    ``Digest`` (when there is a body) and ``Signature`` over ``(request-target) host date [digest]``."""
    fields = lower_headers(headers)
    added: dict[str, str] = {}
    if "date" not in fields:
        added["Date"] = fields["date"] = formatdate(usegmt=True)
    added["Host"] = fields["host"] = _authority(URL(url))
    components = ["(request-target)", "host", "date"]
    if body:
        added["Digest"] = fields["digest"] = legacy_digest(body)
        components.append("digest")
    signature = rsa_key.sign_pkcs1_sha256(_cavage_string(components, None, method, url, fields))
    added["Signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(components)}",signature="{_b64(signature)}"'
    )
    return added


def _parse_cavage(value: str, fields: Mapping[str, str]) -> SignatureParams:
    found: dict[str, str] = {}
    pos = 0
    while pos < len(value):
        match = _CAVAGE_PARAM.match(value, pos)
        if match is None:
            raise SignatureError("malformed Signature header")
        name = match.group(1).lower()
        if name in found:
            raise SignatureError(f"Signature parameter {name} given twice")
        found[name] = match.group(2) if match.group(2) is not None else match.group(3)
        pos = match.end()
        if pos < len(value):
            if value[pos] != ",":
                raise SignatureError("malformed Signature header")
            pos += 1
    key_id, encoded = found.get("keyid"), found.get("signature")
    if not key_id or not encoded:
        raise SignatureError("Signature header lacks keyId or signature")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise SignatureError("Signature value is not base64") from None
    numbers: dict[str, int | None] = {}
    for name in ("created", "expires"):
        raw = found.get(name)
        if raw is not None and not raw.isdigit():
            raise SignatureError(f"Signature parameter {name} is not an integer")
        numbers[name] = None if raw is None else int(raw)
    return SignatureParams(
        scheme="cavage",
        key_id=key_id,
        components=tuple(found.get("headers", "date").lower().split()),
        signature=signature,
        created=numbers["created"],
        expires=numbers["expires"],
        algorithm=found["algorithm"].lower() if found.get("algorithm") else None,
        date=fields.get("date"),
    )


def _verify_cavage(
    params: SignatureParams,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    public_key: object,
    now: float,
    max_age_seconds: int,
) -> None:
    if not isinstance(public_key, RSAPublicKey):
        raise SignatureError("a draft-cavage signature needs an RSA key")
    if params.algorithm not in CAVAGE_ALGORITHMS:
        raise SignatureError(f"unsupported algorithm {params.algorithm!r} (expected rsa-sha256)")
    covered = set(params.components)
    for required in ("(request-target)", "host"):
        if required not in covered:
            raise SignatureError(f"{required} is not covered")
    if body and "digest" not in covered:
        raise SignatureError("the request has a body but digest is not covered")
    if "(created)" in covered and params.created is not None:
        issued: float = params.created
    elif "date" in covered and params.date:
        try:
            issued = parsedate_to_datetime(params.date).timestamp()
        except (TypeError, ValueError):
            raise SignatureError("Date header is not an HTTP date") from None
    else:
        raise SignatureError("neither date nor (created) is covered")
    _check_age(issued, params.expires, now, max_age_seconds)
    fields = lower_headers(headers)
    data = _cavage_string(params.components, params, method, url, fields)
    try:
        public_key.verify(params.signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureError("bad signature") from None
    if "digest" in covered:
        check_legacy_digest(fields, body or b"")


# -- public entry points ----------------------------------------------------------------------------------------


def parse_signature(method: str, url: str, headers: Mapping[str, str]) -> SignatureParams:
    """Who claims to have signed this request, and over what; raises :class:`SignatureError` when there is no
    signature (code ``missing-signature``) or it is malformed. ``Signature-Input`` means RFC 9421; a lone
    ``Signature`` (or ``Authorization: Signature …``) means draft-cavage. ``method`` and ``url`` are taken for
    symmetry with the verifier; parsing needs only the headers."""
    del method, url
    fields = lower_headers(headers)
    if "signature-input" in fields:
        return _parse_rfc9421(fields)
    if "signature" in fields:
        return _parse_cavage(fields["signature"], fields)
    authorization = fields.get("authorization", "")
    if authorization[:10].lower() == "signature ":
        return _parse_cavage(authorization[10:], fields)
    raise SignatureError("the request is not signed", code="missing-signature")


def verify_signature_params(
    params: SignatureParams,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    public_key: Ed25519PublicKey | RSAPublicKey,
    now: float | None = None,
    max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS,
) -> None:
    """Raise :class:`SignatureError` unless the signature verifies with ``public_key``, covers the method, the
    target and (when there is a body) a digest that matches the body, and is no older than ``max_age_seconds``
    nor more than 60 s in the future. ``url`` is the full URL the request was sent to, as the sender saw it
    (scheme, public host and port, raw path and query)."""
    moment = time.time() if now is None else now
    if params.scheme == "rfc9421":
        _verify_rfc9421(params, method, url, headers, body, public_key, moment, max_age_seconds)
    else:
        _verify_cavage(params, method, url, headers, body, public_key, moment, max_age_seconds)
