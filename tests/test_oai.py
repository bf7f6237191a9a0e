"""OAI-PMH 2.0 provider at ``/oai`` (spec chapter 11): every verb, every error code, paging with resumption
tokens, from/until, sets, deleted records, escaping, and an unmodified harvester library (sickle) taking every
record of a running node page by page."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from sickle import Sickle

from node.catalog.importer import import_file
from node.oai.provider import (
    PAGE_SIZE,
    category_set,
    decode_part,
    encode_part,
    encode_token,
    json_for_xml,
    set_filter,
)
from node.store.models import Record
from node.trust.did import build_did_document, did_web_from_base_url
from node.trust.keyring import KeyRing
from node.trust.proofs import verify
from tests.conftest import MakeDatabaseUrl
from tests.harness import RunningNode, running_node

NS = {"o": "http://www.openarchives.org/OAI/2.0/", "dc": "http://purl.org/dc/elements/1.1/",
      "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/", "j": "https://w3id.org/edufed/oai/jsonld"}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
HEADER = "type,id,name@en,name@fi,description@en,keywords@en,about,inLanguage,license\n"


def catalog_csv(path: Path, count: int) -> Path:
    """``count`` LearningResources: every third in ISCED-F 061 (under 06), the others in 06 or 09."""
    lines = [HEADER]
    for n in range(count):
        about = "061" if n % 3 == 0 else ("06" if n % 3 == 1 else "09")
        lines.append(f'LearningResource,r{n:03d},"Resource {n} <&> ""x""",Aineisto {n},"About {n}",'
                     f"one;two,{about},en,https://creativecommons.org/licenses/by/4.0/\n")
    path.write_text("".join(lines), "utf-8")
    return path


async def seed(node: RunningNode, tmp_path: Path, count: int) -> None:
    written, rejected = await import_file(node.config, node.services.store, catalog_csv(tmp_path / "c.csv", count))
    assert rejected == [] and written == count


@pytest.fixture
async def node(tmp_path: Path, database_url: str) -> AsyncIterator[RunningNode]:
    async with running_node(tmp_path / "node", database_url, name="Library & <Learning> \"node\"") as running:
        yield running


async def oai(node: RunningNode, **params: str) -> etree._Element:
    async with node.http.get(f"{node.base_url}/oai", params=params) as response:
        assert response.status == 200
        assert response.content_type == "text/xml"
        return etree.fromstring(await response.read())  # well-formed, or this raises


def error_code(root: etree._Element) -> str | None:
    error = root.find("o:error", NS)
    return None if error is None else error.get("code")


def identifiers(root: etree._Element) -> list[str]:
    return [e.text or "" for e in root.iterfind(".//o:header/o:identifier", NS)]


def token_of(root: etree._Element) -> etree._Element | None:
    return root.find(".//o:resumptionToken", NS)


def oai_id(node: RunningNode, local: str) -> str:
    return f"oai:127.0.0.1:{node.config.records_base}{local}"


async def test_identify_escapes_and_declares(node: RunningNode) -> None:
    root = await oai(node, verb="Identify")
    assert root.tag == "{http://www.openarchives.org/OAI/2.0/}OAI-PMH"
    assert root.find("o:request", NS).get("verb") == "Identify"  # type: ignore[union-attr]
    assert root.findtext("o:request", namespaces=NS) == f"{node.base_url}/oai"
    identify = root.find("o:Identify", NS)
    assert identify is not None
    assert identify.findtext("o:repositoryName", namespaces=NS) == 'Library & <Learning> "node"'
    assert identify.findtext("o:baseURL", namespaces=NS) == f"{node.base_url}/oai"
    assert identify.findtext("o:protocolVersion", namespaces=NS) == "2.0"
    assert identify.findtext("o:granularity", namespaces=NS) == "YYYY-MM-DDThh:mm:ssZ"
    assert identify.findtext("o:deletedRecord", namespaces=NS) == "persistent"
    assert identify.findtext("o:adminEmail", namespaces=NS) == "admin@127.0.0.1"
    assert identify.findtext("o:earliestDatestamp", namespaces=NS) == "1970-01-01T00:00:00Z"  # empty repository


async def test_metadata_formats_and_get_record(node: RunningNode, tmp_path: Path) -> None:
    await seed(node, tmp_path, 6)
    root = await oai(node, verb="ListMetadataFormats")
    assert [e.text for e in root.iterfind(".//o:metadataPrefix", NS)] == ["oai_dc", "jsonld"]
    root = await oai(node, verb="ListMetadataFormats", identifier=oai_id(node, "r000"))
    assert len(root.findall(".//o:metadataFormat", NS)) == 2
    async with node.http.get(f"{node.base_url}/oai/jsonld.xsd") as response:
        assert response.status == 200 and b"targetNamespace" in await response.read()

    root = await oai(node, verb="GetRecord", identifier=oai_id(node, "r000"), metadataPrefix="oai_dc")
    dc = root.find(".//oai_dc:dc", NS)
    assert dc is not None
    titles = {e.get(XML_LANG): e.text for e in dc.iterfind("dc:title", NS)}
    assert titles == {"en": 'Resource 0 <&> "x"', "fi": "Aineisto 0"}
    subjects = [e.text for e in dc.iterfind("dc:subject", NS)]
    assert {"one", "two", "https://w3id.org/edufed/schemes/isced-f/061"} <= set(subjects)
    assert any(s and s.startswith("Information and Communication") for s in subjects)  # ISCED-F label
    assert dc.findtext("dc:rights", namespaces=NS) == "https://creativecommons.org/licenses/by/4.0/"
    assert dc.findtext("dc:identifier", namespaces=NS) == node.config.records_base + "r000"
    assert dc.findtext("dc:publisher", namespaces=NS) == node.base_url
    assert dc.findtext("dc:language", namespaces=NS) == "en"
    assert dc.findtext("dc:type", namespaces=NS) == "LearningResource"
    header = root.find(".//o:header", NS)
    assert header is not None and header.get("status") is None
    assert [e.text for e in header.iterfind("o:setSpec", NS)] == [
        f"origin:127.0.0.1~3A{node.config.port}", "category:isced-f:06:061"]

    root = await oai(node, verb="GetRecord", identifier=oai_id(node, "r000"), metadataPrefix="jsonld")
    element = root.find(".//j:record", NS)
    assert element is not None and element.get("contentType") == "application/ld+json"
    stored = await node.services.store.get_local("r000")
    assert stored is not None and element.text == stored.document_json  # exactly as signed
    did_document = build_did_document(did_web_from_base_url(node.base_url), KeyRing(node.config.keys_dir).entries())
    assert verify(json.loads(element.text or ""), lambda _: did_document).verified


async def test_paging_250_records_with_resumption_tokens(node: RunningNode, tmp_path: Path) -> None:
    await seed(node, tmp_path, 250)
    expected = {oai_id(node, f"r{n:03d}") for n in range(250)}
    for verb, prefix in (("ListIdentifiers", "oai_dc"), ("ListRecords", "oai_dc"), ("ListRecords", "jsonld")):
        seen: list[str] = []
        cursors: list[str | None] = []
        root = await oai(node, verb=verb, metadataPrefix=prefix)
        while True:
            assert error_code(root) is None
            page = identifiers(root)
            assert len(page) <= PAGE_SIZE
            seen.extend(page)
            if verb == "ListRecords":
                assert len(root.findall(".//o:metadata", NS)) == len(page)
            token = token_of(root)
            assert token is not None and token.get("completeListSize") == "250"
            cursors.append(token.get("cursor"))
            if not token.text:
                break
            assert token.get("expirationDate")
            root = await oai(node, verb=verb, resumptionToken=token.text)
        assert cursors == ["0", "100", "200"]
        assert len(seen) == len(set(seen)) == 250 and set(seen) == expected  # no duplicate, no gap


async def test_paging_survives_changes_during_a_harvest(node: RunningNode, tmp_path: Path) -> None:
    """A record updated between pages keeps its place (paging is by storage order, not by datestamp)."""
    await seed(node, tmp_path, 120)
    first = await oai(node, verb="ListIdentifiers", metadataPrefix="oai_dc")
    await seed(node, tmp_path, 120)  # every record gets version 2 and a new datestamp
    token = token_of(first)
    assert token is not None and token.text
    second = await oai(node, verb="ListIdentifiers", resumptionToken=token.text)
    assert len(set(identifiers(first)) | set(identifiers(second))) == 120


async def test_from_until_on_datestamps(node: RunningNode, tmp_path: Path) -> None:
    await seed(node, tmp_path, 30)
    store = node.services.store
    with store.bound():
        await Record.filter(local_id__in=[f"r{n:03d}" for n in range(10)]).update(
            date_modified=datetime(2020, 1, 1, tzinfo=UTC))
        await Record.filter(local_id__in=[f"r{n:03d}" for n in range(10, 20)]).update(
            date_modified=datetime(2021, 6, 15, 12, 0, 0, tzinfo=UTC))

    async def count(**params: str) -> int:
        root = await oai(node, verb="ListIdentifiers", metadataPrefix="oai_dc", **params)
        return 0 if error_code(root) == "noRecordsMatch" else len(identifiers(root))

    assert await count(until="2020-01-01") == 10
    assert await count(until="2019-12-31T23:59:59Z") == 0
    assert await count(**{"from": "2021-01-01", "until": "2021-12-31"}) == 10
    assert await count(**{"from": "2021-06-15T12:00:00Z", "until": "2021-06-15T12:00:00Z"}) == 10  # inclusive
    assert await count(**{"from": "2021-06-15T12:00:01Z"}) == 10
    assert await count(**{"from": "2020-01-01"}) == 30
    root = await oai(node, verb="Identify")
    assert root.findtext(".//o:earliestDatestamp", namespaces=NS) == "2020-01-01T00:00:00Z"
    root = await oai(node, verb="GetRecord", identifier=oai_id(node, "r010"), metadataPrefix="oai_dc")
    assert root.findtext(".//o:datestamp", namespaces=NS) == "2021-06-15T12:00:00Z"
    for bad in ({"from": "2021-01-01", "until": "2021-12-31T00:00:00Z"}, {"from": "2022-01-01", "until": "2021-01-01"},
                {"from": "2021-13-01"}, {"until": "2021-01-01T00:00:00"}, {"from": "yesterday"}):
        assert error_code(await oai(node, verb="ListRecords", metadataPrefix="oai_dc", **bad)) == "badArgument"


async def test_sets_and_selective_harvesting(node: RunningNode, tmp_path: Path) -> None:
    await seed(node, tmp_path, 9)
    root = await oai(node, verb="ListSets")
    sets = {e.findtext("o:setSpec", namespaces=NS): e.findtext("o:setName", namespaces=NS)
            for e in root.iterfind(".//o:set", NS)}
    origin = f"origin:127.0.0.1~3A{node.config.port}"
    assert set(sets) == {"origin", origin, "category", "category:isced-f", "category:isced-f:06",
                         "category:isced-f:06:061", "category:isced-f:09"}
    assert sets["category:isced-f:06"] == "06 Information and Communication Technologies (ICTs)"
    assert node.config.name in (sets[origin] or "")

    async def members(spec: str) -> set[str]:
        found = await oai(node, verb="ListIdentifiers", metadataPrefix="oai_dc", set=spec)
        return set() if error_code(found) == "noRecordsMatch" else set(identifiers(found))

    everything = {oai_id(node, f"r{n:03d}") for n in range(9)}
    assert await members(origin) == await members("origin") == await members("category") == everything
    assert await members("category:isced-f:06:061") == {oai_id(node, f"r{n:03d}") for n in (0, 3, 6)}
    assert await members("category:isced-f:06") == {oai_id(node, f"r{n:03d}") for n in (0, 1, 3, 4, 6, 7)}
    assert await members("category:isced-f:09") == {oai_id(node, f"r{n:03d}") for n in (2, 5, 8)}
    for unknown in ("origin:elsewhere.example", "category:isced-f:07", "category:iri", "nonsense", "origin:a:b",
                    "category:isced-f:07:061", "origin:~ZZ", "bad set!"):
        assert await members(unknown) == set(), unknown


def test_set_specs_encode_any_host_or_iri_reversibly() -> None:
    for text in ("127.0.0.1:8001", "[::1]:8000", "learn.example.org", "https://ex.org/c#x?y=ü", "a~b_c"):
        encoded = encode_part(text)
        assert all(c.isalnum() or c in "-.~" for c in encoded)
        assert decode_part(encoded) == text
    assert decode_part("~3a") is None and decode_part("~3") is None and decode_part("a_b") is None
    assert category_set("https://w3id.org/edufed/schemes/isced-f/0613") == "category:isced-f:06:061:0613"
    assert category_set("https://ex.org/c/1").startswith("category:iri:https~3A~2F~2Fex.org")
    assert set_filter("category:isced-f:06:071") is None


def test_characters_xml_cannot_hold() -> None:
    document = json.dumps({"name": {"en": "a\ufffeb\U0001f600"}}, ensure_ascii=False)
    text = json_for_xml(document)
    assert json.loads(text) == json.loads(document)
    element = etree.Element("x")
    element.text = text  # lxml refuses characters XML forbids; this one was escaped
    assert json.loads(etree.fromstring(etree.tostring(element)).text or "") == json.loads(document)


async def test_deleted_records_keep_a_header(node: RunningNode, tmp_path: Path) -> None:
    await seed(node, tmp_path, 3)
    async with node.http.delete(f"{node.config.records_base}r001", headers=node.admin) as response:
        assert response.status in (200, 410)
    root = await oai(node, verb="ListRecords", metadataPrefix="oai_dc")
    records = {r.findtext("o:header/o:identifier", namespaces=NS): r for r in root.iterfind(".//o:record", NS)}
    gone = records[oai_id(node, "r001")]
    header = gone.find("o:header", NS)
    assert header is not None and header.get("status") == "deleted" and gone.find("o:metadata", NS) is None
    assert [e.text for e in header.iterfind("o:setSpec", NS)] == [f"origin:127.0.0.1~3A{node.config.port}"]
    root = await oai(node, verb="GetRecord", identifier=oai_id(node, "r001"), metadataPrefix="jsonld")
    assert root.find(".//o:header", NS).get("status") == "deleted"  # type: ignore[union-attr]
    assert root.find(".//o:metadata", NS) is None
    root = await oai(node, verb="ListIdentifiers", metadataPrefix="oai_dc", set="category:isced-f:06")
    assert oai_id(node, "r001") not in identifiers(root)


async def test_every_error_code(node: RunningNode, tmp_path: Path) -> None:
    assert error_code(await oai(node, verb="ListSets")) == "noSetHierarchy"  # nothing held, no sets
    assert error_code(await oai(node, verb="ListRecords", metadataPrefix="oai_dc")) == "noRecordsMatch"
    await seed(node, tmp_path, 3)
    cases: list[tuple[dict[str, str], str]] = [
        ({}, "badVerb"),
        ({"verb": "Harvest"}, "badVerb"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "extra": "1"}, "badArgument"),
        ({"verb": "ListRecords"}, "badArgument"),
        ({"verb": "GetRecord", "identifier": oai_id(node, "r000")}, "badArgument"),
        ({"verb": "Identify", "identifier": "x"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "resumptionToken": "x"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "set": "x" * 5000}, "badArgument"),
        ({"verb": "ListRecords", "resumptionToken": "not-a-token"}, "badResumptionToken"),
        ({"verb": "ListSets", "resumptionToken": "%%%"}, "badResumptionToken"),
        ({"verb": "ListRecords", "metadataPrefix": "marc21"}, "cannotDisseminateFormat"),
        ({"verb": "GetRecord", "identifier": oai_id(node, "r000"), "metadataPrefix": "marc21"},
         "cannotDisseminateFormat"),
        ({"verb": "GetRecord", "identifier": oai_id(node, "nope"), "metadataPrefix": "oai_dc"}, "idDoesNotExist"),
        ({"verb": "GetRecord", "identifier": "oai:elsewhere.org:x", "metadataPrefix": "oai_dc"}, "idDoesNotExist"),
        ({"verb": "ListMetadataFormats", "identifier": "urn:x"}, "idDoesNotExist"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2999-01-01"}, "noRecordsMatch"),
    ]
    for params, code in cases:
        root = await oai(node, **params)
        assert error_code(root) == code, params
        request = root.find("o:request", NS)
        assert request is not None and request.text == f"{node.base_url}/oai"
        if code in ("badVerb", "badArgument"):
            assert dict(request.attrib) == {}  # the spec: no attributes when the request itself is bad
        else:
            assert request.get("verb") == params["verb"]
    # repeated verb / repeated argument
    for query in ("verb=Identify&verb=Identify", "verb=ListRecords&metadataPrefix=oai_dc&metadataPrefix=jsonld"):
        async with node.http.get(f"{node.base_url}/oai?{query}") as response:
            assert error_code(etree.fromstring(await response.read())) in ("badVerb", "badArgument")
    # expired and mismatched tokens
    expired = encode_token({"v": 1, "k": "ListRecords", "p": "oai_dc", "s": None, "a": 1, "c": 1, "e": 1,
                            "f": None, "u": None})
    assert error_code(await oai(node, verb="ListRecords", resumptionToken=expired)) == "badResumptionToken"
    listsets = encode_token({"v": 1, "k": "ListSets", "o": 0, "e": 2**40})
    assert error_code(await oai(node, verb="ListRecords", resumptionToken=listsets)) == "badResumptionToken"
    forged = base64.urlsafe_b64encode(b'{"v":1,"k":"ListRecords","p":"oai_dc","a":-5,"c":0,"e":99999999999}')
    assert error_code(await oai(node, verb="ListRecords", resumptionToken=forged.decode())) == "badResumptionToken"
    # a deleted item has no metadata formats left
    async with node.http.delete(f"{node.config.records_base}r002", headers=node.admin):
        pass
    root = await oai(node, verb="ListMetadataFormats", identifier=oai_id(node, "r002"))
    assert error_code(root) == "noMetadataFormats"


async def test_post_form_and_refused_bodies(node: RunningNode, tmp_path: Path) -> None:
    await seed(node, tmp_path, 2)
    async with node.http.post(f"{node.base_url}/oai", data={"verb": "ListIdentifiers",
                                                            "metadataPrefix": "oai_dc"}) as response:
        root = etree.fromstring(await response.read())
    assert response.status == 200 and len(identifiers(root)) == 2
    async with node.http.post(f"{node.base_url}/oai", json={"verb": "Identify"}) as response:
        assert response.status == 200
        assert error_code(etree.fromstring(await response.read())) == "badArgument"


async def test_an_unmodified_harvester_takes_every_record(
    tmp_path: Path, make_database_url: MakeDatabaseUrl
) -> None:
    async with running_node(tmp_path / "node", await make_database_url()) as node:
        await seed(node, tmp_path, 230)
        async with node.http.delete(f"{node.config.records_base}r005", headers=node.admin):
            pass

        def harvest() -> tuple[list[str], list[str], int]:
            sickle = Sickle(f"{node.base_url}/oai", max_retries=0, timeout=30)
            live, deleted, titled = [], [], 0
            for record in sickle.ListRecords(metadataPrefix="oai_dc"):
                (deleted if record.deleted else live).append(record.header.identifier)
                titled += bool(not record.deleted and record.metadata.get("title"))
            return live, deleted, titled

        live, deleted, titled = await asyncio.to_thread(harvest)
        assert deleted == [oai_id(node, "r005")]
        assert len(live) == len(set(live)) == 229 == titled
        assert set(live) | set(deleted) == {oai_id(node, f"r{n:03d}") for n in range(230)}
