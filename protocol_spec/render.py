"""Render the EduFed specification (README.md and every chapter) to HTML.

Why a renderer of our own around Python-Markdown: the spec's cross references are plain text ("section 7.8",
"`[PRIV-1]`"), which must become working links, and each requirement id needs exactly one anchor (where the
requirement is stated) so that tests, the conformance report and readers can point at it.

    python protocol_spec/render.py [--out DIR]          # HTML into DIR (default protocol_spec/_build)
    python protocol_spec/render.py --vocabulary-table   # the term table of 15-registries.md, from the contexts

Rules: a requirement is *defined* at the first mention of its id in the chapters, in order, unless the mention
names a section next to it ("(section 10.3, `[CRED-CONV-7]`)" or "(`[PRIV-1]`, section 7.8)"), which marks a
reference; every other mention links to the definition. README.md only refers.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import markdown

SPEC = Path(__file__).resolve().parent
ROOT = SPEC.parent
DEFAULT_OUT = SPEC / "_build"
CONTEXT_FILES = (ROOT / "vocab" / "v1" / "context.jsonld", ROOT / "vocab" / "v1" / "credentials-context.jsonld")

REQUIREMENT = re.compile(r"<code>\[([A-Z]+(?:-[A-Z]+)*-\d+)\]</code>")
SECTION_BEFORE = re.compile(r"sections? \d+(?:\.\d+)*,\s*$")
SECTION_AFTER = re.compile(r"^,\s*sections? \d")
SECTION_MENTION = re.compile(r"\b([Ss]ections? )(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^(#{1,6}) (\d+(?:\.\d+)*)\.? (.*)$", re.M)
SKIPPED_ELEMENTS = ("pre", "code", "a", "h1", "h2", "h3", "h4", "h5", "h6")

STYLE = """body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:0 1rem 4rem;color:#1b1b1b}
nav.chapters{font-size:.9rem;border-bottom:1px solid #ccc;padding:.5rem 0}nav.chapters a{margin-right:.6rem}
nav.toc{background:#f5f5f5;padding:.5rem 1rem;margin:1rem 0}pre{background:#f5f5f5;padding:.6rem;overflow:auto}
code{font-size:.92em}table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;
vertical-align:top}a.req{font-weight:600}a.req-ref{text-decoration:none}:target{background:#fff3b0}
nav.pager{display:flex;justify-content:space-between;border-top:1px solid #ccc;margin-top:2rem;padding-top:.5rem}
"""


def slugify(value: str, separator: str = "-") -> str:
    """Heading ids that keep section numbers readable: "2.1 Shape of a record" -> "2.1-shape-of-a-record"."""
    value = re.sub(r"(\d)\.(?=\s)", r"\1", value.strip().lower())
    value = re.sub(r"[^\w.\s-]", "", value)
    return re.sub(r"\s+", separator, value).strip(separator)


def chapter_files(spec: Path = SPEC) -> list[Path]:
    """The chapters in reading order (NN-name.md)."""
    return sorted(spec.glob("[0-9][0-9]-*.md"))


@dataclass
class Page:
    source: Path
    title: str
    body: str = ""
    toc: str = ""

    @property
    def target(self) -> str:
        return "index.html" if self.source.name == "README.md" else self.source.with_suffix(".html").name


@dataclass
class Spec:
    pages: list[Page] = field(default_factory=list)
    definitions: dict[str, Page] = field(default_factory=dict)  # requirement id -> page that states it
    sections: dict[str, tuple[str, str]] = field(default_factory=dict)  # "7.8" -> (file, anchor)


def _title(text: str, fallback: str) -> str:
    match = re.search(r"^# (.+)$", text, re.M)
    return re.sub(r"`([^`]*)`", r"\1", match.group(1)).strip() if match else fallback


def _convert(text: str) -> tuple[str, str]:
    md = markdown.Markdown(extensions=["tables", "fenced_code", "toc"],
                           extension_configs={"toc": {"slugify": slugify, "toc_depth": "2-3"}})
    body = md.convert(text)
    return body, str(getattr(md, "toc", ""))


def _is_reference(body: str, match: re.Match[str]) -> bool:
    before = re.sub(r"<[^>]+>", "", body[max(0, match.start() - 80):match.start()])
    after = re.sub(r"<[^>]+>", "", body[match.end():match.end() + 40])
    return bool(SECTION_BEFORE.search(before) or SECTION_AFTER.match(after))


def _link_requirements(spec: Spec, page: Page) -> None:
    """The defining mention becomes the anchor (id = the requirement id); every other mention links to it."""
    anchored: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        rid = match.group(1)
        owner = spec.definitions.get(rid)
        if owner is page and rid not in anchored and not _is_reference(page.body, match):
            anchored.add(rid)
            return f'<a class="req" id="{rid}" href="#{rid}">{match.group(0)}</a>'
        href = f"{owner.target}#{rid}" if owner is not None else f"requirements.html#{rid}"
        return f'<a class="req-ref" href="{href}">{match.group(0)}</a>'

    page.body = REQUIREMENT.sub(replace, page.body)


def _link_sections(spec: Spec, page: Page) -> None:
    """Turn "section 7.8" in running text (not in code, links or headings) into a link to that section."""
    out, depth = [], 0
    for token in re.split(r"(<[^>]+>)", page.body):
        tag = re.match(r"<(/?)(\w+)", token)
        if tag and tag.group(2) in SKIPPED_ELEMENTS:
            depth += -1 if tag.group(1) else 1
        elif not tag and depth == 0 and token:
            token = SECTION_MENTION.sub(lambda m: _section_link(spec, page, m), token)
        out.append(token)
    page.body = "".join(out)


def _section_link(spec: Spec, page: Page, match: re.Match[str]) -> str:
    target = spec.sections.get(match.group(2))
    if target is None:
        return match.group(0)
    file, anchor = target
    href = f"#{anchor}" if file == page.target else f"{file}#{anchor}"
    return f'{match.group(1)}<a href="{href}">{match.group(2)}</a>'


def _rewrite_links(body: str) -> str:
    """Links between chapters point at the rendered pages; the examples folder at its listing."""
    body = re.sub(r'href="README\.md(#[^"]*)?"', lambda m: f'href="index.html{m.group(1) or ""}"', body)
    body = re.sub(r'href="([\w.-]+)\.md(#[^"]*)?"', lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', body)
    return body.replace('href="examples/"', 'href="examples/index.html"')


def build(spec_dir: Path = SPEC) -> Spec:
    """Parse and cross-link every page (nothing is written)."""
    spec = Spec()
    chapters = chapter_files(spec_dir)
    for source in [*chapters, spec_dir / "README.md"]:
        text = source.read_text("utf-8")
        page = Page(source, _title(text, source.stem))
        page.body, page.toc = _convert(text)
        spec.pages.append(page)
        for heading in HEADING.finditer(text):
            spec.sections.setdefault(heading.group(2), (page.target, slugify(f"{heading.group(2)} {heading.group(3)}")))
    for page in spec.pages[:-1]:  # chapters define, README only refers
        for match in REQUIREMENT.finditer(page.body):
            if not _is_reference(page.body, match):
                spec.definitions.setdefault(match.group(1), page)
    for page in spec.pages:
        _link_requirements(spec, page)
        _link_sections(spec, page)
        page.body = _rewrite_links(page.body)
    return spec


def _requirement_key(rid: str) -> tuple[str, int]:
    prefix, number = rid.rsplit("-", 1)
    return prefix, int(number)


def _layout(spec: Spec, title: str, body: str, toc: str = "", index: int | None = None, root: str = "") -> str:
    """A whole page; ``root`` is the way back to the output folder from the page ("../" for examples/)."""
    chapters = " ".join(f'<a href="{root}{p.target}">{html.escape(p.title.split(" ", 1)[0])}</a>'
                        for p in spec.pages[:-1])
    nav = (f'<nav class="chapters"><a href="{root}index.html">Contents</a> {chapters} '
           f'<a href="{root}requirements.html">Requirements</a></nav>')
    pager = ""
    if index is not None:
        order = [spec.pages[-1], *spec.pages[:-1]]
        before = order[index - 1]
        prev = f'<a href="{before.target}">← {html.escape(before.title)}</a>' if index else "<span></span>"
        nxt = (f'<a href="{order[index + 1].target}">{html.escape(order[index + 1].title)} →</a>'
               if index + 1 < len(order) else '<a href="requirements.html">Requirements →</a>')
        pager = f'<nav class="pager">{prev}{nxt}</nav>'
    toc_block = f'<nav class="toc" aria-label="Contents of this page">{toc}</nav>' if toc else ""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)} · EduFed specification</title>\n"
            f'<link rel="stylesheet" href="{root}style.css">\n</head>\n<body>\n{nav}\n<main>\n{toc_block}\n'
            f"{body}\n</main>\n{pager}\n</body>\n</html>\n")


def _requirements_page(spec: Spec) -> str:
    rows = "\n".join(f'<tr><td><a href="{page.target}#{rid}"><code>{rid}</code></a></td>'
                     f"<td>{html.escape(page.title)}</td></tr>"
                     for rid, page in sorted(spec.definitions.items(), key=lambda item: _requirement_key(item[0])))
    body = (f"<h1>Requirements</h1>\n<p>{len(spec.definitions)} requirement ids, each linked to where it is "
            f"stated.</p>\n<table>\n<thead><tr><th>id</th><th>chapter</th></tr></thead>\n<tbody>\n{rows}\n"
            f"</tbody>\n</table>")
    return _layout(spec, "Requirements", body)


def _examples_page(spec: Spec, names: list[str]) -> str:
    items = "\n".join(f'<li><a href="{html.escape(n)}">{html.escape(n)}</a></li>' for n in names)
    return _layout(spec, "Examples", f"<h1>Examples</h1>\n<ul>\n{items}\n</ul>", root="../")


def render(out: Path = DEFAULT_OUT, spec_dir: Path = SPEC) -> Spec:
    """Write index.html (the README), one page per chapter, requirements.html, style.css and examples/."""
    spec = build(spec_dir)
    if out.exists():
        shutil.rmtree(out)
    (out / "examples").mkdir(parents=True)
    order = [spec.pages[-1], *spec.pages[:-1]]
    for number, page in enumerate(order):
        (out / page.target).write_text(_layout(spec, page.title, page.body, page.toc, number), "utf-8")
    (out / "requirements.html").write_text(_requirements_page(spec), "utf-8")
    (out / "style.css").write_text(STYLE, "utf-8")
    names = sorted(p.name for p in (spec_dir / "examples").iterdir() if p.is_file())
    for name in names:
        shutil.copyfile(spec_dir / "examples" / name, out / "examples" / name)
    (out / "examples" / "index.html").write_text(_examples_page(spec, names), "utf-8")
    return spec


def vocabulary_terms(files: tuple[Path, ...] = CONTEXT_FILES) -> list[tuple[str, str, str, str]]:
    """(context, term, IRI, value type or container) for every term the EduFed contexts define."""
    rows = []
    for path in files:
        context: dict[str, Any] = json.loads(path.read_text("utf-8"))["@context"]
        name = "credentials/v1" if "credentials" in path.name else "v1"
        for term, value in context.items():
            if term.startswith("@"):
                continue
            if isinstance(value, str):
                rows.append((name, term, value, ""))
            else:
                kind = value.get("@container") or value.get("@type") or ""
                rows.append((name, term, value["@id"], kind))
    return rows


def vocabulary_table(files: tuple[Path, ...] = CONTEXT_FILES) -> str:
    lines = ["| context | term | IRI | type or container |", "| --- | --- | --- | --- |"]
    lines += [f"| `{c}` | `{t}` | `{i}` | {f'`{k}`' if k else ''} |" for c, t, i, k in vocabulary_terms(files)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (replaced)")
    parser.add_argument("--vocabulary-table", action="store_true", help="print the term registry and exit")
    args = parser.parse_args(argv)
    if args.vocabulary_table:
        print(vocabulary_table())
        return 0
    spec = render(args.out)
    print(f"{len(spec.pages)} pages, {len(spec.definitions)} requirements -> {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
