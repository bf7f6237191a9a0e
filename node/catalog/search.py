"""Search over the node's own and mirrored records: words, facets, and "near me".

Everything runs in the database: full text through FTS5 (SQLite) or a tsvector GIN index (PostgreSQL) over the
node's own tokens (``node.catalog.tokens``), filters and facet counts through indexed columns, and "near me"
through the (latitude, longitude) index with a bounding box, refined to the exact great-circle distance. Order
is deterministic (newest first, or nearest first), so both databases give the same page for the same data.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from node.catalog.indexing import texts
from node.catalog.tokens import query_tokens
from node.errors import BadRequest
from node.store.records import Store

FILTERS = ("type", "category", "level", "language", "license", "free", "mode", "origin")
PARAMETERS = frozenset({"q", *FILTERS, "near", "radius", "limit", "cursor"})
EARTH_RADIUS_KM = 6371.0088
MAX_RADIUS_KM = 100.0
MAX_LIMIT = 100
MAX_OFFSET = 10_000
MAX_PARAMETER_LENGTH = 500
FACET_SIZE = 50
COLUMN = {"type": "i.type", "level": "i.level", "language": "i.language", "license": "i.license", "free": "i.free",
          "mode": "i.mode", "origin": "i.origin"}


@dataclass(frozen=True)
class SearchQuery:
    text: str | None = None
    filters: tuple[tuple[str, Any], ...] = ()
    near: tuple[float, float] | None = None
    radius_km: float = 2.0
    limit: int = 20
    offset: int = 0

    def fingerprint(self) -> str:
        """What a cursor is bound to: the same query, any page."""
        key = json.dumps([self.text, self.filters, self.near, self.radius_km, self.limit], default=str)
        return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class SearchResult:
    total: int
    items: list[dict[str, Any]]
    facets: dict[str, dict[str, int]]
    next_offset: int | None = None
    query: SearchQuery = field(default_factory=SearchQuery)


def _number(params: Mapping[str, str], name: str, low: float, high: float) -> float:
    try:
        value = float(params[name])
    except ValueError:
        raise BadRequest(f"{name} must be a number", detail=params[name], field=name) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise BadRequest(f"{name} must be from {low:g} to {high:g}", detail=params[name], field=name)
    return value


def parse_query(params: Mapping[str, str]) -> SearchQuery:
    """The query a request asks for; a 400 naming the parameter for anything unknown or out of range."""
    for name, raw in params.items():
        if name not in PARAMETERS:
            raise BadRequest("Unknown search parameter", detail=f"{name}; use {', '.join(sorted(PARAMETERS))}",
                             field=name)
        if len(raw) > MAX_PARAMETER_LENGTH:
            raise BadRequest("Search parameter too long", detail=f"at most {MAX_PARAMETER_LENGTH} characters",
                             field=name)
    filters: list[tuple[str, Any]] = []
    for name in FILTERS:
        if name in params:
            given = params[name]
            if name == "free" and given not in ("true", "false"):
                raise BadRequest("free must be true or false", detail=given, field="free")
            filters.append((name, given == "true" if name == "free" else given))
    near = None
    if "near" in params:
        parts = params["near"].split(",")
        if len(parts) != 2:
            raise BadRequest("near must be latitude,longitude", detail=params["near"], field="near")
        near = (_number({"near": parts[0]}, "near", -90, 90), _number({"near": parts[1]}, "near", -180, 180))
    elif "radius" in params:
        raise BadRequest("radius needs near", field="radius")
    radius = _number(params, "radius", 0.001, MAX_RADIUS_KM) if "radius" in params else 2.0
    limit = int(_number(params, "limit", 1, MAX_LIMIT)) if "limit" in params else 20
    text = params.get("q", "").strip() or None
    if text is not None and not query_tokens(text):
        raise BadRequest("q has no searchable words", detail=text, field="q")
    query = SearchQuery(text, tuple(filters), near, radius, limit)
    if "cursor" in params:
        return SearchQuery(text, tuple(filters), near, radius, limit, _cursor_offset(params["cursor"], query))
    return query


def cursor_for(query: SearchQuery, offset: int) -> str:
    raw = json.dumps({"o": offset, "f": query.fingerprint()}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_offset(cursor: str, query: SearchQuery) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset, fingerprint = int(data["o"]), str(data["f"])
    except (ValueError, KeyError, TypeError):
        raise BadRequest("Invalid cursor", detail="use the cursor of a previous page as given",
                         field="cursor") from None
    if fingerprint != query.fingerprint() or not 0 <= offset <= MAX_OFFSET:
        raise BadRequest("Cursor belongs to another query", field="cursor")
    return offset


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine) in kilometres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def bounding_box(center: tuple[float, float], radius_km: float) -> tuple[float, float, float, float]:
    lat, lon = center
    dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    if abs(lat) + dlat >= 89.9:  # near a pole every longitude is close
        dlon = 180.0
    else:
        dlon = math.degrees(radius_km / (EARTH_RADIUS_KM * math.cos(math.radians(lat))))
    return lat - dlat, lat + dlat, max(-180.0, lon - dlon), min(180.0, lon + dlon)


class _Sql:
    """Parameter placeholders for the dialect at hand ('?' for SQLite, '$n' for PostgreSQL)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.values: list[Any] = []

    def param(self, value: Any) -> str:
        self.values.append(value)
        return "?" if self.dialect == "sqlite" else f"${len(self.values)}"


class Search:
    def __init__(self, store: Store, languages: tuple[str, ...] = ("en",)) -> None:
        self.store = store
        self.languages = languages
        self._browse_cache: tuple[tuple[Any, ...], int, dict[str, dict[str, int]]] | None = None

    def _where(self, query: SearchQuery, sql: _Sql) -> str:
        clauses = ["1 = 1"]  # index rows exist for live records only: Tombstones have none
        if query.text:
            tokens = query_tokens(query.text)
            if sql.dialect == "sqlite":
                match = " ".join('"' + token.replace('"', '""') + '"' for token in tokens)
                matching = f"SELECT rowid FROM record_fts WHERE record_fts MATCH {sql.param(match)}"
                clauses.append(f"i.record_id IN ({matching})")
            else:
                clauses.append(f"i.tsv @@ plainto_tsquery('simple', {sql.param(' '.join(tokens))})")
        for name, value in query.filters:
            if name == "category":
                clauses.append(
                    f"i.record_id IN (SELECT record_id FROM record_category WHERE category = {sql.param(value)})"
                )
            else:
                clauses.append(f"{COLUMN[name]} = {sql.param(value)}")
        if query.near is not None:
            south, north, west, east = bounding_box(query.near, query.radius_km)
            clauses.append(f"i.latitude BETWEEN {sql.param(south)} AND {sql.param(north)}")
            clauses.append(f"i.longitude BETWEEN {sql.param(west)} AND {sql.param(east)}")
        return " AND ".join(clauses)

    async def run(self, query: SearchQuery) -> SearchResult:
        with self.store.bound():
            connection = self.store.connection()
            if query.near is not None:
                return await self._near(connection, query)
            cached = await self._cached_browse(connection, query)
            if cached is not None:
                total, facets = cached
                page_ids = await self._newest(connection, query)
            else:
                total, facets, page_ids = await self._matches(connection, query)
            rows = await self._rows(connection, page_ids)
        items = [self._item(row) for row in rows]
        more = query.offset + len(items) < total and query.offset + query.limit <= MAX_OFFSET
        return SearchResult(total, items, facets, query.offset + query.limit if more else None, query)

    async def _cached_browse(
        self, connection: Any, query: SearchQuery
    ) -> tuple[int, dict[str, dict[str, int]]] | None:
        """Counts of browsing everything, reused until any record changes."""
        if query.text is not None or query.filters:
            return None
        generation = await self._generation(connection)
        if self._browse_cache is not None and self._browse_cache[0] == generation:
            return self._browse_cache[1], self._browse_cache[2]
        return None

    async def _matches(
        self, connection: Any, query: SearchQuery
    ) -> tuple[int, dict[str, dict[str, int]], list[int]]:
        """Total, facet counts and the page's record ids: one pass over the matches' facet columns (a covering
        index serves them, newest first) counted here, and one grouped query for categories."""
        names = [name for name in FILTERS if name != "category"]
        sql = _Sql(self.store.dialect)
        columns = ", ".join(COLUMN[name] for name in names)
        result = await connection.execute_query(
            f"SELECT i.record_id, {columns} FROM record_index i WHERE {self._where(query, sql)} "
            f"ORDER BY i.modified DESC, i.record_id DESC",
            sql.values,
        )
        matches = [tuple(row) for row in (result[1] if isinstance(result, tuple) else result)]
        total = len(matches)
        facets: dict[str, dict[str, int]] = {}
        if total:
            counted = {name: Counter(row[position] for row in matches)
                       for position, name in enumerate(names, start=1)}
            facets = {name: _top({_facet_value(value): n for value, n in counts.items() if value is not None})
                      for name, counts in counted.items()}
            sql = _Sql(self.store.dialect)
            grouped = await connection.execute_query_dict(
                f"SELECT c.category AS value, COUNT(*) AS n FROM record_category c "
                f"JOIN record_index i ON i.record_id = c.record_id WHERE {self._where(query, sql)} GROUP BY c.category",
                sql.values,
            )
            facets["category"] = _top({str(row["value"]): int(row["n"]) for row in grouped})
            facets = {name: facets[name] for name in FILTERS}
        if query.text is None and not query.filters:
            self._browse_cache = (await self._generation(connection), total, facets)
        page = matches[query.offset : query.offset + query.limit]
        return total, facets, [int(row[0]) for row in page]

    async def _newest(self, connection: Any, query: SearchQuery) -> list[int]:
        """One page of everything, newest first, straight from the index."""
        sql = _Sql(self.store.dialect)
        limit, offset = sql.param(query.limit), sql.param(query.offset)
        rows = await connection.execute_query_dict(
            f"SELECT record_id FROM record_index ORDER BY modified DESC, record_id DESC LIMIT {limit} OFFSET {offset}",
            sql.values,
        )
        return [int(row["record_id"]) for row in rows]

    async def _rows(self, connection: Any, ids: list[int]) -> list[dict[str, Any]]:
        """What the page shows of these records, in the given order."""
        if not ids:
            return []
        sql = _Sql(self.store.dialect)
        marks = ", ".join(sql.param(record_id) for record_id in ids)
        rows = await connection.execute_query_dict(
            "SELECT r.id, r.iri, r.type, r.origin, r.document, i.name, i.language, i.latitude, i.longitude, "
            "i.level, i.license, i.free, i.mode FROM record_index i JOIN record r ON r.id = i.record_id "
            f"WHERE i.record_id IN ({marks})",
            sql.values,
        )
        position = {record_id: n for n, record_id in enumerate(ids)}
        return sorted(rows, key=lambda row: position[int(row["id"])])

    async def _generation(self, connection: Any) -> tuple[Any, ...]:
        """Changes whenever any record is written (own or mirrored): the key of the browse cache."""
        rows = await connection.execute_query_dict("SELECT COUNT(*) AS n, MAX(stored_at) AS last FROM record")
        return (rows[0]["n"], str(rows[0]["last"]))

    async def _near(self, connection: Any, query: SearchQuery) -> SearchResult:
        """Places, events and course runs within the radius, nearest first; facets over what is in range."""
        assert query.near is not None
        sql = _Sql(self.store.dialect)
        columns = ", ".join(COLUMN[name] for name in FILTERS if name != "category")
        rows = await connection.execute_query_dict(  # index columns only: documents are read for the page alone
            f"SELECT i.record_id AS id, i.latitude, i.longitude, {columns} FROM record_index i "
            f"WHERE {self._where(query, sql)}",
            sql.values,
        )
        in_range = []
        for row in rows:
            distance = distance_km(query.near, (float(row["latitude"]), float(row["longitude"])))
            if distance <= query.radius_km:
                in_range.append((round(distance, 3), int(row["id"]), row))
        in_range.sort(key=lambda item: (item[0], item[1]))
        facets: dict[str, dict[str, int]] = {}
        ids = [record_id for _, record_id, _ in in_range]
        categories = await self._categories(connection, ids)
        for name in FILTERS:
            counts: dict[str, int] = {}
            for _, record_id, row in in_range:
                values = categories.get(record_id, []) if name == "category" else [row[COLUMN[name].split(".")[1]]]
                for value in values:
                    if value is not None:
                        key = _facet_value(value)
                        counts[key] = counts.get(key, 0) + 1
            facets[name] = dict(sorted(counts.items(), key=lambda p: (-p[1], p[0]))[:FACET_SIZE])
        page = in_range[query.offset : query.offset + query.limit]
        shown = await self._rows(connection, [record_id for _, record_id, _ in page])
        items = [{**self._item(row), "distanceKm": distance} for (distance, _, _), row in zip(page, shown, strict=True)]
        more = query.offset + len(page) < len(in_range)
        return SearchResult(len(in_range), items, facets, query.offset + query.limit if more else None, query)

    async def _categories(self, connection: Any, ids: list[int]) -> dict[int, list[str]]:
        found: dict[int, list[str]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            sql = _Sql(self.store.dialect)
            marks = ", ".join(sql.param(i) for i in chunk)
            rows = await connection.execute_query_dict(
                f"SELECT record_id, category FROM record_category WHERE record_id IN ({marks})", sql.values
            )
            for row in rows:
                found.setdefault(int(row["record_id"]), []).append(str(row["category"]))
        return found

    def _item(self, row: dict[str, Any]) -> dict[str, Any]:
        document = json.loads(row["document"])
        description = texts(document.get("description") or document.get("definition"), self.languages)
        return {
            "id": row["iri"], "type": row["type"], "name": row["name"], "origin": row["origin"],
            "description": description[0][:300] if description else None, "language": row["language"],
            "categories": [c for c in _ids(document.get("about"))], "latitude": row["latitude"],
            "longitude": row["longitude"], "level": row["level"], "license": row["license"],
            "free": None if row["free"] is None else bool(row["free"]), "mode": row["mode"],
        }


def _top(counts: dict[str, int]) -> dict[str, int]:
    """The most frequent facet values, most frequent first, ties by value."""
    return dict(sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:FACET_SIZE])


def _facet_value(value: Any) -> str:
    if isinstance(value, bool) or (value in (0, 1) and not isinstance(value, str)):
        return "true" if value else "false"
    return str(value)


def _ids(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [item if isinstance(item, str) else str(item.get("id")) for item in items
            if isinstance(item, str) or (isinstance(item, dict) and "id" in item)]
