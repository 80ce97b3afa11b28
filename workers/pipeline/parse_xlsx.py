"""Excel workbooks (.xlsx, .xlsm) as blocks of rows per sheet, chunked like CSV.

Runs in the sandboxed parser child. openpyxl opens the workbook in read-only mode
(worksheets are streamed, never loaded whole) with `data_only=True`: a formula cell
gives the value Excel cached when it last saved the file, never the formula, and
nothing is recalculated. The first non-empty row of a sheet is its header; every later
row becomes a "column: value" line (parse_csv), numbered by its row in the sheet, so a
citation reads "Sheet 'Q2', rows 12–30" as Excel shows them. Macros (.xlsm) are never
run (`keep_vba=False`); openpyxl parses XML through defusedxml (no entity expansion).
"""

from collections.abc import Iterator
from pathlib import Path

from workers.pipeline.errors import DocumentParseError
from workers.pipeline.ooxml_safety import check_package
from workers.pipeline.units import Unit, cell_text

ROWS_PER_UNIT = 200


class TooManyColumns(DocumentParseError):
    pass


def iter_units(
    path: Path, max_columns: int = 512, max_cell_chars: int = 65_536
) -> tuple[str | None, int, Iterator[Unit]]:
    """Title, sheet count and the units; a unit's `index` is its sheet's (0-based), so a
    sheet that crashes the child is skipped whole and the next one is read."""
    import openpyxl

    check_package(path, streamed_prefixes=("xl/worksheets/",))
    try:
        # A file object, not the path: openpyxl refuses paths without an Excel extension,
        # and stored uploads have none.
        workbook = openpyxl.load_workbook(
            path.open("rb"), read_only=True, data_only=True, keep_vba=False, keep_links=False
        )
    except Exception as error:
        raise DocumentParseError(f"The Excel workbook is damaged and cannot be read ({error})") from error
    title = (workbook.properties.title or "").strip() or None if workbook.properties else None
    sheets = workbook.worksheets

    def units() -> Iterator[Unit]:
        try:
            for sheet_index, sheet in enumerate(sheets):
                yield from _sheet_units(sheet_index, sheet, max_columns, max_cell_chars)
        finally:
            workbook.close()

    return title, len(sheets), units()


def _sheet_units(sheet_index: int, sheet: object, max_columns: int, max_cell_chars: int) -> Iterator[Unit]:
    name = str(getattr(sheet, "title", f"Sheet {sheet_index + 1}"))
    iter_rows = getattr(sheet, "iter_rows", None)
    if iter_rows is None:  # a chart sheet
        return
    header: list[str] | None = None
    block: list[tuple[int, list[str]]] = []
    preamble: list[tuple[int, str]] = []

    def unit() -> Unit:
        return Unit(
            index=sheet_index,
            location={"kind": "sheet", "sheet": name, "row_start": block[0][0], "row_end": block[-1][0]},
            header=header,
            rows=list(block),
        )

    def preamble_unit() -> Unit:
        """Lines above the table (a title, notes), or a sheet without one, as text."""
        return Unit(
            index=sheet_index,
            text="\n".join(text for _, text in preamble),
            location={
                "kind": "sheet",
                "sheet": name,
                "row_start": preamble[0][0],
                "row_end": preamble[-1][0],
            },
        )

    for row_number, values in enumerate(iter_rows(values_only=True), start=1):
        cells = [cell_text(value) for value in values]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        if len(cells) > max_columns:
            raise TooManyColumns(
                f"Sheet {name!r} has {len(cells):,} columns; ragql reads at most {max_columns:,} (CSV_MAX_COLUMNS)."
            )
        cells = [cell[:max_cell_chars] for cell in cells]
        if header is None:
            if sum(1 for cell in cells if cell) < 2:
                # Title lines above the table ("3. Analyses by segment"), not its header.
                preamble.append((row_number, " ".join(cell for cell in cells if cell)))
                continue
            header = [cell or f"column {i + 1}" for i, cell in enumerate(cells)]
            if preamble:
                yield preamble_unit()
                preamble = []
            continue
        if len(cells) > len(header):
            header = header + [f"column {i + 1}" for i in range(len(header), len(cells))]
        block.append((row_number, cells))
        if len(block) >= ROWS_PER_UNIT:
            yield unit()
            block = []
    if block:
        yield unit()
    elif preamble:  # no table: the sheet's lines are its content
        yield preamble_unit()
    elif header is not None:  # a table of one row: content, not a header
        yield Unit(
            index=sheet_index,
            text=" | ".join(cell for cell in header if not cell.startswith("column ")),
            location={"kind": "sheet", "sheet": name},
        )
