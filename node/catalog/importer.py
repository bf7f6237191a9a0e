"""``edufed import``: publish the records of a CSV or JSON-LD file.

Each row is checked exactly like a record posted to the API (context, type, safe-mode expansion, SHACL shape)
and signed. The rows that pass are written in one transaction, and the report lists every refused row with its
line (or position) and field, so one bad row does not keep a catalog of thousands out. ``strict`` makes it all or
nothing: a single refused row and nothing is written. Either way a crash mid-import leaves the catalog as it was,
and running the same command again is the way to resume (rows with a known id become new versions).

CSV columns (header row required; empty cells are left out; see README "Importing a catalog"):
``type`` (required), ``id``, ``name``, ``description``, ``keywords`` (``;``-separated), each also per language
as ``name@zh`` (a plain ``name``, alone or beside them, is the text in the row's ``inLanguage``, or the node's
first language); ``url``, ``image``, ``inLanguage``, ``license``, ``isAccessibleForFree`` (true/false),
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
    LOCAL_ID,
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
MAX_LOCAL_ID = 64  # the store's limit (and LOCAL_ID's)


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


KNOWN_COLUMNS = {"type", "id", "inLanguage", "isAccessibleForFree", "about", "provider", "latitude", "longitude",
                 "credits", "creditSystem", *PLAIN_COLUMNS, *ADDRESS_COLUMNS}


def check_header(columns: Iterable[str]) -> None:
    """Refuse a CSV whose header names a column we do not map (once for the file, not once per row)."""
    for column in columns:
        name = (column or "").strip()
        term, at, lang = name.partition("@")
        if not (name in KNOWN_COLUMNS or (term in TEXT_COLUMNS and (not at or lang))):
            raise BadRequest("Unknown CSV column", detail=f"{name!r}; see README 'Importing a catalog'", field=name)


def csv_record(cells: dict[str, str], default_language: str = "en") -> dict[str, Any]:
    """One CSV row as a record body, following the column mapping in the module docstring. A plain text column
    (``name``, also beside ``name@zh``) holds the text in the row's single ``inLanguage``, or else in
    ``default_language``: records carry their text as language maps."""
    cells = {k.strip(): v.strip() for k, v in cells.items() if k and v and v.strip()}
    check_header(cells)
    body: dict[str, Any] = {"@context": EDUFED_CONTEXT}
    plain: dict[str, Any] = {}
    for column, value in cells.items():
        term, _, lang = column.partition("@")
        if term in TEXT_COLUMNS:
            text: Any = _split(value) if term in LIST_COLUMNS else value
            if lang:
                body.setdefault(term, {})[lang] = text
            else:
                plain[term] = text
    languages = _split(cells.get("inLanguage", ""))
    language = languages[0] if len(languages) == 1 else default_language
    for term, text in plain.items():
        if language in body.setdefault(term, {}):
            raise BadRequest(f"Both {term} and {term}@{language} give the {language} text",
                             detail=f"a plain {term} column holds the text in {language} (the row's inLanguage, "
                             "or the node's first language)", field=term)
        else:
            body[term][language] = text
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


def read_rows(path: Path, limit_bytes: int, default_language: str = "en") -> tuple[list[Row], list[Rejection]]:
    """Rows of a ``.csv`` or ``.json``/``.jsonld`` file; malformed rows become rejections, a file we cannot read
    at all (missing, too large, an unknown format or CSV column, malformed JSON) is a BadRequest."""
    if not path.is_file():
        raise BadRequest("No such file", detail=str(path), field="file")
    if path.stat().st_size > limit_bytes:
        raise BadRequest("Import file too large", detail=f"limit {limit_bytes} bytes", field="file")
    if path.suffix.lower() == ".csv":
        return _csv_rows(path, default_language)
    if path.suffix.lower() in (".json", ".jsonld"):
        return _jsonld_rows(path), []
    raise BadRequest("Unsupported import format", detail="use .csv, .json or .jsonld", field="file")


def _csv_rows(path: Path, default_language: str) -> tuple[list[Row], list[Rejection]]:
    rows: list[Row] = []
    rejected: list[Rejection] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        check_header(reader.fieldnames or [])
        for cells in reader:
            where = f"line {reader.line_num}"
            try:
                if None in cells:
                    raise BadRequest("Row has more cells than the header", field=None)
                rows.append(Row(where, csv_record(cells, default_language)))
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
        if len(local_id) > MAX_LOCAL_ID:
            raise BadRequest("Record id too long", detail=f"at most {MAX_LOCAL_ID} characters; got {len(local_id)}",
                             field="id")
        local_id_from_iri(self.config.records_base + local_id, self.config.records_base)
        current = self.existing.get(local_id)
        return (local_id, current.version + 1, current.version) if current else (local_id, 1, None)

    def prepare(
        self, rows: Iterable[Row], progress: bool
    ) -> tuple[list[tuple[StoredRecord, IndexEntry]], list[Rejection]]:
        """(the rows that pass, signed and indexed; a rejection for every row that does not)."""
        now = utc_now()
        drafts: list[tuple[int, Row, str, dict[str, Any]]] = []
        rejected: list[tuple[int, Rejection]] = []  # with the row's position, to report in file order
        seen: set[str] = set()
        for position, row in enumerate(rows):
            try:
                if not isinstance(row.body, dict):
                    raise BadRequest("A record must be a JSON object", field=None)
                local_id, version, _ = self.target(row.body)
                if local_id in seen:
                    raise BadRequest("Duplicate id in this file", detail=local_id, field="id")
                seen.add(local_id)
                document = draft(row.body, self.config.records_base + local_id, version, now)
                drafts.append((position, row, local_id, document))
            except EduFedError as error:
                rejected.append((position, _rejection(row.where, error)))
        invalid = validate_many([d for *_, d in drafts])
        for index, violations in invalid.items():
            position, row, *_ = drafts[index]
            rejected.extend((position, Rejection(row.where, v.path, v.message)) for v in violations)
        valid = [draft for index, draft in enumerate(drafts) if index not in invalid]
        prepared: list[tuple[StoredRecord, IndexEntry]] = []
        for position, row, local_id, document in tqdm(valid, desc="signing", unit="rec", disable=not progress,
                                                      file=sys.stderr):
            try:
                signed = seal(document, self.signer, now)
            except EduFedError as error:
                rejected.append((position, _rejection(row.where, error)))
                continue
            prepared.append((to_stored(signed, local_id), index_entry(signed, self.config.languages)))
        return prepared, [r for _, r in sorted(rejected, key=lambda pair: pair[0])]


def _position(rejection: Rejection) -> int:
    """Where a rejection's row was in the file (``line 7``, ``item 3``), to report in file order."""
    number = rejection.where.rpartition(" ")[2]
    return int(number) if number.isdecimal() and number.isascii() else 0


def _rejection(where: str, error: EduFedError) -> Rejection:
    return Rejection(where, error.field, error.title + (f": {error.detail}" if error.detail else ""))


async def publish_rows(
    config: NodeConfig, store: Store, rows: list[Row], rejected: list[Rejection], *, progress: bool, strict: bool
) -> tuple[int, list[Rejection]]:
    """Check, sign and write ``rows`` (``rejected``: those already refused while reading); returns (records
    written, every rejection). ``strict``: nothing is written when anything was refused."""
    existing: dict[str, StoredRecord] = {}
    for row in rows:
        requested = row.body.get("id") if isinstance(row.body, dict) else None
        if isinstance(requested, str):
            local = requested.removeprefix(config.records_base)
            if not LOCAL_ID.match(local):
                continue  # refused with its row and field by Preparer.target
            found = await store.get_local(local)
            if found is not None:
                existing[local] = found
    signer = node_signer(config.base_url, KeyRing(config.keys_dir))
    prepared, refused = await asyncio.to_thread(Preparer(config, signer, existing).prepare, rows, progress)
    rejected = sorted(rejected + refused, key=_position)
    if prepared and not (strict and rejected):
        await store.save_many(list(prepared))
        return len(prepared), rejected
    return 0, rejected


async def import_file(
    config: NodeConfig, store: Store, path: Path, *, progress: bool = False, strict: bool = False
) -> tuple[int, list[Rejection]]:
    """Import ``path`` into ``store``; returns (records written, rejections). The valid rows are written unless
    ``strict`` and something was refused."""
    rows, rejected = read_rows(path, config.limits.max_import_bytes, config.languages[0])
    return await publish_rows(config, store, rows, rejected, progress=progress, strict=strict)


def print_outcome(source: str, written: int, rejected: list[Rejection], *, unit: str, strict: bool) -> int:
    """The CLI's summary and the refused rows (50 at most); exit status 1 when anything was refused."""
    if not rejected:
        print(f"Imported {written} record(s) from {source}.")
        return 0
    outcome = "nothing was imported (--strict)" if strict and not written else f"{written} record(s) imported"
    print(f"Refused {len(rejected)} {unit}(s) of {source}; {outcome}:", file=sys.stderr)
    for r in rejected[:50]:
        print(f"  {r.where}: [{r.field or '-'}] {r.message}", file=sys.stderr)
    if len(rejected) > 50:
        print(f"  … and {len(rejected) - 50} more (use --report FILE for all)", file=sys.stderr)
    return 1


def write_report(report_path: Path | None, rejected: list[Rejection]) -> None:
    if report_path is not None:
        report_path.write_text(json.dumps([r.as_dict() for r in rejected], indent=2, ensure_ascii=False), "utf-8")


async def run_import(config: NodeConfig, path: Path, *, report_path: Path | None, progress: bool,
                     strict: bool = False) -> int:
    """The CLI's import: prints a summary and the refused rows; exit status 1 when anything was refused."""
    store = await Store.open(config.effective_database_url)
    try:
        written, rejected = await import_file(config, store, path, progress=progress, strict=strict)
    finally:
        await store.close()
    write_report(report_path, rejected)
    return print_outcome(str(path), written, rejected, unit="row", strict=strict)
