"""Word documents (.docx, .docm) as sections: the paragraphs under one heading path.

Runs in the sandboxed parser child (pdf_extraction_child.py). The body is walked in
document order: headings (styles "Title", "Heading 1..9") open a section and set its
heading path, paragraphs join the open section (list items marked "- "), and each table
becomes a unit of rows with its first row as header, chunked like CSV so a split table
repeats its header. Headers and footers are left out: repeated on every page, they would
repeat into every chunk. Pages are counted where the file records them (Word's
`lastRenderedPageBreak`s, else explicit page breaks). Macros (.docm) are never run:
python-docx reads XML parts only, and the VBA part is never opened.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workers.pipeline.errors import DocumentParseError
from workers.pipeline.ooxml_safety import check_package
from workers.pipeline.units import Location, Unit, clean_text

MAX_SECTION_CHARACTERS = 20_000
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MACRO_MAIN_TYPES = (
    "application/vnd.ms-word.document.macroEnabled.main+xml",
    "application/vnd.ms-word.template.macroEnabledTemplate.main+xml",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
)


def _open(path: Path) -> Any:
    from docx.opc.constants import CONTENT_TYPE
    from docx.opc.part import PartFactory
    from docx.package import Package
    from docx.parts.document import DocumentPart

    # Macro-enabled and template documents have the same XML as .docx; python-docx only
    # refuses them by content type.
    for content_type in _MACRO_MAIN_TYPES:
        PartFactory.part_type_for[content_type] = DocumentPart
    part = Package.open(str(path)).main_document_part
    if part.content_type not in (CONTENT_TYPE.WML_DOCUMENT_MAIN, *_MACRO_MAIN_TYPES):
        raise DocumentParseError("The file is not a Word document")
    return part.document


def _heading_level(paragraph: Any) -> int | None:
    try:
        name = (paragraph.style.name or "") if paragraph.style is not None else ""
    except Exception:  # a style id that points nowhere
        name = ""
    if name == "Title":
        return 0
    if name.startswith("Heading"):
        suffix = name[len("Heading") :].strip()
        if suffix.isdigit():
            return int(suffix)
    outline = paragraph._p.find(f"{_W}pPr/{_W}outlineLvl")
    if outline is not None:
        value = outline.get(f"{_W}val", "")
        if value.isdigit() and int(value) < 9:
            return int(value) + 1
    return None


def _is_list_item(paragraph: Any) -> bool:
    if paragraph._p.find(f"{_W}pPr/{_W}numPr") is not None:
        return True
    try:
        return bool(paragraph.style is not None and (paragraph.style.name or "").startswith("List"))
    except Exception:
        return False


def _page_breaks(element: Any, rendered: bool) -> int:
    if rendered:
        return len(element.findall(f".//{_W}lastRenderedPageBreak"))
    breaks = sum(1 for br in element.iter(f"{_W}br") if br.get(f"{_W}type") == "page")
    if element.find(f"{_W}pPr/{_W}pageBreakBefore") is not None:
        breaks += 1
    return breaks


def _row_cells(row: Any) -> list[str]:
    cells: list[str] = []
    seen: set[int] = set()
    for cell in row.cells:
        if id(cell._tc) in seen:  # a merged cell is returned once per grid column it spans
            continue
        seen.add(id(cell._tc))
        cells.append(clean_text(cell.text).replace("\n", " "))
    return cells


def read_units(path: Path) -> tuple[str | None, list[Unit]]:
    """The document's title (core properties) and its units, in order."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    check_package(path)
    try:
        document = _open(path)
    except DocumentParseError:
        raise
    except Exception as error:
        raise DocumentParseError(f"The Word document is damaged and cannot be read ({error})") from error
    title = (document.core_properties.title or "").strip() or None
    body = document.element.body
    rendered = body.find(f".//{_W}lastRenderedPageBreak") is not None
    has_pages = rendered or any(_page_breaks(child, False) for child in body.iterchildren())

    units: list[Unit] = []
    heading_path: list[tuple[int, str]] = []
    lines: list[str] = []
    section_location: Location = {}
    characters = 0
    paragraph_number = 0
    table_number = 0
    page = 1

    def location(**extra: Any) -> Location:
        where: Location = {"kind": "section", "heading_path": [text for _, text in heading_path]}
        if has_pages:
            where["page"] = page
        where.update(extra)
        return where

    def flush() -> None:
        nonlocal lines, characters
        text = "\n\n".join(lines).strip()
        if text:
            units.append(Unit(index=len(units), text=text, location=section_location))
        lines, characters = [], 0

    for child in body.iterchildren():
        if child.tag == f"{_W}p":
            paragraph = Paragraph(child, document._body)
            breaks = _page_breaks(child, rendered) if has_pages else 0
            if breaks:
                flush()  # a unit never spans pages, so its page is right
                page += breaks
            text = clean_text(paragraph.text)
            if not text:
                continue
            paragraph_number += 1
            level = _heading_level(paragraph)
            if level is not None:
                flush()
                heading_path = [(lvl, heading) for lvl, heading in heading_path if lvl < level]
                heading_path.append((level, text.replace("\n", " ")))
            if not lines:
                section_location = location(paragraph=paragraph_number)
            lines.append(f"- {text}" if level is None and _is_list_item(paragraph) else text)
            characters += len(text)
            if characters >= MAX_SECTION_CHARACTERS:
                flush()
        elif child.tag == f"{_W}tbl":
            flush()
            table_number += 1
            rows = [_row_cells(row) for row in Table(child, document._body).rows]
            rows = [row for row in rows if any(row)]
            if len(rows) == 1:
                units.append(
                    Unit(index=len(units), text=" | ".join(rows[0]), location=location(table=table_number))
                )
            elif rows:
                width = max(len(row) for row in rows)  # rows may miss cells at their end
                header = [cell or f"column {i + 1}" for i, cell in enumerate(rows[0])]
                header += [f"column {i + 1}" for i in range(len(header), width)]
                numbered = [(number, cells) for number, cells in enumerate(rows[1:], start=1)]
                units.append(
                    Unit(
                        index=len(units),
                        location=location(table=table_number),
                        header=header,
                        rows=numbered,
                    )
                )
    flush()
    return title, units


def iter_units(path: Path) -> tuple[str | None, int, Iterator[Unit]]:
    title, units = read_units(path)
    return title, len(units), iter(units)
