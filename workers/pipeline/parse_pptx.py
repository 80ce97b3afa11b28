"""PowerPoint presentations (.pptx, .pptm) as one unit per slide.

Runs in the sandboxed parser child. A slide's unit holds its title, the text of its
shapes in reading order (grouped shapes included), and its speaker notes; each table
becomes a unit of rows (header repeated like CSV) located on the same slide. Macros
(.pptm) are never run: python-pptx reads XML parts only.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workers.pipeline.errors import DocumentParseError
from workers.pipeline.ooxml_safety import check_package
from workers.pipeline.units import Unit, clean_text


def _shape_texts(shapes: Any, tables: list[list[list[str]]], skip: Any) -> Iterator[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    def position(shape: Any) -> tuple[int, int]:
        return (shape.top or 0, shape.left or 0)

    for shape in sorted(shapes, key=position):
        if skip is not None and shape.shape_id == skip.shape_id:
            continue
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _shape_texts(shape.shapes, tables, skip)
        elif getattr(shape, "has_table", False) and shape.has_table:
            tables.append(
                [[clean_text(cell.text).replace("\n", " ") for cell in row.cells] for row in shape.table.rows]
            )
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            text = clean_text(shape.text_frame.text)
            if text:
                yield text


def read_units(path: Path) -> tuple[str | None, int, list[Unit]]:
    """Title, slide count and units; a unit's `index` is its slide's (0-based)."""
    from pptx import Presentation

    check_package(path)
    try:
        presentation = Presentation(str(path))
    except Exception as error:
        raise DocumentParseError(f"The PowerPoint file is damaged and cannot be read ({error})") from error
    title = (presentation.core_properties.title or "").strip() or None
    units: list[Unit] = []
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        slide_title = (
            clean_text(title_shape.text_frame.text).replace("\n", " ") if title_shape is not None else ""
        )
        tables: list[list[list[str]]] = []
        parts = [slide_title] if slide_title else []
        parts.extend(_shape_texts(slide.shapes, tables, title_shape))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = clean_text(slide.notes_slide.notes_text_frame.text)
            if notes:
                parts.append(f"Notes: {notes}")
        location: dict[str, Any] = {"kind": "slide", "slide": number}
        if slide_title:
            location["title"] = slide_title
        text = "\n\n".join(parts)
        if text:
            units.append(Unit(index=number - 1, text=text, location=location))
        for table_number, rows in enumerate(tables, start=1):
            rows = [row for row in rows if any(row)]
            if not rows:
                continue
            if len(rows) == 1:
                units.append(Unit(index=number - 1, text=" | ".join(rows[0]), location=location))
                continue
            width = max(len(row) for row in rows)
            header = [cell or f"column {i + 1}" for i, cell in enumerate(rows[0])]
            header += [f"column {i + 1}" for i in range(len(header), width)]
            units.append(
                Unit(
                    index=number - 1,
                    location={**location, "table": table_number},
                    header=header,
                    rows=list(enumerate(rows[1:], start=1)),
                )
            )
    return title, len(presentation.slides), units
