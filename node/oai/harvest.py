"""``edufed import --data DIR URL``: harvest an OAI-PMH repository (``oai_dc`` or IEEE LOM) into the catalog.

Harvest and cache, then search locally (the lesson of ARIADNE/GLOBE): every harvested item becomes a
``LearningResource`` published by this node through the importer's own path (draft, shape check, signature,
one write of the items that pass; every refused item is reported with its OAI identifier, and ``strict`` makes
it all or nothing), so a harvested record is indistinguishable from an imported one. Its id is derived
from the OAI identifier, so harvesting again updates the same records instead of adding copies. All requests go
through the guarded :class:`SafeClient`; pages, page size and the number of pages are bounded, and the XML
parser resolves no entity and fetches nothing.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from lxml import etree
from tqdm import tqdm

from node.catalog.importer import Rejection, Row, print_outcome, publish_rows, write_report
from node.config import NodeConfig
from node.errors import BadRequest
from node.ld.contexts import EDUFED_CONTEXT
from node.net.client import FetchError, FetchPolicy, SafeClient
from node.store.records import Store

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
PREFERRED_FORMATS = ("lom", "oai_dc")  # LOM is richer (location, structured keywords) when a provider has it
MAX_PAGES = 10_000
MAX_PAGE_BYTES = 16 * 1024 * 1024
MAX_RECORDS = 200_000
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_WEB_IRI = re.compile(r"^https?://[^\s<>\"{}|\\^`]+$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+$")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@dataclass
class Harvested:
    """What one harvest run found: bodies to publish, and deleted or empty items it skipped."""

    rows: list[Row] = field(default_factory=list)
    deleted: int = 0
    pages: int = 0


def local_id(oai_identifier: str) -> str:
    """A stable record id for an OAI item: the same item harvested again gets the same id (and a new version)."""
    return "oai-" + hashlib.sha256(oai_identifier.encode("utf-8")).hexdigest()[:40]


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [child for child in element if _local(child) == name]


def _text(element: etree._Element) -> str:
    return " ".join("".join(element.itertext()).split())


class _Body:
    """Collects a LearningResource body: text per language, single values, lists."""

    def __init__(self, identifier: str) -> None:
        self.body: dict[str, Any] = {"@context": EDUFED_CONTEXT, "type": "LearningResource",
                                     "id": local_id(identifier)}
        self.languages: list[str] = []
        self.names: list[tuple[str | None, str]] = []
        self.descriptions: list[tuple[str | None, str]] = []
        self.keywords: list[tuple[str | None, str]] = []
        if _URI.match(identifier) and len(identifier) <= 2048:
            self.body["sameAs"] = identifier

    def language(self, value: str) -> None:
        value = value.strip()
        if _LANGUAGE.match(value) and value not in self.languages:
            self.languages.append(value)

    def web(self, term: str, value: str) -> None:
        value = value.strip()
        if term not in self.body and _WEB_IRI.match(value):
            self.body[term] = value

    def finish(self) -> dict[str, Any]:
        default = self.languages[0] if len(self.languages) == 1 else "und"
        name: dict[str, str] = {}
        for lang, text in self.names:
            name.setdefault(_tag(lang, default), text)
        if name:
            self.body["name"] = name
        description: dict[str, str] = {}
        for lang, text in self.descriptions:
            key = _tag(lang, default)
            description[key] = f"{description[key]}\n\n{text}" if key in description else text
        if description:
            self.body["description"] = description
        keywords: dict[str, list[str]] = {}
        for lang, text in self.keywords:
            words = keywords.setdefault(_tag(lang, default), [])
            if text not in words:
                words.append(text)
        if keywords:
            self.body["keywords"] = keywords
        if self.languages:
            self.body["inLanguage"] = self.languages[0] if len(self.languages) == 1 else self.languages
        return self.body


def _tag(lang: str | None, default: str) -> str:
    return lang if lang and _LANGUAGE.match(lang) else default


def _lang(element: etree._Element) -> str | None:
    value = element.get("{http://www.w3.org/XML/1998/namespace}lang") or element.get("language")
    return value.strip() if value else None


def from_oai_dc(identifier: str, metadata: etree._Element) -> dict[str, Any]:
    """Simple Dublin Core → LearningResource (spec section 11.6)."""
    body = _Body(identifier)
    elements = [e for e in metadata.iter() if isinstance(e.tag, str)]
    for element in elements:
        text, name, lang = _text(element), _local(element), _lang(element)
        if not text:
            continue
        if name == "title":
            body.names.append((lang, text))
        elif name == "description":
            body.descriptions.append((lang, text))
        elif name == "subject":
            if _WEB_IRI.match(text):
                body.body.setdefault("about", []).append(text)
            else:
                body.keywords.append((lang, text))
        elif name == "language":
            body.language(text)
        elif name == "identifier":
            body.web("url", text)
        elif name == "rights":
            body.web("license", text)
        elif name == "type" and "learningResourceType" not in body.body:
            body.body["learningResourceType"] = text
    return body.finish()


def _lom_strings(element: etree._Element) -> list[tuple[str | None, str]]:
    """The ``<string language=…>`` values of a LOM LangString."""
    return [(_lang(s), _text(s)) for s in _children(element, "string") if _text(s)]


def from_lom(identifier: str, metadata: etree._Element) -> dict[str, Any]:
    """IEEE LOM (XML binding) → LearningResource: general title, description, keyword, language;
    technical location; rights; educational learningResourceType (spec section 11.6)."""
    body = _Body(identifier)
    lom = next((e for e in metadata.iter() if isinstance(e.tag, str) and _local(e) == "lom"), metadata)
    for general in _children(lom, "general"):
        for language in _children(general, "language"):
            body.language(_text(language))
        for title in _children(general, "title"):
            body.names.extend(_lom_strings(title))
        for description in _children(general, "description"):
            body.descriptions.extend(_lom_strings(description))
        for keyword in _children(general, "keyword"):
            body.keywords.extend(_lom_strings(keyword))
    for technical in _children(lom, "technical"):
        for location in _children(technical, "location"):
            body.web("url", _text(location))
    for rights in _children(lom, "rights"):
        for description in _children(rights, "description"):
            for _, text in _lom_strings(description):
                body.web("license", text)
    for educational in _children(lom, "educational"):
        for kind in _children(educational, "learningResourceType"):
            values = [_text(v) for v in _children(kind, "value") if _text(v)]
            if values and "learningResourceType" not in body.body:
                body.body["learningResourceType"] = values[0]
    return body.finish()


MAPPERS = {"oai_dc": from_oai_dc, "lom": from_lom}


def _parse(data: bytes, url: str) -> etree._Element:
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise BadRequest("The OAI-PMH answer is not well-formed XML", detail=f"{url}: {exc}", field="url") from None
    if root.tag != f"{{{OAI_NS}}}OAI-PMH":
        raise BadRequest("Not an OAI-PMH answer", detail=url, field="url")
    return root


class Harvester:
    """Talks OAI-PMH to one repository through the guarded client."""

    def __init__(self, client: SafeClient, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise BadRequest("An OAI-PMH base URL is an http(s) URL without query", detail=base_url, field="url")
        self.client = client
        self.base_url = base_url

    async def request(self, **arguments: str) -> etree._Element:
        """One verb; the answer's root, or BadRequest for an OAI error other than noRecordsMatch."""
        url = f"{self.base_url}?{urlencode(arguments)}"
        try:
            response = await self.client.request("GET", url, headers={"Accept": "text/xml, application/xml"})
        except FetchError as exc:
            raise BadRequest("The OAI-PMH repository could not be reached", detail=str(exc), field="url") from None
        if response.status != 200:
            raise BadRequest("The OAI-PMH repository answered an error", detail=f"{url}: HTTP {response.status}",
                             field="url")
        root = _parse(response.body, url)
        for error in root.iter(f"{{{OAI_NS}}}error"):
            if error.get("code") != "noRecordsMatch":
                raise BadRequest("The OAI-PMH repository refused the request",
                                 detail=f"{error.get('code')}: {_text(error)}", field="url")
        return root

    async def choose_format(self) -> str:
        root = await self.request(verb="ListMetadataFormats")
        offered = {_text(p) for p in root.iter(f"{{{OAI_NS}}}metadataPrefix")}
        for prefix in PREFERRED_FORMATS:
            if prefix in offered:
                return prefix
        raise BadRequest("The repository offers neither lom nor oai_dc", detail=", ".join(sorted(offered)),
                         field="url")

    async def harvest(self, prefix: str, *, progress: bool = False) -> Harvested:
        """Every record of ListRecords, page by page, following resumption tokens to the end."""
        found = Harvested()
        mapper = MAPPERS[prefix]
        arguments = {"verb": "ListRecords", "metadataPrefix": prefix}
        seen_tokens: set[str] = set()
        bar = tqdm(desc="harvesting", unit="rec", disable=not progress, file=sys.stderr)
        try:
            while True:
                if found.pages >= MAX_PAGES:
                    raise BadRequest("Too many pages", detail=f"more than {MAX_PAGES}", field="url")
                root = await self.request(**arguments)
                found.pages += 1
                for record in root.iter(f"{{{OAI_NS}}}record"):
                    self._take(record, mapper, found)
                    bar.update(1)
                if len(found.rows) + found.deleted > MAX_RECORDS:
                    raise BadRequest("Too many records for one run", detail=f"more than {MAX_RECORDS}", field="url")
                token = next((_text(t) for t in root.iter(f"{{{OAI_NS}}}resumptionToken")), "")
                if not token:
                    return found
                if token in seen_tokens:
                    raise BadRequest("The repository repeated a resumption token", detail=token, field="url")
                seen_tokens.add(token)
                arguments = {"verb": "ListRecords", "resumptionToken": token}
        finally:
            bar.close()

    @staticmethod
    def _take(record: etree._Element, mapper: Any, found: Harvested) -> None:
        header = record.find(f"{{{OAI_NS}}}header")
        identifier = _text(header.find(f"{{{OAI_NS}}}identifier")) if header is not None else ""
        if header is None or not identifier:
            found.rows.append(Row(f"record {len(found.rows) + found.deleted + 1} (no identifier)", {}))
            return
        metadata = record.find(f"{{{OAI_NS}}}metadata")
        if header.get("status") == "deleted" or metadata is None:
            found.deleted += 1
            return
        found.rows.append(Row(identifier, mapper(identifier, metadata)))


async def harvest_into(
    config: NodeConfig, store: Store, url: str, *, progress: bool = False, client: SafeClient | None = None,
    strict: bool = False,
) -> tuple[int, list[Rejection], Harvested]:
    """Harvest ``url`` and publish the items that pass (all or nothing when ``strict``); (records written,
    rejections with each item's OAI identifier, what was seen)."""
    own = client is None
    client = client or SafeClient(FetchPolicy(allow_private=config.private_networks_allowed, timeout_seconds=60.0,
                                              max_bytes=MAX_PAGE_BYTES))
    try:
        await client.start()
        harvester = Harvester(client, url)
        found = await harvester.harvest(await harvester.choose_format(), progress=progress)
    finally:
        if own:
            await client.close()
    rows = [row for row in found.rows if row.body]
    rejected = [Rejection(row.where, "identifier", "an OAI record needs a header identifier")
                for row in found.rows if not row.body]
    written, rejected = await publish_rows(config, store, rows, rejected, progress=progress, strict=strict)
    return written, rejected, found


async def run_harvest(config: NodeConfig, url: str, *, progress: bool, report_path: Path | None = None,
                      strict: bool = False) -> int:
    """The CLI's ``edufed import --data DIR URL``: a summary, the refused items, exit status 1 on refusal."""
    store = await Store.open(config.effective_database_url)
    try:
        written, rejected, found = await harvest_into(config, store, url, progress=progress, strict=strict)
    finally:
        await store.close()
    write_report(report_path, rejected)
    if not rejected:
        print(f"Harvested {written} record(s) from {url} in {found.pages} page(s); {found.deleted} deleted item(s) "
              "skipped.")
        return 0
    return print_outcome(url, written, rejected, unit="item", strict=strict)
