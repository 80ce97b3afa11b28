"""Citations: the [n] markers an answer keeps, and how each source is labelled.

Markers: only those that point at a passage the model was actually given are kept. Models invent citations: numbers beyond the passages they saw, or markers copied from
the history. A marker that leads nowhere is worse than none, so the final answer keeps
only markers for stored sources, and removing one must not leave a stray space before
punctuation or an empty "[]". Markdown links ("[1](url)") and code (`a[0]`, fenced
blocks) are left alone: they are not citations.

Labels: a source shows its document's title (the PDF's /Title when it names the document,
else the file name without extension, separators turned into spaces), its page or data-row
range ("data row N" counts the rows after the header, 1-based, not file lines), and a
one-line preview of the passage; a CSV source also carries its rows as a table.
"""

from __future__ import annotations

import re

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
    page_start: int | None, page_end: int | None, row_start: int | None, row_end: int | None
) -> str:
    """ "p. 4", "pp. 4–5", or for CSV files "data row 7" / "data rows 7–9": the N-th data row
    after the header row (blank lines not counted), not the file's line number."""
    if page_start is not None:
        if page_end is not None and page_end != page_start:
            return f"pp. {page_start}–{page_end}"
        return f"p. {page_start}"
    if row_start is not None:
        if row_end is not None and row_end != row_start:
            return f"data rows {row_start}–{row_end}"
        return f"data row {row_start}"
    return ""


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
    label = location_label(None, None, row_start, row_end)
    numbers = csv_row_numbers(label, len(lines))
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
