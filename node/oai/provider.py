"""OAI-PMH 2.0 data provider: the six verbs over every stored record, own and mirrored (spec chapter 11).

Why it exists: repository harvesters (aggregators, library portals, the ARIADNE/GLOBE lineage) speak OAI-PMH,
not ActivityPub. The provider answers from the database only; nothing here touches HTTP, so tests call it
directly. Every answer is built with lxml (so every value is escaped) and every request is bounded: arguments
have a maximum length, pages hold at most :data:`PAGE_SIZE` items and resumption tokens are stateless (any worker
can continue a harvest another one started), carrying the cursor, the filters and an expiry.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from lxml import etree
from tortoise.expressions import Q, Subquery

from node.catalog.indexing import texts
from node.config import NodeConfig
from node.ld.contexts import vocab_dir
from node.store.models import Record, RecordCategory, RecordIndex
from node.store.records import Store

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
OAI_SCHEMA = "http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"
OAI_DC_NS = "http://www.openarchives.org/OAI/2.0/oai_dc/"
OAI_DC_SCHEMA = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"
DC_NS = "http://purl.org/dc/elements/1.1/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
JSONLD_NS = "https://w3id.org/edufed/oai/jsonld"
JSONLD_SCHEMA_PATH = "/oai/jsonld.xsd"
ISCED_F = "https://w3id.org/edufed/schemes/isced-f/"

PAGE_SIZE = 100
TOKEN_LIFETIME = timedelta(hours=24)
MAX_ARGUMENT_LENGTH = 2048
MAX_ARGUMENTS = 8
GRANULARITY = "YYYY-MM-DDThh:mm:ssZ"
VERBS = ("Identify", "ListMetadataFormats", "ListSets", "ListIdentifiers", "ListRecords", "GetRecord")
# verb -> (required arguments, optional arguments); a resumptionToken is exclusive where it is allowed
ARGUMENTS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "Identify": (frozenset(), frozenset()),
    "ListMetadataFormats": (frozenset(), frozenset({"identifier"})),
    "ListSets": (frozenset(), frozenset({"resumptionToken"})),
    "ListIdentifiers": (frozenset({"metadataPrefix"}), frozenset({"from", "until", "set", "resumptionToken"})),
    "ListRecords": (frozenset({"metadataPrefix"}), frozenset({"from", "until", "set", "resumptionToken"})),
    "GetRecord": (frozenset({"identifier", "metadataPrefix"}), frozenset()),
}
FORMATS = ("oai_dc", "jsonld")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_SET_PART = re.compile(r"^[A-Za-z0-9\-_.!~*'()]+$")
_KEEP = re.compile(r"[A-Za-z0-9\-.]")
_XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class OaiError(Exception):
    """One OAI-PMH error condition: answered with HTTP 200 and ``<error code=…>``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# -- identifiers, sets and tokens ---------------------------------------------------------------------------


def encode_part(value: str) -> str:
    """A setSpec part for any text: letters, digits, ``-`` and ``.`` stay; every other UTF-8 byte is ``~XX``
    (like did:web's ``%3A``, with ``~`` because ``%`` is not allowed in a setSpec)."""
    return "".join(c if _KEEP.fullmatch(c) else "".join(f"~{b:02X}" for b in c.encode("utf-8")) for c in value)


def decode_part(part: str) -> str | None:
    """The inverse of :func:`encode_part`; None when ``part`` is not such an encoding."""
    out = bytearray()
    index = 0
    while index < len(part):
        char = part[index]
        if char == "~":
            try:
                out.append(int(part[index + 1 : index + 3], 16))
            except ValueError:
                return None
            if len(part[index + 1 : index + 3]) != 2:
                return None
            index += 3
        elif _KEEP.fullmatch(char):
            out.extend(char.encode())
            index += 1
        else:
            return None
    try:
        decoded = out.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return decoded if encode_part(decoded) == part else None


def origin_set(host: str) -> str:
    return "origin:" + encode_part(host)


def category_set(iri: str) -> str:
    """``category:isced-f:06:061`` for ISCED-F codes (the hierarchy of the codes), ``category:iri:{encoded}``
    for any other category IRI."""
    code = iri.removeprefix(ISCED_F)
    if iri.startswith(ISCED_F) and code.isdigit() and 2 <= len(code) <= 4:
        return "category:isced-f:" + ":".join(code[:n] for n in range(2, len(code) + 1))
    return "category:iri:" + encode_part(iri)


def set_filter(spec: str) -> Q | None:
    """The records of set ``spec`` and its subsets, as a query filter; None for a set that cannot exist."""
    parts = spec.split(":")
    if not all(_SET_PART.match(p) for p in parts):
        return None
    if parts[0] == "origin":
        if len(parts) == 1:
            return Q()
        host = decode_part(parts[1]) if len(parts) == 2 else None
        return Q(origin=host) if host else None
    if parts[0] != "category":
        return None
    if len(parts) == 1:
        condition = Q()
    elif parts[1] == "isced-f" and len(parts) <= 5:
        codes = parts[2:]
        if not all(c.isdigit() and len(c) == n + 2 and c.startswith(codes[n - 1] if n else "")
                   for n, c in enumerate(codes)):
            return None
        condition = Q(category__startswith=ISCED_F + (codes[-1] if codes else ""))
    elif parts[1] == "iri" and len(parts) <= 3:
        if len(parts) == 2:
            condition = ~Q(category__startswith=ISCED_F)
        else:
            iri = decode_part(parts[2])
            if iri is None:
                return None
            condition = Q(category=iri)
    else:
        return None
    return Q(id__in=Subquery(RecordCategory.filter(condition).values("record_id")))


@dataclass(frozen=True)
class Query:
    """What a ListIdentifiers / ListRecords harvest asks for, and how far it has come."""

    prefix: str
    start: datetime | None
    end: datetime | None  # exclusive
    set_spec: str | None
    after_id: int = 0
    cursor: int = 0


def encode_token(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, now: datetime) -> dict[str, Any]:
    """The token's payload; badResumptionToken when it is malformed or expired."""
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise OaiError("badResumptionToken", "The resumption token is not one this repository issued") from None
    if not isinstance(payload, dict) or payload.get("v") != 1 or not isinstance(payload.get("e"), int):
        raise OaiError("badResumptionToken", "The resumption token is not one this repository issued")
    if payload["e"] < int(now.timestamp()):
        raise OaiError("badResumptionToken", "The resumption token has expired; start the harvest again")
    return payload


def _int(payload: dict[str, Any], key: str) -> int:
    value = payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise OaiError("badResumptionToken", "The resumption token is not one this repository issued")
    return value


def _opt_time(payload: dict[str, Any], key: str) -> datetime | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise OaiError("badResumptionToken", "The resumption token is not one this repository issued")
    return datetime.fromtimestamp(value, UTC)


def query_from_token(token: str, verb: str, now: datetime) -> Query:
    payload = decode_token(token, now)
    if payload.get("k") != verb or payload.get("p") not in FORMATS:
        raise OaiError("badResumptionToken", "The resumption token belongs to another request")
    set_spec = payload.get("s")
    if set_spec is not None and (not isinstance(set_spec, str) or set_filter(set_spec) is None):
        raise OaiError("badResumptionToken", "The resumption token is not one this repository issued")
    return Query(str(payload["p"]), _opt_time(payload, "f"), _opt_time(payload, "u"), set_spec,
                 _int(payload, "a"), _int(payload, "c"))


def parse_datestamp(value: str, *, end: bool) -> tuple[datetime, str]:
    """A ``from``/``until`` value as a UTC instant (``until`` made exclusive) and its granularity."""
    try:
        if _SECOND.match(value):
            moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            return moment + (timedelta(seconds=1) if end else timedelta()), "second"
        if _DAY.match(value):
            moment = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
            return moment + (timedelta(days=1) if end else timedelta()), "day"
    except ValueError:
        pass
    raise OaiError("badArgument", f"{'until' if end else 'from'} must be YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ")


def datestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_arguments(pairs: Sequence[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """(verb, arguments) of a request, or the badVerb / badArgument error the spec asks for."""
    if len(pairs) > MAX_ARGUMENTS:
        raise OaiError("badArgument", f"At most {MAX_ARGUMENTS} arguments")
    verbs = [v for k, v in pairs if k == "verb"]
    if len(verbs) != 1:
        raise OaiError("badVerb", "Exactly one verb argument is required" if verbs else "The verb argument is missing")
    verb = verbs[0]
    if verb not in VERBS:
        raise OaiError("badVerb", "Illegal OAI verb")
    arguments: dict[str, str] = {}
    for key, value in pairs:
        if key == "verb":
            continue
        if key in arguments:
            raise OaiError("badArgument", f"Repeated argument {key}")
        if len(value) > MAX_ARGUMENT_LENGTH:
            raise OaiError("badArgument", f"Argument {key} is longer than {MAX_ARGUMENT_LENGTH} characters")
        arguments[key] = value
    required, optional = ARGUMENTS[verb]
    unknown = set(arguments) - required - optional
    if unknown:
        raise OaiError("badArgument", f"Illegal argument for {verb}: {', '.join(sorted(unknown))}")
    if "resumptionToken" in arguments:
        if len(arguments) > 1:
            raise OaiError("badArgument", "resumptionToken is an exclusive argument")
        return verb, arguments
    missing = required - set(arguments)
    if missing:
        raise OaiError("badArgument", f"Missing argument for {verb}: {', '.join(sorted(missing))}")
    return verb, arguments


# -- metadata -----------------------------------------------------------------------------------------------


def xml_text(value: str) -> str:
    """Text XML can carry: characters XML 1.0 forbids become U+FFFD (they cannot be escaped in XML 1.0)."""
    return _XML_INVALID.sub("\ufffd", value)


def json_for_xml(document_json: str) -> str:
    """The signed JSON as XML text. JSON can hold characters XML cannot (e.g. U+FFFE, only inside strings):
    those become ``\\uXXXX`` escapes, which parse back to the same JSON value, so the proof still verifies."""
    return _XML_INVALID.sub(lambda m: "".join(f"\\u{u:04x}" for u in _utf16(m.group())), document_json)


def _utf16(char: str) -> list[int]:
    data = char.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


@cache
def isced_labels() -> dict[str, str]:
    """English labels of the bundled ISCED-F 2013 fields, by concept IRI."""
    from rdflib import Graph
    from rdflib.namespace import SKOS

    graph = Graph().parse(vocab_dir() / "v1" / "schemes" / "isced-f-2013.ttl", format="turtle")
    return {str(s): str(o) for s, o in graph.subject_objects(SKOS.prefLabel) if str(s).startswith(ISCED_F)}


def _about(document: dict[str, Any]) -> list[str]:
    about = document.get("about")
    items = about if isinstance(about, list) else [about]
    found = [i if isinstance(i, str) else i.get("id") if isinstance(i, dict) else None for i in items]
    return list(dict.fromkeys(i for i in found if isinstance(i, str)))


def _by_language(value: Any) -> list[tuple[str | None, str]]:
    """(language, text) pairs of a plain value, list or language map."""
    if isinstance(value, dict) and "@value" not in value:
        return [(lang if lang != "@none" else None, text) for lang in sorted(value) for text in texts(value[lang])]
    return [(None, text) for text in texts(value)]


def _dc(parent: etree._Element, name: str, text: str, lang: str | None = None) -> None:
    element = etree.SubElement(parent, f"{{{DC_NS}}}{name}")
    element.text = xml_text(text)
    if lang:
        element.set(XML_LANG, xml_text(lang))


def oai_dc(document: dict[str, Any], origin_base: str, labels: dict[str, str]) -> etree._Element:
    """Simple Dublin Core of a record (mapping in spec section 11.3)."""
    root = etree.Element(f"{{{OAI_DC_NS}}}dc", nsmap={"oai_dc": OAI_DC_NS, "dc": DC_NS, "xsi": XSI_NS})
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{OAI_DC_NS} {OAI_DC_SCHEMA}")
    for lang, text in _by_language(document.get("name") or document.get("prefLabel")):
        _dc(root, "title", text, lang)
    provider = document.get("provider")
    for item in provider if isinstance(provider, list) else [provider]:
        if isinstance(item, dict):
            for lang, text in _by_language(item.get("name")):
                _dc(root, "creator", text, lang)
    for lang, text in _by_language(document.get("keywords")):
        _dc(root, "subject", text, lang)
    for iri in _about(document):
        if iri in labels:
            _dc(root, "subject", labels[iri], "en" if iri.startswith(ISCED_F) else None)
        _dc(root, "subject", iri)
    for lang, text in _by_language(document.get("description") or document.get("definition")):
        _dc(root, "description", text, lang)
    _dc(root, "publisher", origin_base)
    if isinstance(document.get("dateModified"), str):
        _dc(root, "date", document["dateModified"])
    _dc(root, "type", str(document.get("type")))
    identifier = document.get("id")
    if isinstance(identifier, str):
        _dc(root, "identifier", identifier)
    if isinstance(document.get("url"), str):
        _dc(root, "identifier", document["url"])
    for language in texts(document.get("inLanguage")):
        _dc(root, "language", language)
    if isinstance(document.get("license"), str):
        _dc(root, "rights", document["license"])
    return root


def jsonld(document_json: str) -> etree._Element:
    """The signed record, byte for byte as stored, as the text of one element (spec section 11.3)."""
    root = etree.Element(f"{{{JSONLD_NS}}}record", nsmap={None: JSONLD_NS})
    root.set("contentType", "application/ld+json")
    root.text = json_for_xml(document_json)
    return root


JSONLD_XSD = f"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{JSONLD_NS}"
           elementFormDefault="qualified" attributeFormDefault="unqualified">
  <xs:annotation><xs:documentation>An EduFed record: the signed JSON-LD document as text, exactly as its origin
  signed it (characters XML cannot hold are written as JSON \\u escapes).</xs:documentation></xs:annotation>
  <xs:element name="record">
    <xs:complexType>
      <xs:simpleContent>
        <xs:extension base="xs:string">
          <xs:attribute name="contentType" type="xs:string" fixed="application/ld+json"/>
        </xs:extension>
      </xs:simpleContent>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""


# -- the provider -------------------------------------------------------------------------------------------


class Provider:
    """Answers OAI-PMH requests for one node from its store."""

    def __init__(self, config: NodeConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.base_url = f"{config.base_url}/oai"
        self.namespace = urlsplit(config.base_url).hostname or "localhost"

    # identifiers

    def oai_identifier(self, iri: str) -> str:
        return f"oai:{self.namespace}:{iri}"

    def record_iri(self, identifier: str) -> str | None:
        prefix = f"oai:{self.namespace}:"
        return identifier[len(prefix) :] if identifier.startswith(prefix) else None

    # the entry point

    async def respond(self, pairs: Sequence[tuple[str, str]], now: datetime | None = None) -> bytes:
        """The complete XML answer to one request (errors included: OAI-PMH answers them with HTTP 200)."""
        now = now or datetime.now(UTC)
        root, request = self._envelope(now)
        try:
            verb, arguments = check_arguments(pairs)
        except OaiError as error:  # badVerb / badArgument: the request element carries no attributes
            self._error(root, error)
            return self._serialize(root)
        request.set("verb", verb)
        for key, value in arguments.items():
            request.set(key, xml_text(value))
        try:
            handler = getattr(self, "_" + verb)
            element = await handler(arguments, now)
            root.append(element)
        except OaiError as error:
            if error.code in ("badVerb", "badArgument"):
                request.attrib.clear()
            self._error(root, error)
        return self._serialize(root)

    def refuse(self, error: OaiError, now: datetime | None = None) -> bytes:
        """An error answer to a request that could not even be read (e.g. a POST body that is not a form)."""
        root, _ = self._envelope(now or datetime.now(UTC))
        self._error(root, error)
        return self._serialize(root)

    def _envelope(self, now: datetime) -> tuple[etree._Element, etree._Element]:
        root = etree.Element(f"{{{OAI_NS}}}OAI-PMH", nsmap={None: OAI_NS, "xsi": XSI_NS})
        root.set(f"{{{XSI_NS}}}schemaLocation", f"{OAI_NS} {OAI_SCHEMA}")
        etree.SubElement(root, f"{{{OAI_NS}}}responseDate").text = datestamp(now)
        request = etree.SubElement(root, f"{{{OAI_NS}}}request")
        request.text = self.base_url
        return root, request

    @staticmethod
    def _error(root: etree._Element, error: OaiError) -> None:
        element = etree.SubElement(root, f"{{{OAI_NS}}}error", code=error.code)
        element.text = xml_text(error.message)

    @staticmethod
    def _serialize(root: etree._Element) -> bytes:
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))

    # verbs

    async def _Identify(self, arguments: dict[str, str], now: datetime) -> etree._Element:
        element = etree.Element(f"{{{OAI_NS}}}Identify")
        with self.store.bound():
            earliest = await Record.all().order_by("date_modified").first()
        values = [
            ("repositoryName", self.config.name),
            ("baseURL", self.base_url),
            ("protocolVersion", "2.0"),
            ("adminEmail", f"admin@{self.namespace}"),
            ("earliestDatestamp", datestamp(earliest.date_modified) if earliest else "1970-01-01T00:00:00Z"),
            # Tombstones kept for ever (retention 0, the default) make deletions persistent; a retention makes
            # them transient: after it, a harvester learns of a deletion only by the record's absence.
            ("deletedRecord", "persistent" if self.config.federation.tombstone_retention_days == 0 else "transient"),
            ("granularity", GRANULARITY),
        ]
        for name, value in values:
            etree.SubElement(element, f"{{{OAI_NS}}}{name}").text = xml_text(value)
        return element

    async def _ListMetadataFormats(self, arguments: dict[str, str], now: datetime) -> etree._Element:
        if "identifier" in arguments:
            record = await self._record(arguments["identifier"])
            if record.deleted:
                raise OaiError("noMetadataFormats", "The item is deleted: no metadata is disseminated for it")
        element = etree.Element(f"{{{OAI_NS}}}ListMetadataFormats")
        formats = ((
            "oai_dc", OAI_DC_SCHEMA, OAI_DC_NS), ("jsonld", self.config.base_url + JSONLD_SCHEMA_PATH, JSONLD_NS))
        for prefix, schema, namespace in formats:
            item = etree.SubElement(element, f"{{{OAI_NS}}}metadataFormat")
            etree.SubElement(item, f"{{{OAI_NS}}}metadataPrefix").text = prefix
            etree.SubElement(item, f"{{{OAI_NS}}}schema").text = schema
            etree.SubElement(item, f"{{{OAI_NS}}}metadataNamespace").text = namespace
        return element

    async def _ListSets(self, arguments: dict[str, str], now: datetime) -> etree._Element:
        offset = 0
        if "resumptionToken" in arguments:
            payload = decode_token(arguments["resumptionToken"], now)
            if payload.get("k") != "ListSets":
                raise OaiError("badResumptionToken", "The resumption token belongs to another request")
            offset = _int(payload, "o")
        sets = await self.sets()
        if not sets:
            raise OaiError("noSetHierarchy", "This repository holds no records yet, so it has no sets")
        if offset >= len(sets):
            raise OaiError("badResumptionToken", "The resumption token points past the list of sets")
        element = etree.Element(f"{{{OAI_NS}}}ListSets")
        for spec, name in sets[offset : offset + PAGE_SIZE]:
            item = etree.SubElement(element, f"{{{OAI_NS}}}set")
            etree.SubElement(item, f"{{{OAI_NS}}}setSpec").text = spec
            etree.SubElement(item, f"{{{OAI_NS}}}setName").text = xml_text(name)
        following = offset + PAGE_SIZE
        if following < len(sets) or offset:
            token = encode_token({"v": 1, "k": "ListSets", "o": following, "e": self._expiry(now)})
            self._token(element, token if following < len(sets) else None, len(sets), offset, now)
        return element

    async def _ListIdentifiers(self, arguments: dict[str, str], now: datetime) -> etree._Element:
        return await self._list("ListIdentifiers", arguments, now)

    async def _ListRecords(self, arguments: dict[str, str], now: datetime) -> etree._Element:
        return await self._list("ListRecords", arguments, now)

    async def _GetRecord(self, arguments: dict[str, str], now: datetime) -> etree._Element:
        prefix = arguments["metadataPrefix"]
        record = await self._record(arguments["identifier"])
        if prefix not in FORMATS:
            raise OaiError("cannotDisseminateFormat", f"Unknown metadataPrefix; this repository offers {FORMATS}")
        element = etree.Element(f"{{{OAI_NS}}}GetRecord")
        element.append(self._record_element(record, prefix, await self._labels([record])))
        return element

    # listing

    def _query(self, arguments: dict[str, str], verb: str, now: datetime) -> Query:
        if "resumptionToken" in arguments:
            return query_from_token(arguments["resumptionToken"], verb, now)
        start = end = None
        granularities = set()
        if "from" in arguments:
            start, granularity = parse_datestamp(arguments["from"], end=False)
            granularities.add(granularity)
        if "until" in arguments:
            end, granularity = parse_datestamp(arguments["until"], end=True)
            granularities.add(granularity)
        if len(granularities) > 1:
            raise OaiError("badArgument", "from and until must have the same granularity")
        if start is not None and end is not None and start >= end:
            raise OaiError("badArgument", "from is later than until")
        prefix = arguments["metadataPrefix"]
        if prefix not in FORMATS:
            raise OaiError("cannotDisseminateFormat", f"Unknown metadataPrefix; this repository offers {FORMATS}")
        return Query(prefix, start, end, arguments.get("set"))

    def _filtered(self, query: Query) -> Any:
        records = Record.all()
        if query.start is not None:
            records = records.filter(date_modified__gte=query.start)
        if query.end is not None:
            records = records.filter(date_modified__lt=query.end)
        if query.set_spec is not None:
            condition = set_filter(query.set_spec)
            if condition is None:
                raise OaiError("noRecordsMatch", "No such set in this repository")
            records = records.filter(condition)
        return records

    async def _list(self, verb: str, arguments: dict[str, str], now: datetime) -> etree._Element:
        query = self._query(arguments, verb, now)
        with self.store.bound():
            records = self._filtered(query)
            page = await records.filter(id__gt=query.after_id).order_by("id").limit(PAGE_SIZE + 1)
            total = await records.count()
        if not page:
            if query.cursor:
                raise OaiError("badResumptionToken", "Nothing is left after this resumption token")
            raise OaiError("noRecordsMatch", "No record matches the request")
        more = len(page) > PAGE_SIZE
        page = page[:PAGE_SIZE]
        element = etree.Element(f"{{{OAI_NS}}}{verb}")
        labels = await self._labels(page) if verb == "ListRecords" and query.prefix == "oai_dc" else {}
        for row in page:
            if verb == "ListRecords":
                element.append(self._record_element(row, query.prefix, labels))
            else:
                element.append(self._header(row))
        if more or query.cursor:
            token = None
            if more:
                token = encode_token({
                    "v": 1, "k": verb, "p": query.prefix, "s": query.set_spec, "a": page[-1].id,
                    "c": query.cursor + len(page), "e": self._expiry(now),
                    "f": int(query.start.timestamp()) if query.start else None,
                    "u": int(query.end.timestamp()) if query.end else None,
                })
            self._token(element, token, max(total, query.cursor + len(page)), query.cursor, now)
        return element

    @staticmethod
    def _expiry(now: datetime) -> int:
        return int((now + TOKEN_LIFETIME).timestamp())

    @staticmethod
    def _token(element: etree._Element, token: str | None, size: int, cursor: int, now: datetime) -> None:
        """The resumptionToken element; empty on the last page of a list that took several."""
        item = etree.SubElement(element, f"{{{OAI_NS}}}resumptionToken", completeListSize=str(size),
                                cursor=str(cursor))
        if token is not None:
            item.set("expirationDate", datestamp(now + TOKEN_LIFETIME))
            item.text = token

    # records

    async def _record(self, identifier: str) -> Record:
        iri = self.record_iri(identifier)
        row = None
        if iri is not None:
            with self.store.bound():
                row = await Record.get_or_none(iri=iri)
        if row is None:
            raise OaiError("idDoesNotExist", "No item with this identifier in this repository")
        return row

    def _header(self, row: Record) -> etree._Element:
        header = etree.Element(f"{{{OAI_NS}}}header")
        if row.deleted:
            header.set("status", "deleted")
        etree.SubElement(header, f"{{{OAI_NS}}}identifier").text = xml_text(self.oai_identifier(row.iri))
        etree.SubElement(header, f"{{{OAI_NS}}}datestamp").text = datestamp(row.date_modified)
        specs = [origin_set(row.origin)]
        if not row.deleted:
            specs.extend(category_set(iri) for iri in _about(json.loads(row.document)))
        for spec in dict.fromkeys(specs):
            etree.SubElement(header, f"{{{OAI_NS}}}setSpec").text = spec
        return header

    def _record_element(self, row: Record, prefix: str, labels: dict[str, str]) -> etree._Element:
        element = etree.Element(f"{{{OAI_NS}}}record")
        element.append(self._header(row))
        if not row.deleted:
            metadata = etree.SubElement(element, f"{{{OAI_NS}}}metadata")
            if prefix == "jsonld":
                metadata.append(jsonld(row.document))
            else:
                origin = f"{urlsplit(row.iri).scheme}://{row.origin}"
                metadata.append(oai_dc(json.loads(row.document), origin, labels))
        return element

    async def _labels(self, rows: Iterable[Record]) -> dict[str, str]:
        """Labels of the categories of ``rows``: ISCED-F from the bundled scheme, others from stored Concepts."""
        iris = {iri for row in rows if not row.deleted for iri in _about(json.loads(row.document))}
        labels = {iri: label for iri, label in isced_labels().items() if iri in iris}
        return {**(await self._concept_names(iris - set(labels))), **labels}

    async def _concept_names(self, iris: set[str]) -> dict[str, str]:
        if not iris:
            return {}
        with self.store.bound():
            rows = await RecordIndex.filter(record__iri__in=list(iris)[:1000], type="Concept").values_list(
                "record__iri", "name")
        return {str(iri): str(name) for iri, name in rows if name}

    async def sets(self) -> list[tuple[str, str]]:
        """Every set (setSpec, setName) in setSpec order; empty when the repository holds nothing."""
        with self.store.bound():
            origins = await Record.all().distinct().values_list("origin", flat=True)
            categories = await RecordCategory.all().distinct().values_list("category", flat=True)
        own = urlsplit(self.config.base_url).netloc
        found: dict[str, str] = {}
        if origins:
            found["origin"] = "Records by origin node"
        for host in origins:
            found[origin_set(str(host))] = f"{self.config.name} ({host})" if host == own else f"Records of {host}"
        isced = isced_labels()
        names = await self._concept_names({str(c) for c in categories if not str(c).startswith(ISCED_F)})
        if categories:
            found["category"] = "Records by category"
        for iri in map(str, categories):
            spec = category_set(iri)
            if spec.startswith("category:isced-f:"):
                found["category:isced-f"] = "ISCED-F 2013 fields of education and training"
                codes = spec.split(":")[2:]
                for depth, code in enumerate(codes, start=1):
                    found[":".join(["category", "isced-f", *codes[:depth]])] = (
                        f"{code} {isced.get(ISCED_F + code, '')}".strip())
            else:
                found["category:iri"] = "Other categories"
                found[spec] = names.get(iri, iri)
        return sorted(found.items())
