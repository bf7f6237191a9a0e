"""Ed25519 keys and their Multikey encoding (``publicKeyMultibase`` ``z6Mk…``).

Why Multikey: it is what Data Integrity verifiers (and ``did:key``) expect; the public key is the multicodec
header ``0xed 0x01`` followed by the 32 raw key bytes, in multibase base58btc (prefix ``z``). Decoding checks
the header and the length, so a key of another type is never mistaken for an Ed25519 one.
"""

from __future__ import annotations

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from node.errors import Unprocessable

ED25519_PUB_HEADER = b"\xed\x01"
ED25519_PRIV_HEADER = b"\x80\x26"
KEY_BYTES = 32
SIGNATURE_BYTES = 64


class MultikeyError(Unprocessable):
    """A multibase key that is not an Ed25519 Multikey (wrong prefix, header or length)."""

    code = "invalid-multikey"


def decode_multibase(value: str) -> bytes:
    """The bytes of a multibase base58btc string (``z…``)."""
    if not isinstance(value, str) or not value.startswith("z") or len(value) < 2:
        raise MultikeyError("Invalid multibase value", detail="expected base58btc multibase (prefix 'z')")
    try:
        return bytes(base58.b58decode(value[1:]))
    except ValueError as exc:
        raise MultikeyError("Invalid multibase value", detail=f"not base58btc: {exc}") from None


def encode_multibase(data: bytes) -> str:
    """Multibase base58btc (``z…``)."""
    return "z" + base58.b58encode(data).decode("ascii")


def _decode_with_header(value: str, header: bytes, what: str) -> bytes:
    raw = decode_multibase(value)
    if raw[:2] != header:
        raise MultikeyError(
            f"Not an Ed25519 {what} Multikey",
            detail=f"multicodec header is 0x{raw[:2].hex()}, expected 0x{header.hex()}",
        )
    if len(raw) != 2 + KEY_BYTES:
        raise MultikeyError(
            f"Not an Ed25519 {what} Multikey",
            detail=f"key is {len(raw) - 2} bytes after the header, expected {KEY_BYTES}",
        )
    return raw[2:]


def decode_public_multibase(value: str) -> Ed25519PublicKey:
    """The Ed25519 public key of a ``publicKeyMultibase``; MultikeyError for any other key."""
    return Ed25519PublicKey.from_public_bytes(_decode_with_header(value, ED25519_PUB_HEADER, "public"))


def encode_public_multibase(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return encode_multibase(ED25519_PUB_HEADER + raw)


def verify_signature(public_multibase: str, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``data`` by that key; a bad key raises."""
    public_key = decode_public_multibase(public_multibase)
    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


class Ed25519Key:
    """An Ed25519 signing key (private part held by ``cryptography``)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_multibase = encode_public_multibase(private_key.public_key())

    @classmethod
    def generate(cls) -> Ed25519Key:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Ed25519Key:
        """The key of a 32-byte seed (RFC 8032 private key); used with published test vectors."""
        if len(seed) != KEY_BYTES:
            raise MultikeyError("Invalid Ed25519 seed", detail=f"expected {KEY_BYTES} bytes, got {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_private_multibase(cls, value: str) -> Ed25519Key:
        """A ``secretKeyMultibase`` (multicodec ed25519-priv 0x1300, as in W3C vectors)."""
        return cls.from_seed(_decode_with_header(value, ED25519_PRIV_HEADER, "private"))

    @classmethod
    def from_pem(cls, data: bytes) -> Ed25519Key:
        """A PKCS#8 PEM private key, unencrypted; anything but Ed25519 is refused."""
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise MultikeyError("Not an Ed25519 private key", detail=f"got {type(key).__name__}")
        return cls(key)

    def to_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted (the file itself is created mode 0600 by the keyring)."""
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._private.public_key()

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (deterministic: the same data always gives the same 64 bytes)."""
        return self._private.sign(data)

    def __repr__(self) -> str:
        return f"Ed25519Key({self.public_multibase})"
