"""``edufed import``: the sample catalogs go in signed and indexed; refused rows are each reported with their line
and field while the others go in (all or nothing with --strict)."""

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


BAD_ROWS = (
    HEADER
    + "Place,p1,Library,Books and a reading room,02,60.17,24.94\n"
    + "Place,p2,Somewhere,Far away,02,123.0,24.94\n"
    + "Course,c1,Pottery,Wedging and throwing,07,,\n"
    + "Spaceship,s1,Rocket,Goes up,,,\n"
    + "Place,p3,Market,Stalls,02,north,24.94\n"
    + f"Course,{'x' * 65},Long id,Too long for the store,07,,\n"
)
REFUSED = [("line 3", "geo.latitude"), ("line 5", "type"), ("line 6", "latitude"), ("line 7", "id")]


async def test_every_bad_row_is_reported_and_the_others_imported(node: NodeConfig, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_ROWS, "utf-8")
    store = await Store.open(node.effective_database_url)
    try:
        written, rejected = await import_file(node, store, bad)
        assert [(r.where, r.field) for r in rejected] == REFUSED
        assert "at most 64 characters" in rejected[-1].message
        assert written == 2 and await store.count(include_deleted=True) == 2
        assert await store.get_local("p1") is not None and await store.get_local("c1") is not None
    finally:
        await store.close()


async def test_strict_keeps_the_whole_file_out(node: NodeConfig, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_ROWS, "utf-8")
    store = await Store.open(node.effective_database_url)
    try:
        written, rejected = await import_file(node, store, bad, strict=True)
    finally:
        await store.close()
    assert written == 0 and [(r.where, r.field) for r in rejected] == REFUSED
    assert await stored_count(node) == 0


async def test_plain_and_per_language_text_columns_together(node: NodeConfig, tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text("type,id,name,name@zh,description,keywords,keywords@zh,inLanguage\n"
                    "Course,c1,Calligraphy,书法,Brush and ink,art;writing,书法,\n"
                    "Course,c2,Kalligrafia,书法,Sivellin,taide,,fi\n"
                    "Course,c3,Pottery,,,,,\n", "utf-8")
    store = await Store.open(node.effective_database_url)
    try:
        assert await import_file(node, store, path) == (3, [])
        documents = {row: json.loads((await store.get_local(row)).document_json)  # type: ignore[union-attr]
                     for row in ("c1", "c2", "c3")}
    finally:
        await store.close()
    assert documents["c1"]["name"] == {"en": "Calligraphy", "zh": "书法"}  # the node's first language
    assert documents["c1"]["keywords"] == {"en": ["art", "writing"], "zh": ["书法"]}
    assert documents["c2"]["name"] == {"fi": "Kalligrafia", "zh": "书法"}  # the row's own language
    assert documents["c3"]["name"] == {"en": "Pottery"}
    conflict = tmp_path / "conflict.csv"
    conflict.write_text("type,id,name,name@en\nCourse,c4,Pottery,Ceramics\n", "utf-8")
    store = await Store.open(node.effective_database_url)
    try:
        written, rejected = await import_file(node, store, conflict)
    finally:
        await store.close()
    assert written == 0 and [(r.where, r.field) for r in rejected] == [("line 2", "name")]


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
    bad.write_text(BAD_ROWS, "utf-8")
    report = tmp_path / "report.json"

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "node.cli", "import", "-q", "--data", str(node.data_dir),
                               str(bad), "--report", str(report), *extra], capture_output=True, text=True, timeout=120)

    done = run("--strict")
    assert done.returncode == 1
    assert "nothing was imported (--strict)" in done.stderr
    assert "line 5: [type]" in done.stderr and "line 7: [id] Record id too long" in done.stderr
    assert "Traceback" not in done.stderr
    entries = json.loads(report.read_text())
    assert [(e["row"], e["field"]) for e in entries] == REFUSED and "Spaceship" in entries[1]["message"]
    assert await stored_count(node) == 0
    done = run()
    assert done.returncode == 1 and "Refused 4 row(s)" in done.stderr and "2 record(s) imported" in done.stderr
    assert await stored_count(node) == 2


async def test_cli_import_refuses_an_unknown_column_once(node: NodeConfig, tmp_path: Path) -> None:
    path = tmp_path / "colour.csv"
    path.write_text("type,id,name,colour\nCourse,c1,Pottery,red\nCourse,c2,Weaving,blue\n", "utf-8")
    done = subprocess.run([sys.executable, "-m", "node.cli", "import", "-q", "--data", str(node.data_dir), str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "edufed: Unknown CSV column [colour]: 'colour'; see README 'Importing a catalog'"
