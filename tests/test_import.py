"""``edufed import``: the sample catalogs go in signed and indexed; one bad row keeps the whole file out."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from node.bootstrap import init_node
from node.catalog.importer import import_file
from node.config import NodeConfig
from node.demo import samples_dir
from node.store.records import Store
from node.trust.did import build_did_document, did_web_from_base_url
from node.trust.keyring import KeyRing
from node.trust.proofs import verify

HEADER = "type,id,name@en,description@en,about,latitude,longitude\n"


@pytest.fixture
async def node(tmp_path: Path, database_url: str) -> NodeConfig:
    config, _ = await init_node(tmp_path / "node", base_url="https://learn.example.org", name="Import test",
                                database_url=database_url)
    return config


async def stored_count(config: NodeConfig) -> int:
    store = await Store.open(config.effective_database_url)
    try:
        return await store.count(include_deleted=True)
    finally:
        await store.close()


@pytest.mark.parametrize("sample", ["shanghai-xuhui", "helsinki", "bologna"])
async def test_sample_catalog_imports_signed_and_indexed(node: NodeConfig, sample: str) -> None:
    path = samples_dir() / f"{sample}.csv"
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    store = await Store.open(node.effective_database_url)
    try:
        written, rejected = await import_file(node, store, path)
        assert rejected == [] and written == len(rows)
        did = did_web_from_base_url(node.base_url)
        did_document = build_did_document(did, KeyRing(node.keys_dir).entries())
        for row in rows:
            record = await store.get_local(row["id"])
            assert record is not None and record.version == 1
            assert verify(json.loads(record.document_json), lambda _: did_document).verified
            index = await store.index_of(record.iri)
            assert index is not None and index.type == row["type"]
            if row["latitude"]:
                assert (index.latitude, index.longitude) == (float(row["latitude"]), float(row["longitude"]))
        written, rejected = await import_file(node, store, path)  # re-import = new versions, no copies
        assert written == len(rows) and await store.count() == len(rows)
        assert (await store.get_local(rows[0]["id"])).version == 2  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_one_bad_row_keeps_the_whole_file_out(node: NodeConfig, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER
        + "Place,p1,Library,Books and a reading room,02,60.17,24.94\n"
        + "Place,p2,Somewhere,Far away,02,123.0,24.94\n"
        + "Course,c1,Pottery,Wedging and throwing,07,,\n",
        "utf-8",
    )
    store = await Store.open(node.effective_database_url)
    try:
        written, rejected = await import_file(node, store, bad)
    finally:
        await store.close()
    assert written == 0
    assert [(r.where, r.field) for r in rejected] == [("line 3", "geo.latitude")]
    assert await stored_count(node) == 0


async def test_jsonld_graph_imports(node: NodeConfig, tmp_path: Path) -> None:
    graph = {
        "@context": "https://w3id.org/edufed/v1",
        "@graph": [
            {"type": "Course", "id": "c1", "name": {"en": "Pottery"}},
            {"type": "LearningResource", "id": "r1", "name": {"en": "Glazing guide"},
             "license": "https://creativecommons.org/licenses/by/4.0/"},
        ],
    }
    path = tmp_path / "catalog.jsonld"
    path.write_text(json.dumps(graph), "utf-8")
    store = await Store.open(node.effective_database_url)
    try:
        written, rejected = await import_file(node, store, path)
        assert (written, rejected) == (2, [])
        assert (await store.get(f"{node.records_base}r1")) is not None
    finally:
        await store.close()


async def test_cli_import_reports_rejected_rows_and_exits_non_zero(node: NodeConfig, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "Spaceship,s1,Rocket,Goes up,,,\n", "utf-8")
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "node.cli", "import", "--data", str(node.data_dir), str(bad), "--report", str(report)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1
    assert "line 2" in done.stderr and "[type]" in done.stderr
    [entry] = json.loads(report.read_text())
    assert (entry["row"], entry["field"]) == ("line 2", "type") and "Spaceship" in entry["message"]
    assert await stored_count(node) == 0
