"""The pages as a person uses them, in a real headless browser (the system's Chromium, driven by Playwright).

One node holding the three sample catalogs (and a record whose name is an HTML injection attempt) is served on
loopback for the whole module, in a thread of its own; the map's tile server is set to a closed loopback port, so
no tile ever loads. Every page is checked for console errors and Content-Security-Policy violations.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import threading
import tomllib
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
import tomli_w
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, sync_playwright

from node.catalog.importer import import_file
from node.config import CONFIG_FILE, DEFAULT_TILE_URL, WebOptions
from node.demo import samples_dir
from node.web.pages import map_csp, tile_options
from tests.conftest import POSTGRES_URL, _asyncpg_dsn, _with_database
from tests.harness import RunningNode, free_port, running_node

CHROMIUM = os.environ.get("EDUFED_CHROMIUM", "/usr/bin/chromium")
PIAZZA_MAGGIORE = "44.4938,11.3430"
EVIL_NAME = "<script>document.title='owned'</script><img src=x onerror=alert(1)> Zanzibar reading room"
EVIL_PLACE: dict[str, Any] = {
    "@context": "https://w3id.org/edufed/v1",
    "type": "Place",
    "name": {"en": EVIL_NAME},
    "description": "A record whose name tries to run a script: the pages must show it as text.",
    "geo": {"type": "GeoCoordinates", "latitude": 44.4950, "longitude": 11.3445},
}



class NodeInThread:
    """A real node on its own event loop in a thread, so the synchronous Playwright API can drive it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.database = ""
        self.context: AbstractAsyncContextManager[RunningNode] | None = None
        self.node: RunningNode | None = None
        self.tile_port = free_port()  # nothing listens there: every tile fails

    def run(self, coroutine: Any, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> RunningNode:
        self.thread.start()
        self.run(self._start())
        assert self.node is not None
        return self.node

    @property
    def tile_url(self) -> str:
        return f"http://127.0.0.1:{self.tile_port}/tiles/{{z}}/{{x}}/{{y}}.png"

    def _set_tiles(self) -> None:
        """The node's ``[web]`` tile server: a closed loopback port."""
        path = self.data_dir / CONFIG_FILE
        raw = tomllib.loads(path.read_text("utf-8"))
        raw["web"] = {**raw.get("web", {}), "tile_url": self.tile_url, "tile_attribution": "no tiles here"}
        path.write_text(tomli_w.dumps(raw), "utf-8")

    async def _start(self) -> None:
        if POSTGRES_URL:
            name = f"edufed_t_{secrets.token_hex(6)}"
            admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            self.database = name
            url = _with_database(POSTGRES_URL, name)
        else:
            url = f"sqlite://{self.data_dir.parent / 'browser.sqlite3'}"
        async with running_node(self.data_dir, url, "Browser") as first:
            for city in ("shanghai-xuhui", "helsinki", "bologna"):
                written, rejected = await import_file(first.config, first.services.store,
                                                      samples_dir() / f"{city}.csv")
                assert written and not rejected
            await first.publish(EVIL_PLACE)
        # Served again with [web] in its config file, read whether at load time or by the page.
        self._set_tiles()
        self.context = running_node(self.data_dir, url, "Browser")
        self.node = await self.context.__aenter__()
        self._set_tiles()

    async def _stop(self) -> None:
        if self.context is not None:
            await self.context.__aexit__(None, None, None)
        if self.database:
            admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            finally:
                await admin.close()

    def stop(self) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeInThread]:
    holder = NodeInThread(tmp_path_factory.mktemp("browser") / "node")
    holder.start()
    try:
        yield holder
    finally:
        holder.stop()


@pytest.fixture(scope="module")
def base_url(served: NodeInThread) -> str:
    assert served.node is not None
    return served.node.base_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A page with what went wrong on it: console errors, CSP violations, uncaught exceptions, dialogs."""

    def __init__(self, page: Page, allowed_failures: str | None) -> None:
        self.page = page
        self.problems: list[str] = []
        self.allowed_failures = allowed_failures
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        page.on("dialog", self._dialog)

    def _console(self, message: ConsoleMessage) -> None:
        where = message.location.get("url", "") if message.location else ""
        if message.type == "error" or "Content Security Policy" in message.text:
            failed_tile = self.allowed_failures and where.startswith(self.allowed_failures) and (
                message.text.startswith("Failed to load resource"))
            if not failed_tile:
                self.problems.append(f"console {message.type}: {message.text} ({where})")

    def _dialog(self, dialog: Dialog) -> None:
        self.problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def csp_violations(self) -> list[str]:
        """What the page's securitypolicyviolation listener saw (nothing to see where JavaScript is off)."""
        found: list[str] = self.page.evaluate("window.__cspViolations || []")
        return found

    def assert_clean(self) -> None:
        assert self.problems == []
        assert self.csp_violations() == []


CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


@pytest.fixture
def page(browser: Browser, served: NodeInThread) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.add_init_script(CSP_RECORDER)
    watched = Watched(context.new_page(), f"http://127.0.0.1:{served.tile_port}/")
    watched.page.set_default_timeout(10_000)
    try:
        yield watched
    finally:
        context.close()


@pytest.fixture
def no_js_page(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    watched = Watched(context.new_page(), None)
    watched.page.set_default_timeout(10_000)
    try:
        yield watched
    finally:
        context.close()


def results_total(page: Page) -> int:
    heading = page.locator("#results-heading").inner_text()
    found = re.match(r"(\d+) results?", heading)
    assert found, heading
    return int(found.group(1))


def test_a_person_searches_a_word_and_opens_the_record(page: Watched, base_url: str) -> None:
    page.page.goto(f"{base_url}/search")
    page.page.fill("#q", "ceramics")
    page.page.click("form.search button[type=submit]")
    page.page.wait_for_url(re.compile(r"/search\?.*q=ceramics"))
    names = page.page.locator("li.result .result-name")
    assert "ceramics" in " ".join(names.all_inner_texts()).lower()
    link = page.page.locator("li.result .result-name[href$='/records/bo-course-ceramics-01']")
    name = link.inner_text()
    assert results_total(page.page) == names.count() >= 1
    link.click()
    page.page.wait_for_url(re.compile(r"/records/bo-course-ceramics-01$"))
    assert page.page.locator("h1").inner_text() == name
    assert page.page.locator("section.provenance").is_visible()
    page.assert_clean()


def test_a_facet_narrows_the_search_and_its_count_matches(page: Watched, base_url: str) -> None:
    page.page.goto(f"{base_url}/search")
    everything = results_total(page.page)
    assert everything == 95
    course = page.page.locator("section.facet[data-facet=type] li", has_text="Course").first
    count = int(course.locator(".count").inner_text())
    course.locator("a").click()
    page.page.wait_for_url(re.compile(r"type=Course"))
    assert results_total(page.page) == count < everything
    assert set(page.page.locator("li.result .kind").all_inner_texts()) == {"Course"}
    # The category facet shows the scheme's label, and its count is the filtered total too.
    arts = page.page.locator("section.facet[data-facet=category] li", has_text="Arts and humanities")
    arts_count = int(arts.locator(".count").inner_text())
    arts.locator("a").click()
    page.page.wait_for_url(re.compile(r"category=https%3A%2F%2Fw3id\.org%2Fedufed%2Fschemes%2Fisced-f%2F02"))
    assert results_total(page.page) == arts_count
    query = parse_qs(urlsplit(page.page.url).query)
    assert query["type"] == ["Course"] and query["category"] == ["https://w3id.org/edufed/schemes/isced-f/02"]
    assert "Arts and humanities" in page.page.locator(".active-filters").inner_text()
    page.assert_clean()


def test_pages_follow_the_cursor_and_a_miss_says_so(page: Watched, base_url: str) -> None:
    page.page.goto(f"{base_url}/search?type=Place")
    first = page.page.locator("li.result .result-name").all_inner_texts()
    total = results_total(page.page)
    seen = list(first)
    while page.page.locator("a.next").count():
        page.page.click("a.next")
        page.page.wait_for_load_state()
        seen.extend(page.page.locator("li.result .result-name").all_inner_texts())
    assert len(seen) == total == 29 and len(first) == 20
    page.page.goto(f"{base_url}/search?q=zeppelin")
    assert results_total(page.page) == 0
    assert page.page.locator(".no-results").is_visible()
    page.assert_clean()


def test_the_map_shows_markers_and_the_list_when_no_tiles_load(page: Watched, base_url: str,
                                                               served: NodeInThread) -> None:
    failed_tiles: list[str] = []
    page.page.on("requestfailed", lambda request: failed_tiles.append(request.url))
    page.page.goto(f"{base_url}/map?near={PIAZZA_MAGGIORE}&radius=2")
    markers = page.page.locator("#map .leaflet-marker-icon")
    markers.first.wait_for()
    listed = page.page.locator("ol.places li.place a").all_inner_texts()
    assert markers.count() == len(listed) >= 5
    titles = [markers.nth(i).get_attribute("title") for i in range(markers.count())]
    assert titles == [f"{i + 1}. {name}" for i, name in enumerate(listed)]
    assert page.page.locator("ol.places").is_visible()
    assert page.page.locator("#map").is_visible() and not page.page.locator("svg.points-picture").is_visible()
    page.page.wait_for_load_state("networkidle")
    assert failed_tiles and all(url.startswith(f"http://127.0.0.1:{served.tile_port}/tiles/") for url in failed_tiles)
    csp = page.page.evaluate("fetch(location.href).then(r => r.headers.get('content-security-policy'))")
    assert f"img-src 'self' data: http://127.0.0.1:{served.tile_port};" in csp and "script-src 'self';" in csp
    markers.first.click()
    assert page.page.locator(".leaflet-popup-content a").inner_text() == listed[0]
    page.assert_clean()


def test_without_javascript_the_picture_and_the_list_show_the_same_points(no_js_page: Watched,
                                                                          base_url: str) -> None:
    page = no_js_page.page
    page.goto(f"{base_url}/map?near={PIAZZA_MAGGIORE}&radius=2")
    picture = page.locator("svg.points-picture")
    assert picture.is_visible() and not page.locator("#map").is_visible()
    dots = picture.locator("circle.point title").all_text_contents()
    listed = page.locator("ol.places li.place")
    assert len(dots) == listed.count() >= 5
    for index, dot in enumerate(dots):
        item = listed.nth(index)
        name = item.locator("a").inner_text()
        distance = item.locator(".distance").inner_text()
        assert dot == f"{index + 1}. {name} ({item.locator('.kind').inner_text()}, {distance})"
        assert picture.locator("a.dot").nth(index).get_attribute("href") == item.locator("a").get_attribute("href")
    radius = picture.locator("circle.radius")
    centre = picture.locator("g.centre circle")
    assert radius.get_attribute("cx") == centre.get_attribute("cx")
    distances = [float(text.split()[0]) for text in listed.locator(".distance").all_inner_texts()]
    assert distances == sorted(distances) and distances[-1] <= 2.0
    # Every dot lies inside the drawn radius circle.
    r, cx, cy = (float(radius.get_attribute(a) or 0) for a in ("r", "cx", "cy"))
    for circle in picture.locator("circle.point").all():
        x, y = float(circle.get_attribute("cx") or 0), float(circle.get_attribute("cy") or 0)
        assert (x - cx) ** 2 + (y - cy) ** 2 <= (r + 1) ** 2
    no_js_page.assert_clean()


def test_a_record_with_a_point_links_to_the_map(page: Watched, base_url: str) -> None:
    page.page.goto(f"{base_url}/records/bo-place-library-01")
    page.page.click(".on-map a")
    page.page.wait_for_url(re.compile(r"/map\?near=44\.4885%2C11\.352$"))
    assert page.page.locator("ol.places li.place").first.locator("a").get_attribute("href", timeout=5000) == (
        f"{base_url}/records/bo-place-library-01")
    page.page.goto(f"{base_url}/records/bo-course-ceramics-01")
    assert page.page.locator(".on-map").count() == 0
    page.assert_clean()


def test_the_map_without_a_centre_opens_on_the_nodes_places(page: Watched, base_url: str) -> None:
    page.page.goto(f"{base_url}/map")
    near = page.page.locator("#near").input_value()
    assert re.fullmatch(r"-?\d+(\.\d+)?,-?\d+(\.\d+)?", near)
    page.page.locator("#map .leaflet-marker-icon").first.wait_for()
    assert page.page.locator("ol.places li.place").count() >= 5
    page.assert_clean()


def test_a_name_with_a_script_is_shown_as_text(page: Watched, base_url: str) -> None:
    page.page.goto(f"{base_url}/search?q=zanzibar")
    assert page.page.locator("li.result .result-name").inner_text() == EVIL_NAME
    assert page.page.locator("main script, main img").count() == 0
    page.page.click("li.result .result-name")
    page.page.wait_for_load_state()
    assert page.page.locator("h1").inner_text() == EVIL_NAME
    assert page.page.title() != "owned" and page.page.locator("main img").count() == 0
    page.page.goto(f"{base_url}/map?near={PIAZZA_MAGGIORE}&radius=2")
    page.page.locator("#map .leaflet-marker-icon").first.wait_for()
    assert EVIL_NAME in page.page.locator("ol.places").inner_text()
    markers = page.page.locator("#map .leaflet-marker-icon")
    evil = [i for i in range(markers.count()) if markers.nth(i).get_attribute("alt") == EVIL_NAME]
    assert len(evil) == 1
    markers.nth(evil[0]).press("Enter")  # a keyboard user; the marker sits under its neighbour
    assert page.page.locator(".leaflet-popup-content a").inner_text() == EVIL_NAME
    assert page.page.locator("main script").count() == 1  # only the JSON data block
    assert page.page.title() != "owned"
    page.assert_clean()


def test_pages_work_on_a_phone_without_javascript(no_js_page: Watched, base_url: str) -> None:
    page = no_js_page.page
    page.goto(f"{base_url}/search?q=library")
    assert results_total(page) >= 1
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    page.locator("section.facet[data-facet=origin] a").first.click()
    assert results_total(page) >= 1 and "origin=" in page.url
    no_js_page.assert_clean()


def test_the_tile_server_comes_from_the_config_and_a_bad_one_is_refused() -> None:
    """Only a well-formed http(s) template reaches the page's CSP (img-src); anything else falls back."""

    def options(url: str, attribution: str = "Tiles: example") -> Any:
        return SimpleNamespace(web=WebOptions(tile_url=url, tile_attribution=attribution))

    assert tile_options(SimpleNamespace(web=WebOptions())).url == DEFAULT_TILE_URL
    tiles = tile_options(options("https://{s}.tiles.example/{z}/{x}/{y}.png"))
    assert (tiles.url, tiles.attribution, tiles.origin) == (
        "https://{s}.tiles.example/{z}/{x}/{y}.png", "Tiles: example", "https://*.tiles.example")
    assert "img-src 'self' data: https://*.tiles.example;" in map_csp(tiles)
    for bad in ("https://tiles.example/{z}/{x}/{y}.png; script-src *", "javascript:alert(1)//{z}{x}{y}",
                "https://tiles.example/no-placeholders.png", "https://a b/{z}/{x}/{y}.png"):
        assert tile_options(options(bad)).url == DEFAULT_TILE_URL, bad


WALLET_CREDENTIAL = {
    "@context": ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"],
    "type": ["VerifiableCredential", "OpenBadgeCredential"],
    "credentialSubject": {"type": ["AchievementSubject"], "achievement": {
        "id": "https://example.org/achievements/glaze", "type": ["Achievement"], "name": "Glaze chemistry"}},
}


def test_staff_offer_a_credential_as_a_qr_code_and_a_verifier_asks_with_one(page: Watched, base_url: str,
                                                                            served: NodeInThread) -> None:
    """[WAL-12] The QR codes of an offer and of a presentation request render, drawn by the node as SVG."""
    assert served.node is not None
    page.page.goto(f"{base_url}/wallets/offer")
    page.page.fill("#token", served.node.token)
    page.page.fill("#credential", json.dumps(WALLET_CREDENTIAL))
    page.page.check("input[name=txCode]")
    page.page.click("form.verify button[type=submit]")
    qr = page.page.locator("figure.qr svg")
    box = qr.bounding_box()
    assert box is not None and box["width"] >= 150 and box["width"] == box["height"]
    assert re.fullmatch(r"\d{6}", page.page.locator("strong.pin").inner_text())
    link = page.page.locator("a", has_text="Open in a wallet").get_attribute("href")
    assert link and link.startswith("openid-credential-offer://?credential_offer_uri=")
    page.assert_clean()
    page.page.goto(f"{base_url}/wallets/verify")
    page.page.click("form.verify button[type=submit]")
    box = page.page.locator("figure.qr svg").bounding_box()
    assert box is not None and box["width"] >= 150
    page.page.locator("a", has_text="the answer").click()
    assert "Waiting for the wallet" in page.page.locator("main").inner_text()
    page.assert_clean()
