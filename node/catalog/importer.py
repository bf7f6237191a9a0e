"""``edufed import``: publish every record of a CSV or JSON-LD file, all or nothing.

Each row is checked exactly like a record posted to the API (context, type, safe-mode expansion, SHACL shape)
and signed. Only when every row passes are they written, in one transaction; otherwise nothing is stored and
the report lists each rejected row with its line and field. A crash mid-import therefore leaves the catalog as
it was, and running the same command again is the way to resume.

CSV columns (header row required; empty cells are left out; see README "Importing a catalog"):
``type`` (required), ``id``, ``name``, ``description``, ``keywords`` (``;``-separated), each also per language
as ``name@zh``; ``url``, ``image``, ``inLanguage``, ``license``, ``isAccessibleForFree`` (true/false),
``educationalLevel``, ``learningResourceType``, ``about`` (``;``-separated category IRIs, or ISCED-F broad field
codes such as ``06``), ``provider``, ``courseMode``, ``courseWorkload``, ``timeRequired``, ``startDate``,
``endDate``, ``location`` (a Place IRI), ``latitude`` + ``longitude`` (→ ``geo``), ``streetAddress``,
``addressLocality``, ``postalCode``, ``addressCountry`` (→ ``address``), ``credits`` + ``creditSystem``.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from node.catalog.indexing import index_entry
from node.catalog.records import (
    Signer,
    draft,
    local_id_from_iri,
    new_local_id,
    node_signer,
    seal,
    to_stored,
    utc_now,
)
from node.catalog.validation import validate_many
from node.config import NodeConfig
from node.errors import BadRequest, EduFedError
from node.ld.contexts import EDUFED_CONTEXT
from node.store.records import IndexEntry, Store, StoredRecord
from node.trust.keyring import KeyRing

ISCED_F = "https://w3id.org/edufed/schemes/isced-f/"
CREDIT_SYSTEMS = "https://w3id.org/edufed/credit-systems/"
LIST_COLUMNS = {"keywords", "about", "inLanguage"}
TEXT_COLUMNS = {"name", "description", "keywords"}
PLAIN_COLUMNS = (
    "url", "image", "license", "educationalLevel", "learningResourceType", "courseMode",
    "courseWorkload", "timeRequired", "startDate", "endDate", "location",
)
ADDRESS_COLUMNS = ("streetAddress", "addressLocality", "postalCode", "addressCountry")


@dataclass(frozen=True)
class Row:
    """One record to import and where it came from (CSV line or JSON array position)."""

    where: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Rejection:
    where: str
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.where, "field": self.field, "message": self.message}


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


def _category(value: str) -> str:
    return ISCED_F + value if value.isdigit() else value


def csv_record(cells: dict[str, str]) -> dict[str, Any]:
    """One CSV row as a record body, following the column mapping in the module docstring."""
    cells = {k.strip(): v.strip() for k, v in cells.items() if k and v and v.strip()}
    known = {"type", "id", "inLanguage", "isAccessibleForFree", "about", "provider", "latitude", "longitude", "credits",
             "creditSystem", *PLAIN_COLUMNS, *ADDRESS_COLUMNS}
    body: dict[str, Any] = {"@context": EDUFED_CONTEXT}
    for column, value in cells.items():
        term, _, lang = column.partition("@")
        if term in TEXT_COLUMNS:
            text: Any = _split(value) if term in LIST_COLUMNS else value
            if lang:
                body.setdefault(term, {})
                if not isinstance(body[term], dict):
                    raise BadRequest("Mixed plain and per-language columns", field=column)
                body[term][lang] = text
            else:
                if term in body:
                    raise BadRequest("Mixed plain and per-language columns", field=column)
                body[term] = text
        elif column not in known:
            raise BadRequest("Unknown CSV column", detail=column, field=column)
    for column in ("type", "id", *PLAIN_COLUMNS):
        if column in cells:
            body[column] = cells[column]
    if "provider" in cells:  # an IRI, or the name of an organisation that has none
        provider = cells["provider"]
        body["provider"] = provider if ":" in provider else {"type": "Organization", "name": provider}
    if "inLanguage" in cells:
        languages = _split(cells["inLanguage"])
        body["inLanguage"] = languages[0] if len(languages) == 1 else languages
    if "isAccessibleForFree" in cells:
        flag = cells["isAccessibleForFree"].lower()
        if flag not in ("true", "false"):
            raise BadRequest("isAccessibleForFree must be true or false", detail=flag, field="isAccessibleForFree")
        body["isAccessibleForFree"] = flag == "true"
    if "about" in cells:
        body["about"] = [_category(c) for c in _split(cells["about"])]
    if "latitude" in cells or "longitude" in cells:
        body["geo"] = {"type": "GeoCoordinates", "latitude": _number(cells, "latitude"),
                       "longitude": _number(cells, "longitude")}
    address = {c: cells[c] for c in ADDRESS_COLUMNS if c in cells}
    if address:
        body["address"] = {"type": "PostalAddress", **address}
    if "credits" in cells:
        system = cells.get("creditSystem", "")
        body["credits"] = {"type": "CreditValue", "value": _number(cells, "credits"),
                           "creditSystem": system if ":" in system else CREDIT_SYSTEMS + system}
    return body


def _number(cells: dict[str, str], column: str) -> float:
    try:
        return float(cells[column])
    except (KeyError, ValueError):
        raise BadRequest(f"{column} must be a number", detail=cells.get(column, "missing"), field=column) from None


def read_rows(path: Path, limit_bytes: int) -> tuple[list[Row], list[Rejection]]:
    """Rows of a ``.csv`` or ``.json``/``.jsonld`` file; malformed rows become rejections."""
    if not path.is_file():
        raise BadRequest("No such file", detail=str(path), field="file")
    if path.stat().st_size > limit_bytes:
        raise BadRequest("Import file too large", detail=f"limit {limit_bytes} bytes", field="file")
    if path.suffix.lower() == ".csv":
        return _csv_rows(path)
    if path.suffix.lower() in (".json", ".jsonld"):
        return _jsonld_rows(path), []
    raise BadRequest("Unsupported import format", detail="use .csv, .json or .jsonld", field="file")


def _csv_rows(path: Path) -> tuple[list[Row], list[Rejection]]:
    rows: list[Row] = []
    rejected: list[Rejection] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        for cells in reader:
            where = f"line {reader.line_num}"
            try:
                if None in cells:
                    raise BadRequest("Row has more cells than the header", field=None)
                rows.append(Row(where, csv_record(cells)))
            except EduFedError as error:
                rejected.append(_rejection(where, error))
    return rows, rejected


def _jsonld_rows(path: Path) -> list[Row]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest("Malformed JSON", detail=f"{path}: {exc}", field="file") from None
    if isinstance(data, dict) and "@graph" in data:
        context = data.get("@context", EDUFED_CONTEXT)
        items = [{"@context": context, **item} if isinstance(item, dict) else item for item in data["@graph"]]
    else:
        items = data if isinstance(data, list) else [data]
    return [Row(f"item {n}", item) for n, item in enumerate(items)]


class Preparer:
    """Checks and signs rows as this node would publish them (CPU-bound: runs in a worker thread)."""

    def __init__(self, config: NodeConfig, signer: Signer, existing: dict[str, StoredRecord]) -> None:
        self.config = config
        self.signer = signer
        self.existing = existing

    def target(self, body: dict[str, Any]) -> tuple[str, int, int | None]:
        """(local id, new version, version it replaces)."""
        requested = body.get("id")
        if not isinstance(requested, str):
            return new_local_id(), 1, None
        local_id = requested if ":" not in requested else local_id_from_iri(requested, self.config.records_base)
        local_id_from_iri(self.config.records_base + local_id, self.config.records_base)
        current = self.existing.get(local_id)
        return (local_id, current.version + 1, current.version) if current else (local_id, 1, None)

    def prepare(
        self, rows: Iterable[Row], progress: bool
    ) -> tuple[list[tuple[StoredRecord, IndexEntry]], list[Rejection]]:
        now = utc_now()
        drafts: list[tuple[Row, str, dict[str, Any]]] = []
        rejected: list[Rejection] = []
        seen: set[str] = set()
        for row in rows:
            try:
                if not isinstance(row.body, dict):
                    raise BadRequest("A record must be a JSON object", field=None)
                local_id, version, _ = self.target(row.body)
                if local_id in seen:
                    raise BadRequest("Duplicate id in this file", detail=local_id, field="id")
                seen.add(local_id)
                drafts.append((row, local_id, draft(row.body, self.config.records_base + local_id, version, now)))
            except EduFedError as error:
                rejected.append(_rejection(row.where, error))
        for index, violations in validate_many([d for _, _, d in drafts]).items():
            row = drafts[index][0]
            rejected.extend(Rejection(row.where, v.path, v.message) for v in violations)
        if rejected:
            return [], rejected
        prepared: list[tuple[StoredRecord, IndexEntry]] = []
        for row, local_id, document in tqdm(drafts, desc="signing", unit="rec", disable=not progress, file=sys.stderr):
            try:
                signed = seal(document, self.signer, now)
            except EduFedError as error:
                rejected.append(_rejection(row.where, error))
                continue
            prepared.append((to_stored(signed, local_id), index_entry(signed, self.config.languages)))
        return ([] if rejected else prepared), rejected


def _rejection(where: str, error: EduFedError) -> Rejection:
    return Rejection(where, error.field, error.title + (f": {error.detail}" if error.detail else ""))


async def import_file(
    config: NodeConfig, store: Store, path: Path, *, progress: bool = False
) -> tuple[int, list[Rejection]]:
    """Import ``path`` into ``store``; returns (records written, rejections). Nothing is written on rejection."""
    rows, rejected = read_rows(path, config.limits.max_import_bytes)
    if rejected:
        return 0, rejected
    signer = node_signer(config.base_url, KeyRing(config.keys_dir))
    existing: dict[str, StoredRecord] = {}
    for row in rows:
        requested = row.body.get("id") if isinstance(row.body, dict) else None
        if isinstance(requested, str):
            local = requested.removeprefix(config.records_base)
            found = await store.get_local(local)
            if found is not None:
                existing[local] = found
    prepared, rejected = await asyncio.to_thread(Preparer(config, signer, existing).prepare, rows, progress)
    if rejected:
        return 0, rejected
    await store.save_many(list(prepared))
    return len(prepared), []


async def run_import(config: NodeConfig, path: Path, *, report_path: Path | None, progress: bool) -> int:
    """The CLI's import: prints a summary and the rejected rows; exit status 1 when anything was rejected."""
    store = await Store.open(config.effective_database_url)
    try:
        written, rejected = await import_file(config, store, path, progress=progress)
    finally:
        await store.close()
    if report_path is not None:
        report_path.write_text(json.dumps([r.as_dict() for r in rejected], indent=2, ensure_ascii=False), "utf-8")
    if rejected:
        print(f"Rejected {len(rejected)} row(s) of {path}; nothing was imported:", file=sys.stderr)
        for r in rejected[:50]:
            print(f"  {r.where}: [{r.field or '-'}] {r.message}", file=sys.stderr)
        if len(rejected) > 50:
            print(f"  … and {len(rejected) - 50} more (use --report FILE for all)", file=sys.stderr)
        return 1
    print(f"Imported {written} record(s) from {path}.")
    return 0
