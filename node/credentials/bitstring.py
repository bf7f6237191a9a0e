"""W3C Bitstring Status List v1.0: the bitstring and its ``encodedList`` form (GZIP, then multibase base64url).

Why a codec of our own: a status list is fetched from other nodes, so decoding is an attack surface. A few
hundred bytes of GZIP can expand to gigabytes; decoding stops at :data:`MAX_DECODED_BYTES` and refuses the
rest instead of exhausting memory. Lists shorter than :data:`MIN_ENTRIES` bits are refused too: the spec's
herd-privacy floor (``STATUS_LIST_LENGTH_ERROR``), so a short list cannot single out a credential.

Bit order (spec §2.2, "encodedList"): index 0 is the left-most bit of the bitstring, i.e. the most significant
bit of the first byte; index ``n`` is bit ``7 - n % 8`` of byte ``n // 8``.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib

from node.errors import Unprocessable

MIN_ENTRIES = 131072  # 16 KiB of bits: the spec's minimumNumberOfEntries
MAX_DECODED_BYTES = 16 * 1024 * 1024  # 128 Mi entries; a bigger (or bomb) list is refused
MULTIBASE_BASE64URL = "u"
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib: expect a GZIP header and trailer (RFC 1952), nothing else


class BitstringError(Unprocessable):
    """An ``encodedList`` that is not a valid status list (spec: MALFORMED_VALUE_ERROR)."""

    code = "malformed-status-list"

    def __init__(self, title: str, *, detail: str | None = None, code: str | None = None) -> None:
        super().__init__(title, detail=detail, field="encodedList", code=code)


class StatusListTooLargeError(BitstringError):
    """The list expands past :data:`MAX_DECODED_BYTES` (or the caller's limit): possibly a GZIP bomb."""

    code = "status-list-too-large"


class StatusListLengthError(BitstringError):
    """Fewer entries than the herd-privacy minimum (spec: STATUS_LIST_LENGTH_ERROR)."""

    code = "status-list-length"


class StatusRangeError(Unprocessable):
    """A status index outside the list (spec: RANGE_ERROR)."""

    code = "status-range"


class Bitstring:
    """A fixed-size list of bits, index 0 first (most significant bit of the first byte)."""

    __slots__ = ("_bytes",)

    def __init__(self, size: int = MIN_ENTRIES, *, data: bytes | None = None) -> None:
        """``size`` zero bits, or the bits of ``data`` (then ``size`` is ``8 * len(data)``)."""
        if data is not None:
            self._bytes = bytearray(data)
            return
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % 8:
            raise ValueError(f"bitstring size must be a positive multiple of 8, not {size!r}")
        self._bytes = bytearray(size // 8)

    @property
    def size(self) -> int:
        """Length in bits."""
        return len(self._bytes) * 8

    def __len__(self) -> int:
        return self.size

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bitstring) and self._bytes == other._bytes

    def __hash__(self) -> int:  # mutable: not hashable, like bytearray
        raise TypeError("Bitstring is mutable and not hashable")

    def __repr__(self) -> str:
        return f"Bitstring(size={self.size}, set={self.count()})"

    def to_bytes(self) -> bytes:
        return bytes(self._bytes)

    def _locate(self, index: int) -> tuple[int, int]:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.size:
            raise StatusRangeError(
                "Status index out of range", detail=f"{index!r} is not in 0..{self.size - 1}",
                field="statusListIndex")
        return index // 8, 0x80 >> (index % 8)

    def get(self, index: int) -> bool:
        byte, mask = self._locate(index)
        return bool(self._bytes[byte] & mask)

    def set(self, index: int, value: bool) -> None:
        byte, mask = self._locate(index)
        if value:
            self._bytes[byte] |= mask
        else:
            self._bytes[byte] &= ~mask & 0xFF

    def status(self, index: int, status_size: int = 1) -> int:
        """The ``status_size``-bit status of entry ``index`` (bits ``index * status_size`` on, first bit most
        significant), for entries with ``statusSize`` > 1 (``statusPurpose: message``)."""
        if isinstance(status_size, bool) or not isinstance(status_size, int) or status_size < 1:
            raise StatusRangeError("Invalid statusSize", detail=repr(status_size), field="statusSize")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise StatusRangeError("Status index out of range", detail=repr(index), field="statusListIndex")
        start = index * status_size
        self._locate(start + status_size - 1)
        value = 0
        for position in range(start, start + status_size):
            value = (value << 1) | self.get(position)
        return value

    def count(self) -> int:
        """How many bits are set."""
        return sum(bin(b).count("1") for b in self._bytes if b)

    def set_indices(self) -> list[int]:
        """Every index whose bit is set, ascending."""
        return [i * 8 + bit for i, b in enumerate(self._bytes) if b for bit in range(8) if b & (0x80 >> bit)]


def encode(bitstring: Bitstring) -> str:
    """The ``encodedList`` of ``bitstring``: GZIP (RFC 1952), then multibase base64url without padding (``u…``).

    ``mtime=0`` keeps the output a function of the bits alone, and level 6 (zlib's default, GZIP flag byte 0)
    gives the same bytes as the spec's example: an empty list encodes exactly as Example 3's ``encodedList``.
    """
    compressed = gzip.compress(bitstring.to_bytes(), compresslevel=6, mtime=0)
    return MULTIBASE_BASE64URL + base64.urlsafe_b64encode(compressed).rstrip(b"=").decode("ascii")


def _base64url_decode(text: str) -> bytes:
    if not text or any(c in text for c in "=+/") or len(text) % 4 == 1:
        raise BitstringError("encodedList is not base64url", detail="expected base64url without padding")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BitstringError("encodedList is not base64url", detail=str(exc)) from None


def _gunzip(compressed: bytes, max_bytes: int) -> bytes:
    """Every GZIP member of ``compressed``, concatenated, stopping as soon as the output passes ``max_bytes``."""
    out = bytearray()
    data = compressed
    while True:
        inflater = zlib.decompressobj(_GZIP_WBITS)
        try:
            out += inflater.decompress(data, max_bytes + 1 - len(out))
        except zlib.error as exc:
            raise BitstringError("encodedList is not GZIP data", detail=str(exc)) from None
        if len(out) > max_bytes:
            raise StatusListTooLargeError(
                "Status list too large", detail=f"it expands past {max_bytes} bytes ({max_bytes * 8} entries)")
        if not inflater.eof:
            # Either truncated, or output stopped exactly at the limit with more to come.
            if inflater.unconsumed_tail:
                raise StatusListTooLargeError(
                    "Status list too large", detail=f"it expands past {max_bytes} bytes ({max_bytes * 8} entries)")
            raise BitstringError("encodedList is not GZIP data", detail="the GZIP stream is truncated")
        data = inflater.unused_data
        if not data:
            return bytes(out)


def decode(encoded: str, *, min_entries: int = MIN_ENTRIES, max_bytes: int = MAX_DECODED_BYTES) -> Bitstring:
    """The bitstring of an ``encodedList`` (spec §3.4, Bitstring Expansion).

    Raises :class:`BitstringError` (field ``encodedList``) for a wrong multibase prefix, bad base64url or GZIP,
    :class:`StatusListTooLargeError` past ``max_bytes`` decompressed, :class:`StatusListLengthError` below
    ``min_entries`` bits (pass a smaller ``min_entries`` only where an ecosystem sets a lower bound).
    """
    if not isinstance(encoded, str):
        raise BitstringError("encodedList must be a string", detail=f"got {type(encoded).__name__}")
    if not encoded.startswith(MULTIBASE_BASE64URL):
        raise BitstringError(
            "encodedList has the wrong multibase prefix",
            detail=f"expected 'u' (base64url, no padding), got {encoded[:1]!r}")
    # GZIP never grows data by more than ~0.1 % plus headers: a longer string cannot expand within the limit,
    # so it is refused before it is even decoded.
    if len(encoded) > 4 * (max_bytes + max_bytes // 1000 + 1024) // 3 + 4:
        raise StatusListTooLargeError("Status list too large", detail=f"encodedList is {len(encoded)} characters")
    raw = _gunzip(_base64url_decode(encoded[1:]), max_bytes)
    if len(raw) * 8 < min_entries:
        raise StatusListLengthError(
            "Status list too short",
            detail=f"{len(raw) * 8} entries, the minimum is {min_entries} (herd privacy)")
    return Bitstring(data=raw)
