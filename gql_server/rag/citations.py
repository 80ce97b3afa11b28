"""Citations: the [n] markers an answer keeps, and how each source is labelled.

Markers: only those that point at a passage the model was actually given are kept. Models invent citations: numbers beyond the passages they saw, or markers copied from
the history. A marker that leads nowhere is worse than none, so the final answer keeps
only markers for stored sources, and removing one must not leave a stray space before
punctuation or an empty "[]". Markdown links ("[1](url)") and code (`a[0]`, fenced
blocks) are left alone: they are not citations.

Labels: a source shows its document's title (the PDF's /Title when it names the document,
else the file name without extension, separators turned into spaces), where to look in the
words of its kind ("p. 4", "p. 4 (OCR)", "slide 7", "Sheet 'Q2', rows 12–30", "§ Benefits ›
Leave", "data rows 7–9": "data row N" counts the rows after the header, 1-based, not file
lines), and a one-line preview of the passage; a CSV source also carries its rows as a table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# One bracket holding numbers and ranges separated by commas or semicolons: [1] [1, 3] [2-4] [1;2].
_NUMBER_OR_RANGE = r"\d+(?:\s*[-–]\s*\d+)?"
_MARKER = re.compile(
    rf"(?P<lead>[ \t]*)(?P<marker>\[\s*(?P<body>{_NUMBER_OR_RANGE}(?:\s*[,;]\s*{_NUMBER_OR_RANGE})*)\s*\])(?!\()"
)
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.DOTALL)
_RANGE = re.compile(r"(\d+)\s*[-–]\s*(\d+)")


def extract_citations(text: str, valid_numbers: set[int]) -> tuple[str, list[int]]:
    """`text` with invalid citation markers removed, and the cited numbers in order of first use.

    Groups keep their valid members ("[1, 9]" becomes "[1]" when 9 is invalid); a range
    keeps the valid numbers inside it ("[2-4]" becomes "[2, 3, 4]").
    """
    code_spans = [match.span() for match in _CODE.finditer(text)]
    pieces: list[str] = []
    cited: dict[int, None] = {}
    cursor = 0
    for match in _MARKER.finditer(text):
        marker_start = match.start("marker")
        if any(start <= marker_start < end for start, end in code_spans):
            continue
        kept = [
            number for number in _numbers_in(match.group("body"), valid_numbers) if number in valid_numbers
        ]
        lead_start = max(cursor, match.start())
        if kept:
            pieces.append(text[cursor:marker_start])
            pieces.append("[" + ", ".join(str(number) for number in dict.fromkeys(kept)) + "]")
            cited.update(dict.fromkeys(kept))
            cursor = match.end()
            continue
        # Drop the marker together with the space before it ("word [9]." -> "word.").
        pieces.append(text[cursor:lead_start])
        cursor = match.end()
        written = "".join(pieces)
        if not written or written.endswith("\n"):
            # At the start of a line there is no space before it; drop the one after instead.
            while cursor < len(text) and text[cursor] in " \t":
                cursor += 1
    pieces.append(text[cursor:])
    return "".join(pieces), list(cited)


def _numbers_in(body: str, valid_numbers: set[int]) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*[,;]\s*", body.strip()):
        range_match = _RANGE.fullmatch(part)
        if range_match:
            low, high = sorted((int(range_match.group(1)), int(range_match.group(2))))
            # Expand only over valid numbers, so "[1-100000]" costs nothing.
            numbers.extend(number for number in sorted(valid_numbers) if low <= number <= high)
        else:
            numbers.append(int(part))
    return numbers


# --- how a source is labelled -------------------------------------------------------------

PREVIEW_CHARACTERS = 160
_TITLE_SEPARATORS = re.compile(r"[_\-]+")
# Metadata titles that say nothing: what Word, LaTeX and scanners write by default.
_MEANINGLESS_TITLE = re.compile(
    r"^(?:microsoft (?:word|powerpoint|excel)\s*-|untitled|document\d*$|title$|slide \d+$|"
    r"pdf$|print$|scan|img[_\d]|dsc[_\d]|[\w\-]+\.(?:docx?|pptx?|xlsx?|pdf|tex|dvi|rtf|odt|indd|qxd)$)",
    re.IGNORECASE,
)


def title_from_filename(filename: str) -> str:
    """The file name without its extension, separators (`_`, `-`, `__`) turned into spaces:
    "unstructured__layout-parser-paper-fast.pdf" -> "unstructured layout parser paper fast"."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or " " in extension or len(extension) > 5:
        stem = name
    cleaned = " ".join(_TITLE_SEPARATORS.sub(" ", stem).split())
    return (cleaned or " ".join(name.split()) or "Untitled")[:500]


def meaningful_metadata_title(title: str | None) -> str | None:
    """A PDF's /Title when it names the document: not empty, not a path or a file name, not
    an application's placeholder ("Microsoft Word - x.doc", "Untitled")."""
    if not title:
        return None
    title = " ".join(title.split())
    letters = sum(ch.isalpha() for ch in title)
    if len(title) < 3 or letters < 3 or len(title) > 300:
        return None
    if ("/" in title and " " not in title) or "\\" in title or re.match(r"^[a-zA-Z]:", title):
        return None  # a path
    if _MEANINGLESS_TITLE.search(title):
        return None
    return title


def location_label(
    page_start: int | None,
    page_end: int | None,
    row_start: int | None,
    row_end: int | None,
    location: Mapping[str, Any] | None = None,
) -> str:
    """Where to look, in the words of the document's kind (see `source_location`).

    Without a typed location: "p. 4", "pp. 4–5", or for CSV files "data row 7" / "data rows
    7–9": the N-th data row after the header row (blank lines not counted), not the file's
    line number."""
    if location and location.get("kind"):
        return source_location(location, page_start, page_end, row_start, row_end)["label"]
    return _page_or_row_label(page_start, page_end, row_start, row_end)


def _page_or_row_label(
    page_start: int | None, page_end: int | None, row_start: int | None, row_end: int | None
) -> str:
    if page_start is not None:
        if page_end is not None and page_end != page_start:
            return f"pp. {page_start}–{page_end}"
        return f"p. {page_start}"
    if row_start is not None:
        if row_end is not None and row_end != row_start:
            return f"data rows {row_start}–{row_end}"
        return f"data row {row_start}"
    return ""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _span(word: str, first: int | None, last: int | None) -> str:
    """ "slide 7", "rows 12–30"; the plural for a range."""
    if first is None:
        return ""
    if last is not None and last != first:
        return f"{word}s {first}–{last}"
    return f"{word} {first}"


def source_location(
    location: Mapping[str, Any] | None,
    page_start: int | None = None,
    page_end: int | None = None,
    row_start: int | None = None,
    row_end: int | None = None,
) -> dict[str, Any]:
    """A chunk's typed location (document_chunks.location, page and row columns) as the API
    gives it: {"kind", "page", "page_end", "slide", "sheet", "row_start", "row_end",
    "heading_path", "paragraph", "table", "ocr", "label"}.

    kind is PAGE (PDF pages), SLIDE, SECTION (Word and HTML headings), SHEET (Excel),
    IMAGE (PNG/JPEG/TIFF), ROWS (CSV data rows) or DOCUMENT (nothing finer is known).
    The label says where to look as a person would: "p. 4", "p. 4 (OCR)", "slide 7",
    "Sheet 'Q2', rows 12–30", "§ Benefits › Leave", "data rows 7–9".
    """
    where = dict(location or {})
    stored_kind = str(where.get("kind") or "")
    ocr = where.get("ocr") is True
    heading_path = [str(part) for part in where.get("heading_path") or [] if str(part).strip()]
    result: dict[str, Any] = {
        "kind": "DOCUMENT",
        "page": None,
        "page_end": None,
        "slide": None,
        "sheet": None,
        "row_start": None,
        "row_end": None,
        "heading_path": heading_path,
        "paragraph": _int(where.get("paragraph")),
        "table": _int(where.get("table")),
        "ocr": ocr,
        "label": "",
    }
    ocr_mark = " (OCR)" if ocr else ""
    if stored_kind == "slide":
        slide = _int(where.get("slide")) or page_start
        result.update(kind="SLIDE", slide=slide, label=_span("slide", slide, None))
    elif stored_kind == "sheet":
        sheet = str(where.get("sheet") or "")
        first = _int(where.get("row_start")) or row_start
        last = _int(where.get("row_end")) or row_end
        parts = [f"Sheet '{sheet}'" if sheet else "", _span("row", first, last)]
        result.update(
            kind="SHEET",
            sheet=sheet or None,
            row_start=first,
            row_end=last,
            label=", ".join(p for p in parts if p),
        )
    elif stored_kind == "section":
        page = _int(where.get("page"))
        parts = ["§ " + " › ".join(heading_path) if heading_path else ""]
        if result["table"] is not None:
            parts.append(f"table {result['table']}")
        elif not heading_path and result["paragraph"] is not None:
            parts.append(f"paragraph {result['paragraph']}")
        if page is not None:
            parts.append(f"p. {page}")
        result.update(kind="SECTION", page=page, label=", ".join(p for p in parts if p))
    elif stored_kind == "image":
        page = _int(where.get("page"))
        result.update(kind="IMAGE", page=page, label=(_span("p.", page, None) or "image") + ocr_mark)
    elif stored_kind == "page" or page_start is not None:
        first = _int(where.get("page")) or page_start
        last = page_end if page_end is not None and first == page_start else first
        result.update(
            kind="PAGE",
            page=first,
            page_end=last if last != first else None,
            label=_page_or_row_label(first, last, None, None) + ocr_mark,
        )
    elif row_start is not None:
        result.update(
            kind="ROWS",
            row_start=row_start,
            row_end=row_end,
            label=_page_or_row_label(None, None, row_start, row_end),
        )
    return result


def preview(text: str, limit: int = PREVIEW_CHARACTERS) -> str:
    """One line of the passage: its whitespace collapsed, cut at a word with "…" past `limit`."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    return line[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"


MAX_SOURCE_TABLE_ROWS = 50
MAX_SOURCE_TABLE_COLUMNS = 30


def csv_source_table(text: str, row_start: int | None, row_end: int | None) -> dict[str, object] | None:
    """A CSV passage's rows as {"columns": [...], "rows": [{"data_row": n|None, "cells": [...]}]}.

    Rows are the passage's lines ("column: value | column: value", workers/pipeline/parse_csv.py);
    numbers are given when the row range matches the line count (a row spread over several
    chunks, or a cell holding a line break, leaves them unknown)."""
    from gql_server.llm.extractive import csv_row_numbers, parse_csv_row

    if row_start is None:
        return None
    lines = [line for line in text.splitlines() if line.strip()]
    numbers = csv_row_numbers(row_start, row_end if row_end is not None else row_start, len(lines))
    parsed = [(number, parse_csv_row(line)) for number, line in zip(numbers, lines, strict=True)]
    columns: list[str] = []
    for _, cells in parsed:
        for name, _value in cells:
            if name not in columns:
                columns.append(name)
    columns = columns[:MAX_SOURCE_TABLE_COLUMNS]
    rows = [
        {"data_row": number, "cells": [dict(cells).get(name, "") for name in columns]}
        for number, cells in parsed[:MAX_SOURCE_TABLE_ROWS]
    ]
    return {"columns": columns, "rows": rows}


def row_noun(location: Mapping[str, Any] | None) -> str:
    """What a passage's row numbers count: a CSV's data rows (no typed location), a sheet's
    own rows, or the rows of a table inside a Word, PowerPoint or HTML document."""
    kind = (location or {}).get("kind")
    if not kind or kind == "rows":
        return "Data row"
    return "Row" if kind == "sheet" else "Table row"
