"""The node's RSA key, kept only for draft-cavage HTTP signatures.

Why RSA at all: Mastodon and most of the fediverse verify inbox deliveries with ``rsa-sha256`` against the
actor's ``publicKey.publicKeyPem`` and know nothing of Ed25519. EduFed peers use Ed25519 (RFC 9421); this key
exists so an ordinary ActivityPub server can follow the node actor. It never signs records or credentials.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from node.errors import Unprocessable

RSA_KEY_FILE = "rsa.pem"
RSA_BITS = 2048
RSA_PUBLIC_EXPONENT = 65537


class RsaKeyError(Unprocessable):
    """A PEM that is not an RSA key of the expected kind."""

    code = "invalid-rsa-key"


class RsaKey:
    """An RSA private key that signs with RSASSA-PKCS1-v1_5 over SHA-256 (what ``rsa-sha256`` means)."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self._private = private_key

    @classmethod
    def generate(cls, bits: int = RSA_BITS) -> RsaKey:
        return cls(rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=bits))

    @classmethod
    def from_pem(cls, data: bytes) -> RsaKey:
        """An unencrypted PKCS#8 (or legacy PKCS#1) PEM private key; any other key type is refused."""
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise RsaKeyError("Unreadable RSA private key", detail=str(exc)) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise RsaKeyError("Not an RSA private key", detail=f"got {type(key).__name__}")
        return cls(key)

    def to_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted (the file is created mode 0600 by :func:`load_or_create_rsa_key`)."""
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self._private.public_key()

    @property
    def key_size(self) -> int:
        return self._private.key_size

    def public_pem(self) -> str:
        """SubjectPublicKeyInfo PEM (``-----BEGIN PUBLIC KEY-----``), the form ``publicKeyPem`` carries."""
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def sign_pkcs1_sha256(self, data: bytes) -> bytes:
        return self._private.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def __repr__(self) -> str:
        return f"RsaKey({self.key_size} bits)"


def load_public_pem(pem: str | bytes) -> rsa.RSAPublicKey:
    """The RSA public key of a ``publicKeyPem`` (SubjectPublicKeyInfo, or PKCS#1 ``RSA PUBLIC KEY`` as some
    servers publish); anything else raises :class:`RsaKeyError`."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise RsaKeyError("Unreadable public key PEM", detail=str(exc)) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise RsaKeyError("Not an RSA public key", detail=f"got {type(key).__name__}")
    return key


def load_or_create_rsa_key(keys_dir: Path) -> RsaKey:
    """The node's RSA key from ``keys_dir/rsa.pem``, created on first use.

    The key is written to a temporary file created with O_EXCL and mode 0600 (never readable by others, not
    even for an instant), then hard-linked to its name, which fails if the name exists: ``rsa.pem`` appears
    complete or not at all, and of two processes starting at once the loser reads the winner's key.
    """
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = keys_dir / RSA_KEY_FILE
    if path.exists():
        return RsaKey.from_pem(path.read_bytes())
    key = RsaKey.generate()
    tmp = keys_dir / f".{RSA_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.to_pem())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return RsaKey.from_pem(path.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)
    return key
