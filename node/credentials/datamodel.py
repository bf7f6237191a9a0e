"""The VC Data Model 2.0 rules a credential or presentation must follow, whoever issued it.

One set of rules for both sides: the issuer refuses a request that breaks one (422 naming the ``field``) and
the verifier's ``structure`` check fails with the same words. The rules are the data model's own (sections 4
and 5 of VC 2.0): identifiers are single URLs, ``type`` values are terms or absolute URLs, the typed
properties (``credentialStatus``, ``termsOfUse``, ``evidence``, ``refreshService``, ``credentialSchema``)
say their type, names and descriptions are strings or language value objects, dates are XSD
dateTimeStamps. What a term *means* is JSON-LD's business: :func:`check_expands` expands the document with
the bundled contexts in safe mode, which refuses undefined terms, relative IRIs and redefined protected terms.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from node.errors import EduFedError, Unprocessable
from node.ld.canon import expand
from node.ld.contexts import CREDENTIALS_V1_CONTEXT, CREDENTIALS_V2_CONTEXT, published_digests

# An absolute URL or URN: a scheme, a colon, and no white space (RFC 3986 scheme syntax).
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$")
# A term: what a context may map (no colon, no white space).
_TERM = re.compile(r"^[^\s:]+$")
DATE_TIME_STAMP = re.compile(r"^-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
# xsd:dateTime: the time zone is optional (VC 1.1 issuanceDate, expirationDate)
DATE_TIME = re.compile(r"^-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$")
LANGUAGE_VALUE_KEYS = frozenset({"@value", "@language", "@direction"})
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
# property -> whether each of its objects needs an id as well as a type
TYPED_PROPERTIES = {"credentialStatus": False, "termsOfUse": False, "evidence": False,
                    "refreshService": False, "credentialSchema": True}


class DataModelError(Unprocessable):
    """A credential or presentation that breaks the VC data model."""

    code = "data-model"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def types_of(value: Any) -> list[str]:
    return [t for t in as_list(value) if isinstance(t, str)]


def is_url(value: Any) -> bool:
    return isinstance(value, str) and bool(_URL.match(value))


def parse_date_time(value: Any, *, zone_required: bool = True) -> datetime | None:
    """An XSD dateTimeStamp (or, without ``zone_required``, dateTime read as UTC) or None when it is not one."""
    pattern = DATE_TIME_STAMP if zone_required else DATE_TIME
    if not isinstance(value, str) or not pattern.match(value):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fail(title: str, field: str, detail: str | None = None) -> DataModelError:
    return DataModelError(title, field=field, detail=detail)


def _check_id(value: Any, field: str) -> None:
    if not is_url(value):
        raise _fail("An id must be a single URL", field, repr(value))


def _check_types(value: Any, field: str, *, required: str | None = None) -> None:
    if value is None:
        raise _fail("type is required", field)
    values = as_list(value)
    if not values or not all(isinstance(t, str) and (_TERM.match(t) or is_url(t)) for t in values):
        raise _fail("type must be one or more terms or absolute URLs", field, repr(value))
    if required is not None and required not in values:
        raise _fail(f"type must include {required}", field, repr(value))


def _check_language_text(value: Any, field: str) -> None:
    """A string, a language value object, or a list of them (VC 2.0 §11.1)."""
    for item in as_list(value) if isinstance(value, list) else [value]:
        if isinstance(item, str):
            continue
        if not isinstance(item, dict) or not isinstance(item.get("@value"), str):
            raise _fail("must be a string or a language value object", field)
        extra = set(item) - LANGUAGE_VALUE_KEYS
        if extra:
            raise _fail("A language value object has only @value, @language and @direction", field,
                        ", ".join(sorted(extra)))
        language = item.get("@language")
        if language is not None and not (isinstance(language, str) and _LANGUAGE_TAG.match(language)):
            raise _fail("@language must be a BCP 47 language tag", field, repr(language))
        if item.get("@direction") not in (None, "ltr", "rtl"):
            raise _fail("@direction must be ltr or rtl", field, repr(item.get("@direction")))


def _check_names(node: Any, field: str) -> None:
    if not isinstance(node, dict):
        return
    for member in ("name", "description"):
        if member in node:
            _check_language_text(node[member], f"{field}.{member}" if field else member)


def _check_contexts(document: dict[str, Any], first: str) -> list[Any]:
    if "@context" not in document:
        raise _fail("@context is required", "@context")
    contexts = as_list(document["@context"])
    if not contexts or contexts[0] != first:
        raise _fail("The first @context must be the VC base context", "@context", first)
    for item in contexts[1:]:
        if not (is_url(item) or isinstance(item, dict)):
            raise _fail("Each further @context must be a URL or an object", "@context", repr(item))
    return contexts


def _check_typed(document: dict[str, Any]) -> None:
    for member, needs_id in TYPED_PROPERTIES.items():
        if member not in document:
            continue
        for index, item in enumerate(as_list(document[member])):
            field = f"{member}[{index}]" if isinstance(document[member], list) else member
            if not isinstance(item, dict):
                raise _fail(f"{member} must be one or more objects", field)
            if needs_id or "id" in item:
                _check_id(item.get("id"), f"{field}.id")
            _check_types(item.get("type"), f"{field}.type")


def _digest_matches(resource: dict[str, Any], field: str) -> None:
    """Check a relatedResource's digests against the published digests of the resources the node holds.

    Why only those: a verifier never fetches a link (a proof does not make a host safe to call), so a
    resource the node does not hold is not checked.
    """
    known = published_digests(str(resource["id"]))
    if known is None:
        return
    sri = resource.get("digestSRI")
    if sri is not None:
        algorithm, _, value = str(sri).partition("-")
        expected = known.get(algorithm)
        if expected is not None and value != base64.b64encode(expected).decode():
            raise _fail("relatedResource digestSRI does not match the resource", f"{field}.digestSRI")
    multibase = resource.get("digestMultibase")
    if multibase is not None:
        text = str(multibase)
        try:
            digest = base64.urlsafe_b64decode(text[1:] + "=" * (-len(text[1:]) % 4)) if text[:1] == "u" else b""
        except (binascii.Error, ValueError):
            digest = b""
        expected = known.get("sha256")
        # a multihash (0x12 0x20 prefix) or the bare SHA-256
        if expected is not None and digest not in (expected, b"\x12\x20" + expected):
            raise _fail("relatedResource digestMultibase does not match the resource", f"{field}.digestMultibase")


def _check_related(document: dict[str, Any]) -> None:
    if "relatedResource" not in document:
        return
    ids: set[str] = set()
    for index, item in enumerate(as_list(document["relatedResource"])):
        field = f"relatedResource[{index}]"
        if not isinstance(item, dict):
            raise _fail("relatedResource must be one or more objects", field)
        _check_id(item.get("id"), f"{field}.id")
        if item["id"] in ids:
            raise _fail("relatedResource lists a resource twice", f"{field}.id", str(item["id"]))
        ids.add(str(item["id"]))
        if "digestSRI" not in item and "digestMultibase" not in item:
            raise _fail("relatedResource needs digestSRI or digestMultibase", field)
        _digest_matches(item, field)


def _check_subjects(document: dict[str, Any]) -> None:
    if "credentialSubject" not in document:
        raise _fail("credentialSubject is required", "credentialSubject")
    subjects = as_list(document["credentialSubject"])
    if not subjects:
        raise _fail("credentialSubject must make claims about at least one subject", "credentialSubject")
    for index, subject in enumerate(subjects):
        field = f"credentialSubject[{index}]" if isinstance(document["credentialSubject"], list) \
            else "credentialSubject"
        if not isinstance(subject, dict) or not subject:
            raise _fail("Each credentialSubject must be an object with at least one claim", field)
        if "id" in subject:
            _check_id(subject["id"], f"{field}.id")


def _check_issuer(document: dict[str, Any]) -> None:
    if "issuer" not in document:
        raise _fail("issuer is required", "issuer")
    issuer = document["issuer"]
    if isinstance(issuer, dict):
        _check_id(issuer.get("id"), "issuer.id")
        _check_names(issuer, "issuer")
    elif not is_url(issuer):
        raise _fail("issuer must be a URL or an object whose id is a URL", "issuer", repr(issuer))


def _check_validity_v2(document: dict[str, Any]) -> None:
    for member in ("issuanceDate", "expirationDate"):
        if member in document:
            raise _fail(f"{member} is VC 1.1: a VC 2.0 credential uses validFrom / validUntil", member)
    moments = {}
    for member in ("validFrom", "validUntil"):
        if member in document:
            moment = parse_date_time(document[member])
            if moment is None:
                raise _fail(f"{member} must be an XSD dateTimeStamp", member, repr(document[member]))
            moments[member] = moment
    if len(moments) == 2 and moments["validFrom"] > moments["validUntil"]:
        raise _fail("validUntil must not be before validFrom", "validUntil")


def _check_validity_v1(document: dict[str, Any]) -> None:
    for member in ("validFrom", "validUntil"):
        if member in document:
            raise _fail(f"{member} is VC 2.0: a VC 1.1 credential uses issuanceDate / expirationDate", member)
    if "issuanceDate" not in document:
        raise _fail("issuanceDate is required in a VC 1.1 credential", "issuanceDate")
    for member in ("issuanceDate", "expirationDate"):
        if member in document and parse_date_time(document[member], zone_required=False) is None:
            raise _fail(f"{member} must be an XSD dateTime", member, repr(document[member]))


def check_expands(document: dict[str, Any]) -> None:
    """Safe-mode JSON-LD expansion with the bundled contexts; its error names the field."""
    try:
        expand(document)
    except EduFedError as error:
        raise DataModelError(error.title, detail=error.detail, field=error.field or "@context") from error


def credential_version(document: dict[str, Any]) -> int:
    """2 for a VC 2.0 credential, 1 for a VC 1.1 one (by its first context)."""
    first = next(iter(as_list(document.get("@context"))), None)
    return 1 if first == CREDENTIALS_V1_CONTEXT else 2


def check_credential(document: Any, *, expand_terms: bool = True) -> dict[str, Any]:
    """``document`` when it follows the data model (VC 2.0, or VC 1.1 by its context); a DataModelError if not."""
    if not isinstance(document, dict):
        raise _fail("A credential must be a JSON object", "credential")
    version = credential_version(document)
    _check_contexts(document, CREDENTIALS_V1_CONTEXT if version == 1 else CREDENTIALS_V2_CONTEXT)
    _check_types(document.get("type"), "type", required="VerifiableCredential")
    if "id" in document:
        _check_id(document["id"], "id")
    _check_issuer(document)
    _check_subjects(document)
    _check_names(document, "")
    (_check_validity_v1 if version == 1 else _check_validity_v2)(document)
    _check_typed(document)
    _check_related(document)
    for index, proof in enumerate(as_list(document.get("proof"))):
        if not isinstance(proof, dict) or "type" not in proof:
            raise _fail("Each proof must be an object with a type", f"proof[{index}]")
    if expand_terms:
        check_expands(document)
    return document


def check_presentation(document: Any) -> dict[str, Any]:
    """``document`` when it is a VC 2.0 presentation (its credentials are checked each on its own)."""
    if not isinstance(document, dict):
        raise _fail("A presentation must be a JSON object", "verifiablePresentation")
    _check_contexts(document, CREDENTIALS_V2_CONTEXT)
    _check_types(document.get("type"), "type", required="VerifiablePresentation")
    if "id" in document:
        _check_id(document["id"], "id")
    if "holder" in document:
        holder = document["holder"]
        holder_id = holder.get("id") if isinstance(holder, dict) else holder
        if not is_url(holder_id):
            raise _fail("holder must be a URL or an object whose id is a URL", "holder", repr(holder))
    for index, item in enumerate(as_list(document.get("verifiableCredential"))):
        if not isinstance(item, dict):
            raise _fail("Each verifiableCredential must be an object", f"verifiableCredential[{index}]")
    _check_typed(document)
    presented = {k: v for k, v in document.items() if k != "verifiableCredential"}
    check_expands(presented)
    return document


def holder_id(presentation: dict[str, Any]) -> str | None:
    holder = presentation.get("holder")
    holder = holder.get("id") if isinstance(holder, dict) else holder
    return holder if isinstance(holder, str) else None


def subject_ids(credential: dict[str, Any]) -> Iterator[str]:
    for subject in as_list(credential.get("credentialSubject")):
        if isinstance(subject, dict) and isinstance(subject.get("id"), str):
            yield subject["id"]
