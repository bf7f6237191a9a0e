"""The specification renders to HTML whose links and anchors all work, and its registries (chapter 15) match
the code and vocabulary they list, so neither can silently go stale."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote, urlsplit

import pytest

from node.config import NodeConfig, save
from node.web.problems import _HTTP_TITLES

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "protocol_spec"
REQUIREMENT = re.compile(r"`\[([A-Z]+(?:-[A-Z]+)*-\d+)\]`")
FENCE = re.compile(r"```.*?```", re.S)
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def _load_renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("spec_render", SPEC / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["spec_render"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


render = _load_renderer()


class StrictPage(HTMLParser):
    """Parses a page, failing on a misnested or unclosed element; collects ids and link targets."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.append(str(values["id"]))
        if tag in ("a", "link") and values.get("href"):
            self.hrefs.append(str(values["href"]))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            return
        self.stack.pop()


def _markdown_sources() -> list[Path]:
    return [SPEC / "README.md", *render.chapter_files()]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StrictPage]:
    out = tmp_path_factory.mktemp("spec") / "html"
    render.render(out)
    pages = {}
    for path in sorted(out.rglob("*.html")):
        parser = StrictPage()
        parser.feed(path.read_text("utf-8"))
        parser.close()
        pages[path.relative_to(out).as_posix()] = parser
    return pages


def test_every_chapter_is_rendered(site: dict[str, StrictPage]) -> None:
    numbers = [int(p.name[:2]) for p in render.chapter_files()]
    assert numbers == list(range(len(numbers))) and len(numbers) >= 17, "chapters 00 to 16 at least, none missing"
    expected = {"index.html", "requirements.html", "examples/index.html"}
    expected |= {p.with_suffix(".html").name for p in render.chapter_files()}
    assert expected <= set(site)


def test_every_page_parses(site: dict[str, StrictPage]) -> None:
    for name, page in site.items():
        assert page.errors == [], name
        assert page.stack == [], f"{name}: unclosed {page.stack}"
        duplicates = {i for i in page.ids if page.ids.count(i) > 1}
        assert not duplicates, f"{name}: duplicate ids {duplicates}"


def test_every_internal_link_resolves(site: dict[str, StrictPage]) -> None:
    checked = 0
    for name, page in site.items():
        for href in page.hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc:
                continue
            target = name if not parts.path else (Path(name).parent / unquote(parts.path)).as_posix()
            target = re.sub(r"[^/]+/\.\./", "", target)
            assert ".md" not in parts.path, f"{name}: {href} still points at Markdown"
            if target.endswith(".html"):
                assert target in site, f"{name}: {href} -> no page {target}"
                if parts.fragment:
                    assert parts.fragment in site[target].ids, f"{name}: {href} -> no anchor"
            else:
                assert target in {"style.css"} or target.startswith("examples/"), f"{name}: {href}"
            checked += 1
    assert checked > 500  # chapters, sections and requirement references all link


def test_section_mentions_become_links(site: dict[str, StrictPage]) -> None:
    assert "07-sync-and-trust.html#7.8-what-never-federates" in site["08-credentials.html"].hrefs
    assert "#6.3.3-the-delivery-queue" in site["06-feed-and-push.html"].hrefs


def test_every_requirement_id_is_one_unique_anchor(site: dict[str, StrictPage]) -> None:
    """Each id mentioned anywhere is anchored exactly once in the whole spec, and listed on the index page."""
    mentioned = {rid for path in _markdown_sources()
                 for rid in REQUIREMENT.findall(FENCE.sub("", path.read_text("utf-8")))}
    anchors = [i for name, page in site.items() if name != "requirements.html" for i in page.ids
               if re.fullmatch(r"[A-Z]+(?:-[A-Z]+)*-\d+", i)]
    assert sorted(anchors) == sorted(set(anchors)), "a requirement anchored twice"
    assert set(anchors) == mentioned
    assert "index.html" not in {name for name, page in site.items() if set(page.ids) & mentioned}
    listed = {urlsplit(h).fragment for h in site["requirements.html"].hrefs if "#" in h}
    assert mentioned <= listed


def test_forward_references_point_at_the_statement(site: dict[str, StrictPage]) -> None:
    """A mention that names its section before the statement (08 -> 10) must not take the anchor."""
    assert "CRED-CONV-7" in site["10-credit-conversion.html"].ids
    assert "10-credit-conversion.html#CRED-CONV-7" in site["08-credentials.html"].hrefs
    assert "PRIV-1" in site["07-sync-and-trust.html"].ids


# -- registries (chapter 15) ---------------------------------------------------------------------------------------

REGISTRIES = (SPEC / "15-registries.md").read_text("utf-8")


def _section(number: str) -> str:
    match = re.search(rf"^## {re.escape(number)} .*?(?=^## |\Z)", REGISTRIES, re.M | re.S)
    assert match, number
    return match.group(0)


def _table_rows(number: str) -> list[list[str]]:
    rows = [line for line in _section(number).splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]


def _first_column(number: str, index: int = 0) -> list[str]:
    return [re.sub(r"`", "", row[0]) for row in _table_rows(number)[index:]]


def test_the_vocabulary_table_equals_the_context_files() -> None:
    table = [line for line in _section("15.2").splitlines() if line.startswith("|")]
    assert "\n".join(table) == render.vocabulary_table()
    assert len(table) - 2 == len(render.vocabulary_terms()) > 100


def test_record_types_map_to_their_classes_and_shapes() -> None:
    """[REC-3]"""
    terms = {term: iri for _, term, iri, _ in render.vocabulary_terms()}
    shapes = (ROOT / "vocab" / "v1" / "shapes.ttl").read_text("utf-8")
    stated = re.search(r"one of (.*?), or `Tombstone`", (SPEC / "02-records.md").read_text("utf-8"))
    assert stated
    rows = _table_rows("15.1")
    assert [r[0].strip("`") for r in rows] == [*re.findall(r"`(\w+)`", stated.group(1)), "Tombstone"]
    for name, iri, shape, _ in rows:
        assert terms[name.strip("`")] == iri.strip("`")
        assert f"efsh:{shape.strip('`')}" in shapes


def _codes_in_node() -> set[str]:
    codes: set[str] = set()
    for path in (ROOT / "node").rglob("*.py"):
        text = path.read_text("utf-8")
        codes |= set(re.findall(r'\bcode\s*=\s*"([a-z-]+)"', text))
        codes |= set(re.findall(r'PROBLEM_BASE \+ "([a-z-]+)"', text))
        codes |= set(re.findall(r'_HTTP_TITLES\.get\([^,]+, \("([a-z-]+)"', text))
    return codes | {code for code, _ in _HTTP_TITLES.values()}


def test_every_problem_type_used_in_node_is_registered() -> None:
    """[ERR-1]"""
    registered = _first_column("15.3")
    assert len(registered) == len(set(registered))
    used = _codes_in_node()
    assert {"replay", "http-error", "not-ready", "method-not-allowed", "shape-violation"} <= used
    assert used - {"internal-error"} <= set(registered), f"unregistered: {sorted(used - set(registered))}"
    assert set(registered) <= used, f"registered but unused: {sorted(set(registered) - used)}"


def test_verification_check_names_are_the_implementation_s() -> None:
    """[VC-7] [VC-13] [PRF-4]"""
    source = (ROOT / "node" / "credentials" / "verification.py").read_text("utf-8")
    literals = set(re.findall(r'"([a-z]+)"', source))
    first_table = _section("15.4").split("Check names of a Data Integrity proof")[0]
    credential_checks = re.findall(r"^\| `([a-z]+)` \|", first_table, re.M)
    assert set(re.findall(r'\.add\("([a-z]+)"', source)) <= set(credential_checks) <= literals
    assert {"structure", "issuer", "proof", "context", "validity", "status", "schema", "challenge", "domain",
            "holder"} == set(credential_checks)
    proofs = (ROOT / "node" / "trust" / "proofs.py").read_text("utf-8")
    docstring = re.search(r"Checks: (.*?)\.\n", proofs, re.S)
    assert docstring
    named = re.findall(r"``([a-z-]+)``", docstring.group(1))
    proof_rows = [line for line in _section("15.4").split("Check names of a Data Integrity proof")[1].splitlines()
                  if line.startswith("| `")]
    assert sorted(re.match(r"\| `([a-z-]+)`", r).group(1) for r in proof_rows) == sorted(named)  # type: ignore[union-attr]
    assert all(f'"{name}"' in proofs for name in named)


def test_every_config_key_is_listed(tmp_path: Path) -> None:
    config = NodeConfig(tmp_path, "n", "https://n.example", "sqlite://x", "0" * 64, country="GB", city="Leeds")
    save(config)
    written = tomllib.loads((tmp_path / "edufed.toml").read_text("utf-8"))
    keys = {f"[{table}] {key}" for table, values in written.items() for key in values}
    listed = _first_column("15.9")
    assert len(listed) == len(set(listed))
    assert set(listed) == keys


def test_activity_types_cover_what_the_node_builds() -> None:
    source = (ROOT / "node" / "federation" / "activities.py").read_text("utf-8")
    built = set(re.findall(r'"type": "([A-Z]\w+)"', source)) - {"Note"}
    assert built | {"Update", "Delete"} <= set(_first_column("15.5"))
