"""What a record contributes to the search index: derived from the signed JSON, written with it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from node.catalog.tokens import indexed
from node.store.records import IndexEntry


def texts(value: Any, preferred: tuple[str, ...] = ()) -> list[str]:
    """Every string in a plain value, a list, or a language map (``{"en": ..., "zh": ...}``).

    Strings of a preferred language come first, so ``texts(name)[0]`` is the best display name.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in texts(item, preferred)]
    if isinstance(value, dict):
        if "@value" in value:
            return [str(value["@value"])]
        rank = {lang: n for n, lang in enumerate(preferred)}
        languages = sorted(value, key=lambda lang: (rank.get(lang, len(rank)), lang))
        return [text for lang in languages for text in texts(value[lang])]
    return [str(value)]


def _ids(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict) and isinstance(value.get("id"), str):
        yield value["id"]
    elif isinstance(value, list):
        for item in value:
            yield from _ids(item)


def _first_number(*candidates: Any) -> float | None:
    for candidate in candidates:
        try:
            return float(candidate)
        except (TypeError, ValueError):
            continue
    return None


def _coordinates(document: dict[str, Any]) -> tuple[float | None, float | None]:
    """The record's point: its own ``geo``, else its ``location``'s (a course run or event at a place)."""
    holders: list[Any] = [document]
    location = document.get("location")
    holders.extend(location if isinstance(location, list) else [location])
    for holder in holders:
        if isinstance(holder, dict) and isinstance(holder.get("geo"), dict):
            geo = holder["geo"]
            lat, lon = _first_number(geo.get("latitude")), _first_number(geo.get("longitude"))
            if lat is not None and lon is not None:
                return lat, lon
    return None, None


def index_entry(document: dict[str, Any], preferred_languages: tuple[str, ...] = ("en",)) -> IndexEntry:
    """The index row of a live record (tombstones have none)."""
    names = texts(document.get("name") or document.get("prefLabel"), preferred_languages)
    words = [
        *names,
        *texts(document.get("description") or document.get("definition"), preferred_languages),
        *texts(document.get("keywords"), preferred_languages),
    ]
    language = document.get("inLanguage")
    languages = language if isinstance(language, list) else [language]
    latitude, longitude = _coordinates(document)
    text = "\n".join(words)
    return IndexEntry(
        type=str(document.get("type")),
        name=names[0] if names else "",
        text=text,
        language=next((lang for lang in languages if isinstance(lang, str)), None),
        categories=tuple(dict.fromkeys(_ids(document.get("about")))),
        latitude=latitude,
        longitude=longitude,
        level=_short(document.get("educationalLevel")),
        license=_short(document.get("license")),
        free=document.get("isAccessibleForFree") if isinstance(document.get("isAccessibleForFree"), bool) else None,
        mode=_short(document.get("courseMode") or document.get("eventAttendanceMode")),
        tokens=indexed(text),
    )


def _short(value: Any) -> str | None:
    """A facet value: the first string of a value or list, bounded in length."""
    first = next((v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)), None)
    return first[:255] if first else None
