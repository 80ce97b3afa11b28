"""HTML pages as sections of their main content, each with its heading path.

Runs in the sandboxed parser child. The encoding comes from the document itself: a
byte-order mark (UTF-8/UTF-16/UTF-32) first, then a `<meta charset>` / `http-equiv`
declaration in the first 4 KB, then the text sniffer's guess (UTF-8, else cp1252).
lxml's HTML parser never loads external entities or DTDs. Scripts, styles, templates,
navigation, headers, footers, asides and forms are dropped; when the page marks its main
content (`<main>`, `role="main"`, a single `<article>`), only that is read. Headings
h1-h6 set the heading path of what follows; tables of two or more columns become rows
with their first row as header, chunked like CSV.
"""

import codecs
import re
from pathlib import Path
from typing import Any

from workers.pipeline.errors import DocumentParseError
from workers.pipeline.text_encoding import detect_text_encoding
from workers.pipeline.units import Location, Unit, clean_text

MAX_HTML_BYTES = 64 * 1024 * 1024
MAX_SECTION_CHARACTERS = 20_000
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_DROPPED = frozenset(
    {"script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "form",
     "iframe", "object", "embed", "button", "select", "head", "title", "canvas", "map"}
)  # fmt: skip
_DROPPED_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search"})
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = frozenset(
    {"p", "div", "li", "ul", "ol", "dl", "dt", "dd", "pre", "blockquote", "section", "article", "main",
     "table", "tr", "br", "hr", "figure", "figcaption", "address", "center", "body", "caption"}
)  # fmt: skip
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_html(data: bytes) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    declared = _META_CHARSET.search(data[:4096])
    if declared:
        name = declared.group(1).decode("ascii", "replace").lower()
        if name in ("utf-16", "utf-16le", "utf-16be", "utf-32"):
            name = "utf-8"  # a page without a BOM that says UTF-16 was transcoded since
        try:
            codecs.lookup(name)
            return data.decode(name, errors="replace")
        except LookupError:
            pass
    detected = detect_text_encoding(data[: 64 * 1024], sample_is_whole_file=len(data) <= 64 * 1024)
    return data.decode(detected.name if detected else "utf-8", errors="replace")


def _main_content(root: Any) -> Any:
    for candidate in (root.xpath("//main"), root.xpath("//*[@role='main']")):
        if candidate:
            return candidate[0]
    articles = root.xpath("//article")
    if len(articles) == 1:
        return articles[0]
    body = root.find("body")
    return body if body is not None else root


def _dropped(element: Any) -> bool:
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag.lower() in _DROPPED:
        return True
    if (element.get("role") or "").lower() in _DROPPED_ROLES:
        return True
    if element.get("hidden") is not None or element.get("aria-hidden") == "true":
        return True
    style = (element.get("style") or "").replace(" ", "").lower()
    return "display:none" in style


class _Walker:
    def __init__(self) -> None:
        self.units: list[Unit] = []
        self.heading_path: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self.inline: list[str] = []
        self.characters = 0
        self.section_location: Location = {}

    def location(self, **extra: Any) -> Location:
        return {"kind": "section", "heading_path": [text for _, text in self.heading_path], **extra}

    def end_line(self) -> None:
        text = clean_text(" ".join(self.inline)).replace("\n", " ")
        self.inline = []
        if text:
            if not self.lines:
                self.section_location = self.location()
            self.lines.append(text)
            self.characters += len(text)
            if self.characters >= MAX_SECTION_CHARACTERS:
                self.flush()

    def flush(self) -> None:
        self.end_line()
        text = "\n".join(self.lines).strip()
        if text:
            self.units.append(Unit(index=len(self.units), text=text, location=self.section_location))
        self.lines, self.characters = [], 0

    def walk(self, element: Any) -> None:
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if not tag or _dropped(element):  # comments, processing instructions, dropped parts
            if element.tail:
                self.inline.append(element.tail)
            return
        if tag in _HEADINGS:
            self.flush()
            level = _HEADINGS[tag]
            heading = clean_text(element.text_content()).replace("\n", " ")
            if heading:
                self.heading_path = [(lvl, text) for lvl, text in self.heading_path if lvl < level]
                self.heading_path.append((level, heading))
                self.inline.append(heading)
                self.end_line()
        elif tag == "table" and self.table(element):
            pass
        else:
            if tag in _BLOCKS:
                self.end_line()
            if element.text:
                self.inline.append(element.text)
            for child in element:
                self.walk(child)
            if tag in _BLOCKS:
                self.end_line()
        if element.tail:
            self.inline.append(element.tail)

    def table(self, element: Any) -> bool:
        """A data table (2+ columns, 2+ rows) as a rows unit; False for layout tables."""
        rows: list[list[str]] = []
        if element.xpath(".//table"):
            return False  # nested tables are layout: read as text
        for row in element.iter("tr"):
            cells = [clean_text(cell.text_content()).replace("\n", " ") for cell in row.xpath("./th|./td")]
            if any(cells):
                rows.append(cells)
        width = max((sum(1 for cell in row if cell) for row in rows), default=0)
        if len(rows) < 2 or width < 2:
            return False
        self.flush()
        full_width = max(len(row) for row in rows)
        header = [cell or f"column {i + 1}" for i, cell in enumerate(rows[0])]
        header += [f"column {i + 1}" for i in range(len(header), full_width)]
        self.units.append(
            Unit(
                index=len(self.units),
                location=self.location(table=sum(1 for u in self.units if u.rows is not None) + 1),
                header=header,
                rows=list(enumerate(rows[1:], start=1)),
            )
        )
        return True


def read_units(path: Path) -> tuple[str | None, list[Unit]]:
    import lxml.html

    size = path.stat().st_size
    if size > MAX_HTML_BYTES:
        raise DocumentParseError(
            f"The HTML file is {size:,} bytes; ragql reads HTML of at most {MAX_HTML_BYTES:,}"
        )
    text = decode_html(path.read_bytes())
    # An XML declaration with an encoding makes lxml refuse a str: drop it, we decoded.
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    if not text.strip():
        raise DocumentParseError("The HTML file is empty")
    try:
        root = lxml.html.document_fromstring(text)
    except Exception as error:
        raise DocumentParseError(f"The HTML file cannot be parsed ({error})") from error
    title_element = root.find(".//title")
    title = clean_text(title_element.text_content()).replace("\n", " ") if title_element is not None else None
    walker = _Walker()
    walker.walk(_main_content(root))
    walker.flush()
    return title or None, walker.units
