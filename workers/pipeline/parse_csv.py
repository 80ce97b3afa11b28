"""Stream a CSV/TSV file into chunks of rows, each row rendered with its column names.

Every row becomes one line `column: value | column: value` (empty cells omitted): an
embedding of "state: VA | party_code: 100 | age_years: 38.6" can match a question about
Virginia members' ages, where a bare "VA,100,38.6" carries no meaning. Rows are packed
into chunks that fit the model's window; a row too wide for one chunk is spread over
several chunks that all carry its row number. CSV chunks skip semantic splitting: rows
are already the natural unit.

Shape limits (`CsvLimits`, from CSV_MAX_COLUMNS and CSV_MAX_CELL_CHARS): a table wider
than `max_columns` fails as soon as its header is read, and a cell longer than
`max_cell_chars` when its row is read, with a message naming the limit. A 0.6 MB file with
50,000 columns used to embed for 4+ minutes (every row spread over hundreds of chunks);
now it fails in milliseconds. Physical lines are read with a cap derived from both limits,
so a file that is one enormous line is never read into memory whole.
"""

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workers.pipeline.chunk import Chunk
from workers.pipeline.errors import DocumentParseError
from workers.pipeline.parse_text import detect_file_encoding
from workers.pipeline.sniff import CANDIDATE_DELIMITERS, sniff_delimiter

_DELIMITER_SAMPLE_SIZE = 64 * 1024
# The csv module's own per-field limit (process-wide): a stray quote must not turn the rest
# of a huge file into one cell in memory. Cells up to it are measured against CsvLimits.
_FIELD_SIZE_LIMIT = 8 * 1024 * 1024
_SPECIAL_TOKENS = 2  # [CLS] and [SEP]
_ROWS_PER_TOKENIZER_CALL = 512
_FIELD_SEPARATOR = " | "

TokenCounter = Callable[[Sequence[str]], list[int]]


@dataclass(frozen=True)
class CsvLimits:
    """The shape a CSV may have (Settings.csv_max_columns / csv_max_cell_chars)."""

    max_columns: int = 512
    max_cell_chars: int = 65_536

    @property
    def max_line_chars(self) -> int:
        # The longest physical line a table within both limits can have (every cell quoted,
        # every character a doubled quote); a longer line is over one of them.
        return self.max_columns * (2 * self.max_cell_chars + 3) + 2


def detect_delimiter(sample: str, filename_suffix: str) -> str:
    if filename_suffix == ".tsv":
        return "\t"
    sniffed = sniff_delimiter(sample)
    if sniffed is not None:
        return sniffed
    lines = sample.splitlines()
    header = lines[0] if lines else ""
    # The sniffer gives up on irregular files; the header's most frequent candidate
    # is the next best guess, comma when there is none.
    counts = {delimiter: header.count(delimiter) for delimiter in CANDIDATE_DELIMITERS}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    return best if counts[best] > 0 else ","


def _too_many_columns(count: int, limits: CsvLimits) -> DocumentParseError:
    return DocumentParseError(
        f"This CSV has {count:,} columns; ragql reads at most {limits.max_columns:,} (CSV_MAX_COLUMNS)."
    )


def _cell_too_long(where: str, length: int | None, limits: CsvLimits) -> DocumentParseError:
    size = f"{length:,} characters" if length is not None else f"more than {_FIELD_SIZE_LIMIT:,} characters"
    return DocumentParseError(
        f"{where} of this CSV has a cell of {size}; ragql reads at most "
        f"{limits.max_cell_chars:,} characters per cell (CSV_MAX_CELL_CHARS)."
    )


@dataclass
class CsvChunkStream:
    """Chunks of a CSV file; `warnings` is complete once iteration ends."""

    path: Path
    count_tokens: TokenCounter
    max_tokens: int = 256
    encoding: str = ""
    delimiter: str = ","
    header: list[str] = field(default_factory=list)
    rows_read: int = 0
    ragged_rows: int = 0
    warnings: list[str] = field(default_factory=list)
    file_size: int = 0
    bytes_read: int = 0
    limits: CsvLimits = field(default_factory=CsvLimits)

    def _open(self) -> tuple[io.FileIO, io.TextIOWrapper]:
        self.encoding = detect_file_encoding(self.path)
        self.file_size = self.path.stat().st_size
        raw = io.FileIO(self.path, "r")
        text = io.TextIOWrapper(io.BufferedReader(raw), encoding=self.encoding, errors="replace", newline="")
        return raw, text

    def __iter__(self) -> Iterator[Chunk]:
        raw, text = self._open()
        with text:
            sample = text.read(_DELIMITER_SAMPLE_SIZE)
            self.delimiter = detect_delimiter(sample, self.path.suffix.lower())
            text.seek(0)
            # Cells with embedded newlines are legal CSV; the limit stops a stray quote
            # from turning the rest of a huge file into one cell.
            csv.field_size_limit(max(_FIELD_SIZE_LIMIT, self.limits.max_cell_chars + 1))
            reader = csv.reader(self._capped_lines(text), delimiter=self.delimiter)
            try:
                for row in reader:
                    if any(cell.strip() for cell in row):
                        if len(row) > self.limits.max_columns:
                            raise _too_many_columns(len(row), self.limits)
                        self._check_cells(row, "The header row")
                        self.header = [
                            cell.strip() or f"column {index + 1}" for index, cell in enumerate(row)
                        ]
                        break
                if not self.header:
                    raise DocumentParseError("The CSV file has no header row")
                yield from self._chunks(reader, raw)
            except csv.Error as error:
                if "field larger than field limit" in str(error):
                    where = f"Row {self.rows_read + 1}" if self.header else "The header row"
                    raise _cell_too_long(where, None, self.limits) from error
                raise DocumentParseError(
                    f"The CSV file is malformed near data row {self.rows_read + 1} ({error})"
                ) from error
        if self.ragged_rows:
            self.warnings.append(
                f"{self.ragged_rows} of {self.rows_read} rows did not have {len(self.header)} columns; "
                "they were padded or truncated to match the header"
            )

    def _capped_lines(self, text: io.TextIOWrapper) -> Iterator[str]:
        cap = self.limits.max_line_chars
        while line := text.readline(cap):
            if len(line) >= cap and not line.endswith(("\n", "\r")):
                raise DocumentParseError(
                    f"A line of this CSV is longer than {cap:,} characters; ragql reads at most "
                    f"{self.limits.max_columns:,} columns (CSV_MAX_COLUMNS) of at most "
                    f"{self.limits.max_cell_chars:,} characters (CSV_MAX_CELL_CHARS)."
                )
            yield line

    def _check_cells(self, row: list[str], where: str) -> None:
        longest = max(map(len, row), default=0)
        if longest > self.limits.max_cell_chars:
            raise _cell_too_long(where, longest, self.limits)

    def _render(self, row: list[str]) -> str:
        width = len(self.header)
        if len(row) != width:
            self.ragged_rows += 1
            row = (row + [""] * width)[:width]
        return _FIELD_SEPARATOR.join(
            f"{name}: {value.strip()}" for name, value in zip(self.header, row, strict=False) if value.strip()
        )

    def _chunks(self, reader: "Iterator[list[str]]", raw: io.FileIO) -> Iterator[Chunk]:
        def read_so_far() -> None:
            self.bytes_read = raw.tell()

        yield from self._packed(_batched_rows(reader, _ROWS_PER_TOKENIZER_CALL, self), read_so_far)

    def _packed(
        self,
        batches: Iterable[Sequence[tuple[int, list[str]]]],
        after_batch: Callable[[], None] | None = None,
    ) -> Iterator[Chunk]:
        """Numbered rows packed into chunks: each row one "column: value | ..." line, as many
        lines as fit the window, a row too wide for one chunk spread over several. The one
        packer for CSV files and for the tables of other kinds (`pack_rows`)."""
        budget = self.max_tokens - _SPECIAL_TOKENS
        chunk_index = 0
        lines: list[str] = []
        line_tokens = 0
        first_row = last_row = 0

        def emit() -> Chunk:
            nonlocal chunk_index, lines, line_tokens
            chunk = Chunk(
                text="\n".join(lines),
                chunk_index=chunk_index,
                token_count=line_tokens + _SPECIAL_TOKENS,
                row_start=first_row,
                row_end=last_row,
            )
            chunk_index += 1
            lines, line_tokens = [], 0
            return chunk

        for numbered_rows in batches:
            rendered = [(number, self._render(row)) for number, row in numbered_rows]
            rendered = [(number, line) for number, line in rendered if line]
            counts = self.count_tokens([line for _, line in rendered]) if rendered else []
            for (row_number, line), count in zip(rendered, counts, strict=True):
                tokens = count - _SPECIAL_TOKENS
                if lines and line_tokens + tokens > budget:
                    yield emit()
                if tokens > budget:
                    wide_row_chunks = self._wide_row_chunks(row_number, line, budget, chunk_index)
                    chunk_index += len(wide_row_chunks)
                    yield from wide_row_chunks
                    continue
                if not lines:
                    first_row = row_number
                lines.append(line)
                line_tokens += tokens
                last_row = row_number
            if after_batch is not None:
                after_batch()
        if lines:
            yield emit()

    def _wide_row_chunks(self, row_number: int, line: str, budget: int, first_index: int) -> list[Chunk]:
        """Spread a row whose fields do not fit one window over several chunks."""
        fields = line.split(_FIELD_SEPARATOR)
        counts = self.count_tokens(fields)
        groups: list[tuple[list[str], int]] = []
        current: list[str] = []
        current_tokens = 0
        for field_text, count in zip(fields, counts, strict=True):
            tokens = count - _SPECIAL_TOKENS + 1  # + the "|" between fields
            if current and current_tokens + tokens > budget:
                groups.append((current, current_tokens))
                current, current_tokens = [], 0
            if tokens > budget:  # one enormous cell: keep its start, the model would truncate it anyway
                field_text = _truncate_to_tokens(field_text, budget, tokens)
                tokens = budget
            current.append(field_text)
            current_tokens += tokens
        if current:
            groups.append((current, current_tokens))
        texts = [_FIELD_SEPARATOR.join(group) for group, _ in groups]
        return [
            Chunk(
                text=text,
                chunk_index=first_index + offset,
                token_count=count,
                row_start=row_number,
                row_end=row_number,
            )
            for offset, (text, count) in enumerate(zip(texts, self.count_tokens(texts), strict=True))
        ]


def _truncate_to_tokens(text: str, budget: int, tokens: int) -> str:
    # Characters per token is stable enough within one cell for a proportional cut.
    return text[: max(1, len(text) * budget // max(tokens, 1) - 8)]


def _batched_rows(
    reader: "Iterator[list[str]]", batch_size: int, stream: CsvChunkStream
) -> Iterator[list[tuple[int, list[str]]]]:
    batch: list[tuple[int, list[str]]] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines are not data rows
        stream.rows_read += 1
        stream._check_cells(row, f"Row {stream.rows_read}")
        batch.append((stream.rows_read, row))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_csv_chunks(
    path: Path, count_tokens: TokenCounter, max_tokens: int = 256, limits: CsvLimits | None = None
) -> CsvChunkStream:
    """Chunks of a CSV file, streamed: only one batch of rows is held in memory at a time."""
    return CsvChunkStream(
        path=path, count_tokens=count_tokens, max_tokens=max_tokens, limits=limits or CsvLimits()
    )


def pack_rows(
    header: list[str],
    rows: Sequence[tuple[int, list[str]]],
    count_tokens: TokenCounter,
    max_tokens: int = 256,
) -> list[Chunk]:
    """Chunks of table rows from another kind (an XLSX sheet, a Word/PowerPoint/HTML table),
    packed exactly as CSV rows are: each row a "column: value | ..." line, so every chunk
    repeats the header, and a row too wide for one chunk spread over several. Row numbers
    are the caller's (sheet rows, table rows); `chunk_index` starts at 0."""
    stream = CsvChunkStream(path=Path(), count_tokens=count_tokens, max_tokens=max_tokens)
    stream.header = list(header)
    batches = (
        rows[start : start + _ROWS_PER_TOKENIZER_CALL]
        for start in range(0, len(rows), _ROWS_PER_TOKENIZER_CALL)
    )
    return list(stream._packed(batches))
