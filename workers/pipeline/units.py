"""What the sandboxed parser child sends back for every kind: page-like units.

A unit is one place a person would look: a PDF page, a slide, a Word section (the
paragraphs under one heading), an HTML section, a block of spreadsheet rows, an image
page. It carries either `text` (prose, chunked by the semantic splitter) or `rows` with
their `header` (tables, chunked like CSV: each row rendered with its column names, so
the header is repeated in every chunk), and a `location` in the words of its kind:

    {"kind": "page"|"slide"|"section"|"sheet"|"image", "page": int, "slide": int,
     "sheet": str, "row_start": int, "row_end": int, "heading_path": [str],
     "paragraph": int, "table": int, "title": str, "ocr": bool}

Only the keys that apply are present. This module imports nothing heavy: the child
imports it before any parser.
"""

from dataclasses import dataclass, field
from typing import Any

Location = dict[str, Any]


@dataclass(slots=True)
class Unit:
    index: int  # 0-based, in document order; the child's resume point
    text: str = ""
    location: Location = field(default_factory=dict)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] | None = None  # (row number, cells)

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "page", "index": self.index, "text": self.text}
        if self.location:
            message["location"] = self.location
        if self.rows is not None:
            message["header"] = self.header or []
            message["rows"] = [[number, cells] for number, cells in self.rows]
        return message


def clean_text(text: str) -> str:
    """Collapse runs of spaces/tabs and drop NULs; keep line breaks."""
    lines = (" ".join(line.replace("\x00", "").split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def cell_text(value: Any) -> str:
    """A spreadsheet/table cell as the text a person reads."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.10g}"
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return text[:-9] if text.endswith("T00:00:00") else text
    return " ".join(str(value).replace("\x00", "").split())
