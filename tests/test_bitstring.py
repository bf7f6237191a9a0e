"""Bitstring Status List v1.0 codec: the spec's example, bit order, round trips, and hostile encodedLists."""

from __future__ import annotations

import base64
import gzip
import tracemalloc

import pytest

from node.credentials.bitstring import (
    MAX_DECODED_BYTES,
    MIN_ENTRIES,
    Bitstring,
    BitstringError,
    StatusListLengthError,
    StatusListTooLargeError,
    StatusRangeError,
    decode,
    encode,
)
from node.errors import Unprocessable

# Bitstring Status List v1.0 (W3C REC), Example 3 "Example BitstringStatusListCredential": 131,072 zero bits.
SPEC_EXAMPLE = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA"


def _encoded(raw: bytes, prefix: str = "u") -> str:
    """An encodedList built without our encoder (stdlib gzip + base64), for known-answer checks."""
    return prefix + base64.urlsafe_b64encode(gzip.compress(raw)).rstrip(b"=").decode("ascii")


def test_min_entries_is_the_spec_minimum() -> None:
    assert MIN_ENTRIES == 131072 == 16 * 1024 * 8
    assert Bitstring().size == MIN_ENTRIES


def test_spec_example_decodes_to_131072_unset_bits() -> None:
    bits = decode(SPEC_EXAMPLE)
    assert bits.size == MIN_ENTRIES
    assert bits.count() == 0
    assert not bits.get(0) and not bits.get(MIN_ENTRIES - 1)


def test_empty_list_encodes_exactly_as_the_spec_example() -> None:
    assert encode(Bitstring()) == SPEC_EXAMPLE
    assert decode(encode(Bitstring())) == Bitstring()


@pytest.mark.parametrize(("index", "byte", "value"), [(0, 0, 0x80), (1, 0, 0x40), (7, 0, 0x01), (8, 1, 0x80),
                                                      (MIN_ENTRIES - 1, MIN_ENTRIES // 8 - 1, 0x01)])
def test_index_zero_is_the_left_most_bit(index: int, byte: int, value: int) -> None:
    bits = Bitstring()
    bits.set(index, True)
    raw = bits.to_bytes()
    assert raw[byte] == value
    assert sum(raw) == value
    assert bits.set_indices() == [index]


def test_known_bytes_from_an_independent_encoder() -> None:
    raw = bytearray(MIN_ENTRIES // 8)
    raw[0] = 0b1010_0000  # indexes 0 and 2
    raw[12345 // 8] |= 0x80 >> (12345 % 8)
    bits = decode(_encoded(bytes(raw)))
    assert bits.set_indices() == [0, 2, 12345]
    assert bits.get(0) and not bits.get(1) and bits.get(2) and bits.get(12345) and not bits.get(12346)
    assert gzip.decompress(base64.urlsafe_b64decode(encode(bits)[1:] + "==")) == bytes(raw)


def test_set_clear_and_round_trip() -> None:
    bits = Bitstring()
    for index in (0, 3, 94567, MIN_ENTRIES - 1):
        bits.set(index, True)
    bits.set(3, False)
    bits.set(5, False)  # clearing a clear bit changes nothing
    again = decode(encode(bits))
    assert again == bits
    assert again.set_indices() == [0, 94567, MIN_ENTRIES - 1]
    assert encode(bits).startswith("u") and "=" not in encode(bits)


def test_larger_list_round_trips() -> None:
    bits = Bitstring(MIN_ENTRIES * 4)
    bits.set(MIN_ENTRIES * 4 - 1, True)
    assert decode(encode(bits)).set_indices() == [MIN_ENTRIES * 4 - 1]


def test_multi_bit_status() -> None:
    bits = Bitstring()
    bits.set(2 * 10, True)  # entry 10 of a statusSize-2 list: bits 20, 21 -> 0b10
    assert bits.status(10, 2) == 2
    bits.set(21, True)
    assert bits.status(10, 2) == 3
    assert bits.status(11, 2) == 0
    assert bits.status(20) == 1
    with pytest.raises(StatusRangeError):
        bits.status(MIN_ENTRIES // 2, 2)


@pytest.mark.parametrize("index", [-1, MIN_ENTRIES, True, "3"])
def test_out_of_range_index_is_refused(index: object) -> None:
    bits = Bitstring()
    with pytest.raises(StatusRangeError) as caught:
        bits.get(index)  # type: ignore[arg-type]
    assert caught.value.field == "statusListIndex"
    with pytest.raises(StatusRangeError):
        bits.set(index, True)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, -8, 12, 7])
def test_bad_size_is_refused(size: int) -> None:
    with pytest.raises(ValueError):
        Bitstring(size)


@pytest.mark.parametrize(
    ("encoded", "fragment"),
    [
        ("z" + SPEC_EXAMPLE[1:], "multibase prefix"),
        (SPEC_EXAMPLE[1:], "multibase prefix"),
        ("", "multibase prefix"),
        ("U" + SPEC_EXAMPLE[1:], "multibase prefix"),
        (SPEC_EXAMPLE + "=", "base64url"),
        ("u" + base64.b64encode(gzip.compress(bytes(16384))).decode().replace("-", "+"), "base64url"),
        ("u", "base64url"),
        ("u!!!!", "base64url"),
        ("u" + base64.urlsafe_b64encode(b"not gzip at all").rstrip(b"=").decode(), "GZIP"),
        (SPEC_EXAMPLE[:-8], "GZIP"),  # truncated stream
        ("u" + base64.urlsafe_b64encode(b"\x78\x9c" + b"\x03\x00" * 4).rstrip(b"=").decode(), "GZIP"),  # zlib, not gzip
    ],
)
def test_malformed_encoded_list_is_refused_clearly(encoded: str, fragment: str) -> None:
    with pytest.raises(BitstringError) as caught:
        decode(encoded)
    error = caught.value
    assert isinstance(error, Unprocessable) and error.status == 422
    assert error.field == "encodedList"
    assert fragment in str(error)
    assert error.problem()["field"] == "encodedList"


def test_non_string_is_refused() -> None:
    with pytest.raises(BitstringError):
        decode(b"uH4sI")  # type: ignore[arg-type]


def test_short_list_is_refused_for_herd_privacy() -> None:
    short = _encoded(bytes(1024))  # 8,192 entries
    with pytest.raises(StatusListLengthError) as caught:
        decode(short)
    assert caught.value.field == "encodedList" and "131072" in str(caught.value)
    assert decode(short, min_entries=8192).size == 8192


def test_gzip_bomb_is_refused_without_expanding_it() -> None:
    """64 MiB of zeros compress to ~64 KiB; decoding must stop at the limit, not allocate it all."""
    bomb = "u" + base64.urlsafe_b64encode(gzip.compress(bytes(64 * 1024 * 1024), 9)).rstrip(b"=").decode()
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(StatusListTooLargeError) as caught:
            decode(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.field == "encodedList" and caught.value.status == 422
    assert peak < 3 * MAX_DECODED_BYTES  # the limit's output and a copy, never the 64 MiB


def test_limit_is_exact() -> None:
    exactly = _encoded(bytes(MIN_ENTRIES // 8))
    assert decode(exactly, max_bytes=MIN_ENTRIES // 8).size == MIN_ENTRIES
    with pytest.raises(StatusListTooLargeError):
        decode(exactly, max_bytes=MIN_ENTRIES // 8 - 1)


def test_multi_member_gzip_counts_toward_the_limit() -> None:
    """RFC 1952 allows several members; they are concatenated, and all of them count toward the limit."""
    half = gzip.compress(bytes(MIN_ENTRIES // 16))
    two = "u" + base64.urlsafe_b64encode(half + half).rstrip(b"=").decode()
    assert decode(two).size == MIN_ENTRIES
    with pytest.raises(StatusListTooLargeError):
        decode(two, max_bytes=MIN_ENTRIES // 16 + 1)


def test_overlong_encoded_list_is_refused_before_decoding() -> None:
    with pytest.raises(StatusListTooLargeError):
        decode("u" + "A" * 4096, max_bytes=1024)
