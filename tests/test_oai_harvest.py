"""``edufed import --data DIR URL`` harvests OAI-PMH repositories (spec section 11.6): our own node's ``/oai``
(oai_dc) and a small LOM provider served here, page by page, signed as this node's records, updated (not copied)
when harvested again, refused items reported by identifier (all or nothing with --strict), and only through the
guarded client."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from aiohttp import web

from node.bootstrap import init_node
from node.catalog.importer import import_file
from node.errors import BadRequest
from node.oai.harvest import harvest_into, local_id
from node.store.records import Store
from node.trust.did import build_did_document, did_web_from_base_url
from node.trust.keyring import KeyRing
from node.trust.proofs import verify
from tests.conftest import MakeDatabaseUrl
from tests.harness import free_port, running_node

OAI_HEAD = ('<?xml version="1.0" encoding="UTF-8"?><OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
            "<responseDate>2027-01-01T00:00:00Z</responseDate><request>x</request>")
LOM_NS = "http://ltsc.ieee.org/xsd/LOM"


def lom_record(n: int, *, deleted: bool = False, title: bool = True) -> str:
    status = ' status="deleted"' if deleted else ""
    header = (f"<header{status}><identifier>oai:lom.example:item-{n}</identifier>"
              "<datestamp>2027-01-01T00:00:00Z</datestamp></header>")
    if deleted:
        return f"<record>{header}</record>"
    name = (f'<title><string language="en">Fractions {n} &amp; ratios</string>'
            f'<string language="de">Brüche {n}</string></title>') if title else ""
    return (
        f"<record>{header}<metadata><lom xmlns=\"{LOM_NS}\"><general>{name}"
        f"<language>de</language><description><string language=\"en\">Worksheets, part {n}</string>"
        "</description><keyword><string language=\"en\">maths</string></keyword>"
        "<keyword><string language=\"en\">fractions</string></keyword></general>"
        f"<technical><location>https://lom.example/items/{n}</location></technical>"
        "<educational><learningResourceType><source>LOMv1.0</source><value>exercise</value>"
        "</learningResourceType></educational>"
        "<rights><description><string language=\"en\">https://creativecommons.org/licenses/by-sa/4.0/</string>"
        "</description></rights></lom></metadata></record>"
    )


@asynccontextmanager
async def lom_provider(pages: list[list[str]]) -> AsyncIterator[str]:
    """A small LOM-only OAI-PMH repository: ``pages`` of records chained by resumption tokens."""
    requests: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        query = dict(request.query)
        requests.append(query)
        if query.get("verb") == "ListMetadataFormats":
            body = ("<ListMetadataFormats><metadataFormat><metadataPrefix>lom</metadataPrefix>"
                    "<schema>http://ltsc.ieee.org/xsd/lomv1.0/lom.xsd</schema>"
                    f"<metadataNamespace>{LOM_NS}</metadataNamespace></metadataFormat></ListMetadataFormats>")
        elif query.get("verb") == "ListRecords":
            index = int(query.get("resumptionToken", "page-0").removeprefix("page-"))
            assert (index == 0 and query["metadataPrefix"] == "lom") or "metadataPrefix" not in query
            token = f"page-{index + 1}" if index + 1 < len(pages) else ""
            body = f"<ListRecords>{''.join(pages[index])}<resumptionToken>{escape(token)}</resumptionToken>" \
                   "</ListRecords>"
        else:
            body = '<error code="badVerb">no</error>'
        return web.Response(text=OAI_HEAD + body + "</OAI-PMH>", content_type="text/xml")

    app = web.Application()
    app.router.add_get("/oai", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/oai"
    finally:
        await runner.cleanup()


async def test_harvest_our_own_node_over_oai_dc(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> None:
    source_csv = tmp_path / "c.csv"
    source_csv.write_text(
        "type,id,name@en,name@fi,description@en,keywords@en,about,inLanguage,license\n"
        + "".join(f"LearningResource,r{n},Resource {n},Aineisto {n},About {n},one;two,06,en,"
                  "https://creativecommons.org/licenses/by/4.0/\n" for n in range(130)),
        "utf-8",
    )
    async with (running_node(tmp_path / "a", await make_database_url(), name="Source") as source,
                running_node(tmp_path / "b", await make_database_url(), name="Harvester") as target):
        assert (await import_file(source.config, source.services.store, source_csv))[0] == 130
        async with source.http.delete(f"{source.config.records_base}r7", headers=source.admin):
            pass
        store = target.services.store
        written, rejected, found = await harvest_into(target.config, store, f"{source.base_url}/oai")
        assert rejected == [] and written == 129 and found.deleted == 1 and found.pages == 2

        identifier = f"oai:127.0.0.1:{source.config.records_base}r3"
        record = await store.get_local(local_id(identifier))
        assert record is not None and record.version == 1 and record.iri.startswith(target.config.records_base)
        document = json.loads(record.document_json)
        assert document["type"] == "LearningResource"
        assert document["name"] == {"en": "Resource 3", "fi": "Aineisto 3"}
        assert document["description"] == {"en": "About 3"}
        assert document["keywords"]["en"][:2] == ["one", "two"]
        assert document["about"] == ["https://w3id.org/edufed/schemes/isced-f/06"]
        assert document["url"] == f"{source.config.records_base}r3"
        assert document["license"] == "https://creativecommons.org/licenses/by/4.0/"
        assert document["inLanguage"] == "en" and document["sameAs"] == identifier
        did_document = build_did_document(did_web_from_base_url(target.base_url),
                                          KeyRing(target.config.keys_dir).entries())
        assert verify(document, lambda _: did_document).verified  # signed by the harvesting node

        written, rejected, _ = await harvest_into(target.config, store, f"{source.base_url}/oai")
        assert written == 129 and await store.count() == 129  # harvested again: updated, not copied
        again = await store.get_local(local_id(identifier))
        assert again is not None and again.version == 2


async def test_harvest_lom_page_by_page(tmp_path: Path, database_url: str) -> None:
    config, _ = await init_node(tmp_path / "n", base_url="https://learn.example.org", name="LOM",
                                database_url=database_url, allow_private_networks=True)
    pages = [[lom_record(1), lom_record(2)], [lom_record(3, deleted=True), lom_record(4)], [lom_record(5)]]
    store = await Store.open(config.effective_database_url)
    try:
        async with lom_provider(pages) as url:
            written, rejected, found = await harvest_into(config, store, url)
        assert rejected == [] and written == 4 and found.deleted == 1 and found.pages == 3
        record = await store.get_local(local_id("oai:lom.example:item-4"))
        assert record is not None
        document = json.loads(record.document_json)
        assert document["name"] == {"en": "Fractions 4 & ratios", "de": "Brüche 4"}
        assert document["description"] == {"en": "Worksheets, part 4"}
        assert document["keywords"] == {"en": ["maths", "fractions"]}
        assert document["inLanguage"] == "de"
        assert document["url"] == "https://lom.example/items/4"
        assert document["license"] == "https://creativecommons.org/licenses/by-sa/4.0/"
        assert document["learningResourceType"] == "exercise"
        assert (await store.index_of(record.iri)) is not None  # indexed for search like any import

        # items without a title: with --strict the whole run is refused and nothing changes
        pages = [[lom_record(1), lom_record(9, title=False)], [lom_record(10, title=False), lom_record(2)]]
        async with lom_provider(pages) as url:
            written, rejected, _ = await harvest_into(config, store, url, strict=True)
        assert written == 0 and [r.where for r in rejected] == ["oai:lom.example:item-9", "oai:lom.example:item-10"]
        assert (await store.get_local(local_id("oai:lom.example:item-1"))).version == 1  # type: ignore[union-attr]
        # without it, the valid items are harvested and every refused one is reported with its identifier
        async with lom_provider(pages) as url:
            written, rejected, _ = await harvest_into(config, store, url)
        assert written == 2 and [(r.where, r.field) for r in rejected] == [
            ("oai:lom.example:item-9", "name"), ("oai:lom.example:item-10", "name")]
        assert (await store.get_local(local_id("oai:lom.example:item-1"))).version == 2  # type: ignore[union-attr]
        assert await store.get_local(local_id("oai:lom.example:item-9")) is None
    finally:
        await store.close()


async def test_harvest_goes_through_the_guarded_client(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = await init_node(tmp_path / "n", base_url="https://learn.example.org", name="Guarded",
                                database_url=database_url)
    config = replace(config, allow_private_networks=False)
    monkeypatch.delenv("EDUFED_ALLOW_PRIVATE_NETWORKS", raising=False)
    store = await Store.open(config.effective_database_url)
    try:
        async with lom_provider([[lom_record(1)]]) as url:
            with pytest.raises(BadRequest, match="could not be reached"):
                await harvest_into(config, store, url)  # loopback is refused without the switch
        with pytest.raises(BadRequest):
            await harvest_into(config, store, "ftp://example.org/oai")
        assert await store.count(include_deleted=True) == 0
    finally:
        await store.close()


async def test_cli_import_harvests_a_url(tmp_path: Path, database_url: str) -> None:
    data = tmp_path / "n"
    await init_node(data, base_url="https://learn.example.org", name="CLI", database_url=database_url,
                    allow_private_networks=True)
    async with lom_provider([[lom_record(1)], [lom_record(2)]]) as url:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "node.cli", "import", "--data", str(data), "-q", url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert "Harvested 2 record(s)" in out.decode()
    store = await Store.open(database_url)
    try:
        assert await store.count() == 2
    finally:
        await store.close()
