"""HTTP signatures: published vectors byte for byte (RFC 9421 B.2.6, RFC 9530, draft-cavage C.2/C.3), round
trips, and every tampering the inbox must refuse."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node.errors import Unauthorized
from node.federation.http_signatures import (
    SignatureError,
    check_content_digest,
    content_digest,
    parse_signature,
    sign_cavage,
    sign_rfc9421,
    signature_base,
    verify_signature_params,
)
from node.trust.multikey import Ed25519Key
from node.trust.rsa_keys import RsaKey, RsaKeyError, load_or_create_rsa_key, load_public_pem

# RFC 9421 Appendix B.1.4, "test-key-ed25519".
RFC9421_ED25519_PRIVATE = b"""-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
"""
RFC9421_ED25519_PUBLIC_X = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"  # the JWK "x" of B.1.4
# RFC 9421 Appendix B.2: the example request, and B.2.6's signature.
RFC9421_URL = "https://example.com/foo?param=Value&Pet=dog"
RFC9421_BODY = b'{"hello": "world"}'
B26_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"'
)
B26_SIGNATURE = "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
B26_BASE = (
    b'"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    b'"@method": POST\n'
    b'"@path": /foo\n'
    b'"@authority": example.com\n'
    b'"content-type": application/json\n'
    b'"content-length": 18\n'
    b'"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length")'
    b';created=1618884473;keyid="test-key-ed25519"'
)

# draft-cavage-http-signatures-12 Appendix C: the "Test" key and request.
CAVAGE_PUBLIC = """-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDCFENGw33yGihy92pDjZQhl0C3
6rPJj+CvfSC8+q28hxA161QFNUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6
Z4UMR7EOcpfdUE9Hf3m/hs+FUR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJw
oYi+1hqp1fIekaxsyQIDAQAB
-----END PUBLIC KEY-----
"""
CAVAGE_PRIVATE = b"""-----BEGIN RSA PRIVATE KEY-----
MIICXgIBAAKBgQDCFENGw33yGihy92pDjZQhl0C36rPJj+CvfSC8+q28hxA161QF
NUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6Z4UMR7EOcpfdUE9Hf3m/hs+F
UR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJwoYi+1hqp1fIekaxsyQIDAQAB
AoGBAJR8ZkCUvx5kzv+utdl7T5MnordT1TvoXXJGXK7ZZ+UuvMNUCdN2QPc4sBiA
QWvLw1cSKt5DsKZ8UETpYPy8pPYnnDEz2dDYiaew9+xEpubyeW2oH4Zx71wqBtOK
kqwrXa/pzdpiucRRjk6vE6YY7EBBs/g7uanVpGibOVAEsqH1AkEA7DkjVH28WDUg
f1nqvfn2Kj6CT7nIcE3jGJsZZ7zlZmBmHFDONMLUrXR/Zm3pR5m0tCmBqa5RK95u
412jt1dPIwJBANJT3v8pnkth48bQo/fKel6uEYyboRtA5/uHuHkZ6FQF7OUkGogc
mSJluOdc5t6hI1VsLn0QZEjQZMEOWr+wKSMCQQCC4kXJEsHAve77oP6HtG/IiEn7
kpyUXRNvFsDE0czpJJBvL/aRFUJxuRK91jhjC68sA7NsKMGg5OXb5I5Jj36xAkEA
gIT7aFOYBFwGgQAQkWNKLvySgKbAZRTeLBacpHMuQdl1DfdntvAyqpAZ0lY0RKmW
G6aFKaqQfOXKCyWoUiVknQJAXrlgySFci/2ueKlIE1QqIiLSZ8V8OlpFLRnb1pzI
7U1yQXnTAEFYM560yJlzUpOb1V4cScGd365tiSMvxLOvTA==
-----END RSA PRIVATE KEY-----
"""
CAVAGE_URL = "https://example.com/foo?param=value&pet=dog"
CAVAGE_NOW = 1388957500  # Sun, 05 Jan 2014 21:31:40 GMT, the Date of the example request
CAVAGE_HEADERS = {
    "Host": "example.com",
    "Date": "Sun, 05 Jan 2014 21:31:40 GMT",
    "Content-Type": "application/json",
    "Digest": "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
    "Content-Length": "18",
}
C2_SIGNATURE = (
    'keyId="Test",algorithm="rsa-sha256",headers="(request-target) host date",signature="qdx+H7PHHDZgy4y/Ahn9Tny9V3GP6Y'
    "gBPyUXMmoxWtLbHpUnXS2mg2+SbrQDMCJypxBLSPQR2aAjn7ndmw2iicw3HMbe8VfEdKFYRqzic+efkb3nndiv/x1xSHDJWeSWkx3ButlYSuBskLu"
    '6kd9Fswtemr3lgdDEmn04swr2Os0="'
)
C3_SIGNATURE = (
    'keyId="Test",algorithm="rsa-sha256",headers="(request-target) host date content-type digest content-length",'
    'signature="vSdrb+dS3EceC9bcwHSo4MlyKS59iFIrhgYkz8+oVLEEzmYZZvRs8rgOp+63LEM3v+MFHB32NfpB2bEKBIvB1q52LaEUHFv120V0'
    '1IL+TAD48XaERZFukWgHoBTLMhYS2Gb51gWxpeIq8knRmPnYePbF5MOkR0Zkly4zKH7s1dE="'
)

INBOX = "https://b.example/federation/inbox"
ACTIVITY = b'{"type": "Create", "id": "https://a.example/activities/1"}'
NOW = 1_760_000_000


def b26_headers() -> dict[str, str]:
    return {
        "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
        "Content-Type": "application/json",
        "Content-Length": "18",
        "Signature-Input": B26_INPUT,
        "Signature": B26_SIGNATURE,
    }


def reason_of(exc: pytest.ExceptionInfo[SignatureError]) -> str:
    return exc.value.reason


# -- published vectors ------------------------------------------------------------------------------------------


def test_rfc9421_b14_test_key_is_the_published_one() -> None:
    key = Ed25519Key.from_pem(RFC9421_ED25519_PRIVATE)
    raw = key.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == RFC9421_ED25519_PUBLIC_X


def test_rfc9421_b26_signature_base_and_signature_byte_for_byte() -> None:
    key = Ed25519Key.from_pem(RFC9421_ED25519_PRIVATE)
    params = parse_signature("POST", RFC9421_URL, b26_headers())
    assert (params.scheme, params.label, params.key_id, params.created) == (
        "rfc9421",
        "sig-b26",
        "test-key-ed25519",
        1618884473,
    )
    base = signature_base(params.components, params.params_value, "POST", RFC9421_URL, b26_headers())
    assert base == B26_BASE
    # Ed25519 is deterministic: signing the base must give the published signature exactly.
    assert f"sig-b26=:{base64.b64encode(key.sign(base)).decode()}:" == B26_SIGNATURE
    verify_signature_params(params, "POST", RFC9421_URL, b26_headers(), None, key.public_key, now=1618884473)


def test_rfc9421_b26_is_refused_with_its_body_because_no_digest_is_covered() -> None:
    key = Ed25519Key.from_pem(RFC9421_ED25519_PRIVATE)
    params = parse_signature("POST", RFC9421_URL, b26_headers())
    with pytest.raises(SignatureError) as exc:
        verify_signature_params(
            params, "POST", RFC9421_URL, b26_headers(), RFC9421_BODY, key.public_key, now=1618884473
        )
    assert "content-digest is not covered" in reason_of(exc)


def test_rfc9530_content_digest_examples() -> None:
    assert content_digest(RFC9421_BODY) == "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    sha512 = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
    check_content_digest({"content-digest": sha512}, RFC9421_BODY)
    with pytest.raises(SignatureError, match="digest mismatch"):
        check_content_digest({"Content-Digest": sha512}, b'{"hello": "world!"}')
    with pytest.raises(SignatureError, match="no supported algorithm"):
        check_content_digest({"Content-Digest": "md5=:AAAA:"}, RFC9421_BODY)
    with pytest.raises(SignatureError, match="missing"):
        check_content_digest({}, RFC9421_BODY)


@pytest.mark.parametrize("signature", [C2_SIGNATURE, C3_SIGNATURE], ids=["C.2", "C.3"])
def test_cavage_published_signatures_verify(signature: str) -> None:
    headers = {**CAVAGE_HEADERS, "Signature": signature}
    params = parse_signature("POST", CAVAGE_URL, headers)
    assert (params.scheme, params.key_id, params.algorithm) == ("cavage", "Test", "rsa-sha256")
    body = RFC9421_BODY if "digest" in params.components else None  # C.2 covers no digest, so it can carry no body
    verify_signature_params(params, "POST", CAVAGE_URL, headers, body, load_public_pem(CAVAGE_PUBLIC), now=CAVAGE_NOW)


def test_cavage_c2_is_refused_with_a_body_and_c3_with_another_body() -> None:
    public = load_public_pem(CAVAGE_PUBLIC)
    c2 = {**CAVAGE_HEADERS, "Signature": C2_SIGNATURE}
    with pytest.raises(SignatureError, match="digest is not covered"):
        verify_signature_params(
            parse_signature("POST", CAVAGE_URL, c2), "POST", CAVAGE_URL, c2, RFC9421_BODY, public, now=CAVAGE_NOW
        )
    c3 = {**CAVAGE_HEADERS, "Signature": C3_SIGNATURE}
    with pytest.raises(SignatureError, match="digest mismatch"):
        verify_signature_params(
            parse_signature("POST", CAVAGE_URL, c3), "POST", CAVAGE_URL, c3, b'{"hello": 1}', public, now=CAVAGE_NOW
        )


def test_cavage_signing_reproduces_the_published_c2_signature() -> None:
    # RSASSA-PKCS1-v1_5 is deterministic, so our signer must produce the draft's bytes exactly.
    added = sign_cavage(
        "POST", CAVAGE_URL, {"Date": CAVAGE_HEADERS["Date"]}, None, RsaKey.from_pem(CAVAGE_PRIVATE), "Test"
    )
    assert added == {"Host": "example.com", "Signature": C2_SIGNATURE}


# -- RFC 9421 round trips and tampering -------------------------------------------------------------------------


@pytest.fixture
def ed_key() -> Ed25519Key:
    return Ed25519Key.from_seed(bytes(range(32)))


def signed_post(key: Ed25519Key, body: bytes = ACTIVITY, created: int = NOW) -> dict[str, str]:
    headers = {"Content-Type": "application/activity+json"}
    headers.update(sign_rfc9421("POST", INBOX, headers, body, key, "https://a.example/actor#ed25519", created))
    return headers


def verify_rfc(
    headers: dict[str, str],
    public: Ed25519PublicKey,
    *,
    method: str = "POST",
    url: str = INBOX,
    body: bytes | None = ACTIVITY,
    now: float = NOW,
) -> None:
    params = parse_signature(method, url, headers)
    verify_signature_params(params, method, url, headers, body, public, now=now)


def test_rfc9421_round_trip(ed_key: Ed25519Key) -> None:
    headers = signed_post(ed_key)
    assert headers["Content-Digest"] == content_digest(ACTIVITY)
    assert headers["Signature-Input"] == (
        'sig1=("@method" "@target-uri" "content-digest" "content-type")'
        f';created={NOW};keyid="https://a.example/actor#ed25519";alg="ed25519"'
    )
    params = parse_signature("POST", INBOX, headers)
    assert params.key_id == "https://a.example/actor#ed25519"
    assert params.components == ("@method", "@target-uri", "content-digest", "content-type")
    verify_rfc(headers, ed_key.public_key)
    verify_rfc(headers, ed_key.public_key, now=NOW + 299)
    # Header names are case-insensitive on the way in.
    verify_rfc({name.upper(): value for name, value in headers.items()}, ed_key.public_key)


def test_rfc9421_get_without_body_covers_no_digest(ed_key: Ed25519Key) -> None:
    added = sign_rfc9421("GET", INBOX, {}, None, ed_key, "k", NOW)
    assert "Content-Digest" not in added
    verify_rfc(added, ed_key.public_key, method="GET", body=None)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"method": "PUT"}, "bad signature"),
        ({"url": "https://b.example/federation/inbox2"}, "bad signature"),
        ({"url": "https://c.example/federation/inbox"}, "bad signature"),
        ({"url": INBOX + "?x=1"}, "bad signature"),
        ({"body": ACTIVITY.replace(b"Create", b"Delete")}, "digest mismatch"),
        ({"now": NOW + 301}, "too old"),
        ({"now": NOW - 61}, "in the future"),
    ],
)
def test_rfc9421_tampering_is_refused(ed_key: Ed25519Key, change: dict[str, object], reason: str) -> None:
    headers = signed_post(ed_key)
    kwargs: dict[str, object] = {"method": "POST", "url": INBOX, "body": ACTIVITY, "now": NOW, **change}
    with pytest.raises(SignatureError) as exc:
        verify_rfc(headers, ed_key.public_key, **kwargs)  # type: ignore[arg-type]
    assert reason in reason_of(exc)


def test_rfc9421_tampered_headers_are_refused(ed_key: Ed25519Key) -> None:
    other_digest = content_digest(b"something else")
    for name, value, reason in [
        ("Content-Digest", other_digest, "bad signature"),
        ("Content-Type", "text/plain", "bad signature"),
        (
            "Signature-Input",
            signed_post(ed_key)["Signature-Input"].replace(f"created={NOW}", f"created={NOW + 1}"),
            "bad signature",
        ),
    ]:
        headers = signed_post(ed_key)
        headers[name] = value
        with pytest.raises(SignatureError) as exc:
            verify_rfc(headers, ed_key.public_key)
        assert reason in reason_of(exc), name
    # A digest header that matches a different body, with the body swapped too: the signature still fails.
    forged = signed_post(ed_key)
    forged["Content-Digest"] = other_digest
    with pytest.raises(SignatureError, match="bad signature"):
        verify_rfc(forged, ed_key.public_key, body=b"something else")


def test_rfc9421_wrong_key_and_wrong_key_type(ed_key: Ed25519Key) -> None:
    headers = signed_post(ed_key)
    with pytest.raises(SignatureError, match="bad signature"):
        verify_rfc(headers, Ed25519Key.generate().public_key)
    with pytest.raises(SignatureError, match="needs an Ed25519 key"):
        verify_rfc(headers, RsaKey.from_pem(CAVAGE_PRIVATE).public_key)  # type: ignore[arg-type]


def test_rfc9421_signature_without_digest_for_a_body_is_refused(ed_key: Ed25519Key) -> None:
    # Signed as if bodiless, then sent with a body: the body would be unprotected.
    headers = sign_rfc9421("POST", INBOX, {}, None, ed_key, "k", NOW)
    with pytest.raises(SignatureError, match="content-digest is not covered"):
        verify_rfc(headers, ed_key.public_key)


def test_rfc9421_missing_created_and_foreign_alg(ed_key: Ed25519Key) -> None:
    headers = signed_post(ed_key)
    no_created = {**headers, "Signature-Input": headers["Signature-Input"].replace(f";created={NOW}", "")}
    with pytest.raises(SignatureError, match="no created"):
        verify_rfc(no_created, ed_key.public_key)
    rsa_alg = {**headers, "Signature-Input": headers["Signature-Input"].replace('"ed25519"', '"rsa-v1_5-sha256"')}
    with pytest.raises(SignatureError, match="unsupported alg"):
        verify_rfc(rsa_alg, ed_key.public_key)


def test_rfc9421_expires_is_enforced(ed_key: Ed25519Key) -> None:
    headers = signed_post(ed_key)
    headers["Signature-Input"] += f";expires={NOW + 10}"
    with pytest.raises(SignatureError, match="expired"):
        verify_rfc(headers, ed_key.public_key, now=NOW + 100)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Signature-Input": 'sig1=("@method");created=1;keyid="k"'},
        {"Signature-Input": "not a dictionary ((", "Signature": "sig1=:AAAA:"},
        {"Signature-Input": 'sig1=("@method");created=1;keyid="k"', "Signature": "other=:AAAA:"},
        {"Signature-Input": 'sig1=("@method");created=1', "Signature": "sig1=:AAAA:"},
        {"Signature-Input": 'sig1=("@method";req);created=1;keyid="k"', "Signature": "sig1=:AAAA:"},
        {"Signature-Input": 'sig1="@method";created=1;keyid="k"', "Signature": "sig1=:AAAA:"},
        {"Signature": 'keyId="k",signature="not base64!"'},
        {"Signature": 'keyId="k"'},
        {"Signature": "garbage"},
        {"Authorization": "Bearer abc"},
    ],
    ids=[
        "none",
        "input-only",
        "bad-sfv",
        "label-mismatch",
        "no-keyid",
        "component-params",
        "not-inner-list",
        "cavage-bad-b64",
        "cavage-no-signature",
        "cavage-garbage",
        "other-auth-scheme",
    ],
)
def test_missing_or_malformed_signatures_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError) as exc:
        parse_signature("POST", INBOX, headers)
    assert exc.value.status == 401
    assert exc.value.problem()["field"] == "Signature"


def test_unsigned_request_has_its_own_code() -> None:
    with pytest.raises(SignatureError) as exc:
        parse_signature("POST", INBOX, {"Content-Type": "application/json"})
    assert exc.value.code == "missing-signature"
    assert isinstance(exc.value, Unauthorized)


def test_unsupported_derived_component_is_refused(ed_key: Ed25519Key) -> None:
    headers = {"Signature-Input": 'sig1=("@method" "@status");created=1;keyid="k"', "Signature": "sig1=:AAAA:"}
    params = parse_signature("POST", INBOX, headers)
    with pytest.raises(SignatureError, match="unsupported derived component"):
        signature_base(params.components, params.params_value, "POST", INBOX, headers)


def test_rfc9421_multiple_labels_pick_the_one_with_a_signature(ed_key: Ed25519Key) -> None:
    headers = signed_post(ed_key)
    headers["Signature-Input"] = 'proxy=("@method");created=1;keyid="p", ' + headers["Signature-Input"]
    params = parse_signature("POST", INBOX, headers)
    assert params.label == "sig1"
    verify_rfc(headers, ed_key.public_key)


# -- draft-cavage round trips -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> RsaKey:
    return RsaKey.generate()


def cavage_post(key: RsaKey, date: str = "Thu, 09 Oct 2025 08:53:20 GMT") -> dict[str, str]:
    headers = {"Content-Type": "application/activity+json", "Date": date}
    headers.update(sign_cavage("POST", INBOX, headers, ACTIVITY, key, "https://a.example/actor#main-key"))
    return headers


CAVAGE_DATE_NOW = 1760000000  # Thu, 09 Oct 2025 08:53:20 GMT


def verify_cav(
    headers: dict[str, str],
    key: RsaKey,
    *,
    body: bytes | None = ACTIVITY,
    now: float = CAVAGE_DATE_NOW,
    url: str = INBOX,
) -> None:
    params = parse_signature("POST", url, headers)
    verify_signature_params(params, "POST", url, headers, body, key.public_key, now=now)


def test_cavage_round_trip(rsa_key: RsaKey) -> None:
    headers = cavage_post(rsa_key)
    assert headers["Host"] == "b.example"
    assert headers["Digest"].startswith("SHA-256=")
    assert 'headers="(request-target) host date digest"' in headers["Signature"]
    params = parse_signature("POST", INBOX, headers)
    assert params.components == ("(request-target)", "host", "date", "digest")
    verify_cav(headers, rsa_key)


def test_cavage_adds_a_date_when_none_is_given(rsa_key: RsaKey) -> None:
    added = sign_cavage("GET", "http://127.0.0.1:8080/actor", {}, None, rsa_key, "k")
    assert added["Host"] == "127.0.0.1:8080"
    assert added["Date"].endswith(" GMT")
    params = parse_signature("GET", "http://127.0.0.1:8080/actor", added)
    verify_signature_params(params, "GET", "http://127.0.0.1:8080/actor", added, None, rsa_key.public_key)


def test_cavage_changed_date_body_path_host_or_key_fails(rsa_key: RsaKey) -> None:
    changed_date = {**cavage_post(rsa_key), "Date": "Thu, 09 Oct 2025 08:53:21 GMT"}
    with pytest.raises(SignatureError, match="bad signature"):
        verify_cav(changed_date, rsa_key)
    with pytest.raises(SignatureError, match="digest mismatch"):
        verify_cav(cavage_post(rsa_key), rsa_key, body=ACTIVITY + b" ")
    with pytest.raises(SignatureError, match="bad signature"):
        verify_cav(cavage_post(rsa_key), rsa_key, url="https://b.example/federation/outbox")
    with pytest.raises(SignatureError, match="bad signature"):
        verify_cav({**cavage_post(rsa_key), "Host": "c.example"}, rsa_key)
    with pytest.raises(SignatureError, match="bad signature"):
        verify_cav(cavage_post(rsa_key), RsaKey.from_pem(CAVAGE_PRIVATE))


def test_cavage_old_and_future_dates_are_refused(rsa_key: RsaKey) -> None:
    with pytest.raises(SignatureError, match="too old"):
        verify_cav(cavage_post(rsa_key), rsa_key, now=CAVAGE_DATE_NOW + 301)
    with pytest.raises(SignatureError, match="in the future"):
        verify_cav(cavage_post(rsa_key), rsa_key, now=CAVAGE_DATE_NOW - 61)
    verify_cav(cavage_post(rsa_key), rsa_key, now=CAVAGE_DATE_NOW - 59)


def test_cavage_needs_request_target_and_an_rsa_key(rsa_key: RsaKey, ed_key: Ed25519Key) -> None:
    headers = {**CAVAGE_HEADERS, "Signature": C3_SIGNATURE.replace("(request-target) ", "")}
    with pytest.raises(SignatureError, match=r"\(request-target\) is not covered"):
        verify_signature_params(
            parse_signature("POST", CAVAGE_URL, headers),
            "POST",
            CAVAGE_URL,
            headers,
            RFC9421_BODY,
            load_public_pem(CAVAGE_PUBLIC),
            now=CAVAGE_NOW,
        )
    signed = cavage_post(rsa_key)
    with pytest.raises(SignatureError, match="needs an RSA key"):
        verify_signature_params(
            parse_signature("POST", INBOX, signed),
            "POST",
            INBOX,
            signed,
            ACTIVITY,
            ed_key.public_key,
            now=CAVAGE_DATE_NOW,
        )


def test_cavage_in_authorization_header(rsa_key: RsaKey) -> None:
    headers = cavage_post(rsa_key)
    headers["Authorization"] = "Signature " + headers.pop("Signature")
    verify_cav(headers, rsa_key)


# -- RSA keys ---------------------------------------------------------------------------------------------------


def test_rsa_key_file_is_private_and_reloaded(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    first = load_or_create_rsa_key(keys)
    path = keys / "rsa.pem"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert first.key_size == 2048
    again = load_or_create_rsa_key(keys)
    assert again.public_pem() == first.public_pem()
    assert [p.name for p in keys.iterdir()] == ["rsa.pem"]  # no temporary file left behind
    assert first.public_pem().startswith("-----BEGIN PUBLIC KEY-----")
    reloaded = load_public_pem(first.public_pem())
    assert reloaded.public_numbers() == first.public_key.public_numbers()


def test_rsa_pem_helpers_refuse_other_keys() -> None:
    ed_pem = Ed25519Key.generate().to_pem()
    with pytest.raises(RsaKeyError):
        RsaKey.from_pem(ed_pem)
    ed_public = Ed25519Key.generate().public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(RsaKeyError):
        load_public_pem(ed_public.decode())
    with pytest.raises(RsaKeyError):
        load_public_pem("not a pem")
