"""Drive a document through parse → chunk → embed, one window at a time.

Synchronous and CPU-bound by design: the ingestion task runs `DocumentProcessing.batches`
in a worker thread (`asyncio.to_thread` / `anyio.to_thread`) and stores each batch before
asking for the next, so memory holds one window of pages and its chunks, never the
whole document, whatever its size.
"""

import enum
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TypeVar

from gql_server.embedding.embedder import DEFAULT_BATCH_SIZE, SentenceEmbedder, get_boundary_embedder
from gql_server.rag.citations import meaningful_metadata_title
from workers.pipeline.chunk import Chunk
from workers.pipeline.chunking import CappedSemanticSplitter, LocatedText, make_chunker
from workers.pipeline.furniture import FurnitureDetector, strip_furniture
from workers.pipeline.parse_csv import CsvChunkStream, CsvLimits, pack_rows, read_csv_chunks
from workers.pipeline.parse_pdf import PageText, PdfExtractionLimits, PdfPageStream, open_document, open_pdf
from workers.pipeline.parse_text import read_text_blocks
from workers.pipeline.sniff import DocumentKind


class ProcessingStage(enum.StrEnum):
    PARSING = "PARSING"
    CHUNKING = "CHUNKING"
    EMBEDDING = "EMBEDDING"


# on_progress(stage, done, total): PARSING counts pages (PDF) or bytes (CSV/text);
# CHUNKING counts pages or bytes; EMBEDDING counts chunks, and its total grows window
# by window because the number of chunks is only known at the end.
ProgressCallback = Callable[[ProcessingStage, int, int], None]
# on_work(fraction): the share of the document's work done, 0 to 1, meant to grow at a
# steady pace over the run (the ETA is extrapolated from it; see `WorkMeter`).
WorkCallback = Callable[[float], None]

_Item = TypeVar("_Item")

DEFAULT_CHARACTERS_PER_WINDOW = 300_000
# A context header longer than this is not a title (a text file opening with a paragraph).
MAX_CONTEXT_CHARACTERS = 300


def _normalise_heading(line: str) -> str:
    return " ".join(line.split()).lstrip("#").strip()


def context_header(candidate: str | None) -> str | None:
    """A title as a chunk's context header: one line, Markdown heading marks removed."""
    if not candidate:
        return None
    header = _normalise_heading(candidate)
    return header if 0 < len(header) <= MAX_CONTEXT_CHARACTERS else None


def with_context(chunks: list[Chunk], header: str | None) -> list[Chunk]:
    """Give every chunk that does not already start with `header` that header as context."""
    if header:
        for chunk in chunks:
            if not _normalise_heading(chunk.text[: len(header) * 2 + 16]).startswith(header):
                chunk.context = header
    return chunks


def _windows(items: Iterable[_Item], size: int) -> Iterator[list[_Item]]:
    iterator = iter(items)
    while window := list(islice(iterator, size)):
        yield window


def _pdf_windows(pages: Iterable[PageText], max_pages: int, max_characters: int) -> Iterator[list[PageText]]:
    """Consecutive pages up to `max_characters` of text or `max_pages` pages, whichever comes first.

    Sized by text rather than page count: the embedding calls of a window sort their
    inputs by length, so a big window pads little, while pages of images cost nothing.
    """
    window: list[PageText] = []
    characters = 0
    for page in pages:
        window.append(page)
        characters += len(page.text)
        if len(window) >= max_pages or characters >= max_characters:
            yield window
            window, characters = [], 0
    if window:
        yield window


def _ignore_progress(stage: ProcessingStage, done: int, total: int) -> None:
    pass


def _ignore_work(fraction: float) -> None:
    pass


# What one unit of a document (a page, a character of text, a byte of CSV) costs in each
# pass, as shares of its whole cost: reading it, the semantic splitter's sentence pass,
# and embedding its chunks. Measured with the ONNX backends on the 2-core machine
# (R-intro.pdf, one 113-page window: reading and splitting into sentences 2.9 s, sentence
# pass 3.0 s, chunk embedding 9.5 s). Without these weights the bar stood still for the
# 9.5 s of chunk embedding (62 % of the run) and an ETA extrapolated from it said
# "0 s left" for most of the run.
READ_SHARE = 0.08
SENTENCE_PASS_SHARE = 0.3
EMBEDDING_SHARE = 1.0 - READ_SHARE - SENTENCE_PASS_SHARE
# Chunks embedded per progress step (the chunks of a window are sorted by length first,
# so each step's batches are as well padded as one big call's).
CHUNKS_PER_PROGRESS_STEP = 64


def _embedding_cost(tokens: int, max_tokens: int) -> float:
    """Relative cost of embedding one chunk: superlinear in its length (attention is
    quadratic; measured on R-intro.pdf, its longest 60 % of tokens took 85 % of the time)."""
    length = max(1, min(tokens, max_tokens))
    return float(length * length)


@dataclass
class WorkMeter:
    """The document's work done so far: each of its `total` units is read, passed through
    the sentence pass, then embedded; `fraction` weighs the three by their measured cost.
    Kinds without a sentence pass (CSV rows) split its share between the other two."""

    total: float
    has_sentence_pass: bool = True
    read: float = 0.0
    split: float = 0.0
    embedded: float = 0.0

    def fraction(self) -> float:
        if self.total <= 0:
            return 0.0
        if self.has_sentence_pass:
            done = READ_SHARE * self.read + SENTENCE_PASS_SHARE * self.split + EMBEDDING_SHARE * self.embedded
        else:
            done = (READ_SHARE * self.read + EMBEDDING_SHARE * self.embedded) / (READ_SHARE + EMBEDDING_SHARE)
        return max(0.0, min(1.0, done / self.total))


# Kinds read through the parser child as units (workers/pipeline/units.py).
UNIT_KINDS = frozenset(
    {DocumentKind.DOCX, DocumentKind.PPTX, DocumentKind.XLSX, DocumentKind.HTML, DocumentKind.IMAGE}
)


def _location_page(location: dict[str, object]) -> int | None:
    """The page-like number of a unit's location (a slide, an image or Word page)."""
    for key in ("page", "slide"):
        value = location.get(key)
        if isinstance(value, int):
            return value
    return None


@dataclass(frozen=True, slots=True)
class ChunkBatch:
    """Embedded chunks of one window, in document order; `chunk_index` continues across batches."""

    chunks: list[Chunk]


@dataclass
class DocumentProcessing:
    """One document on its way through the pipeline. Create with `process_document`."""

    path: Path
    kind: DocumentKind
    embedder: SentenceEmbedder
    on_progress: ProgressCallback = _ignore_progress
    on_work: WorkCallback = _ignore_work
    # The semantic splitter's sentence pass (breakpoints only); None → `embedder`.
    boundary_embedder: SentenceEmbedder | None = None
    pages_per_window: int = 50
    # ~130 pages of prose: a few thousand sentence units sorted and batched together.
    characters_per_window: int = DEFAULT_CHARACTERS_PER_WINDOW
    text_blocks_per_window: int = 4
    embed_batch_size: int = DEFAULT_BATCH_SIZE
    pdf_limits: PdfExtractionLimits | None = None
    csv_limits: CsvLimits | None = None
    # The title used when the document has none of its own (PDF without metadata title,
    # text file not opening with a heading line): the file name without extension.
    file_title: str | None = None
    page_count: int | None = None  # known as soon as a PDF is opened
    # The contextual header given to chunks (see `Chunk.context`); known once chunking starts.
    title: str | None = None
    # A PDF's metadata /Title when it names the document (not "Microsoft Word - x.doc",
    # a path or empty: gql_server.rag.citations.meaningful_metadata_title); the document's
    # title when nobody chose one at upload.
    metadata_title: str | None = None
    chunk_count: int = 0
    warnings: list[str] = field(default_factory=list)
    _pdf: PdfPageStream | None = None
    _work: WorkMeter = field(default_factory=lambda: WorkMeter(0.0))

    def open(self) -> None:
        if self.kind is DocumentKind.PDF:
            self._pdf = open_pdf(self.path, self.pdf_limits)
            self.page_count = self._pdf.page_count
        elif self.kind in UNIT_KINDS:
            self._pdf = open_document(self.path, self.kind.name, self.pdf_limits)
            if self.kind in (DocumentKind.PPTX, DocumentKind.IMAGE):
                self.page_count = self._pdf.page_count  # slides, image pages

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()

    def batches(self) -> Iterator[ChunkBatch]:
        """Embedded chunks, window by window; `warnings` is complete when this is exhausted."""
        try:
            if self.kind is DocumentKind.PDF:
                yield from self._pdf_batches()
            elif self.kind in UNIT_KINDS:
                yield from self._unit_batches()
            elif self.kind is DocumentKind.CSV:
                yield from self._csv_batches()
            else:
                yield from self._text_batches()
        finally:
            self.close()

    def _embed(self, chunks: list[Chunk], units_before: float = 0.0, units_after: float = 0.0) -> ChunkBatch:
        """Embed a window's chunks (those covering units `units_before` to `units_after`),
        reporting work as their tokens are embedded."""
        # Chunks that are a single sentence unit already carry the chunker's vector, unless
        # they have a context header, which is part of what gets embedded.
        # The same for chunks whose page furniture is left out of what is embedded.
        missing = [
            chunk
            for chunk in chunks
            if chunk.embedding is None or chunk.context or chunk.search_text is not None
        ]
        # Longest first, in steps: each step is a run of similar lengths (little padding),
        # and the work reported follows the tokens embedded, which is what costs.
        missing.sort(key=lambda chunk: chunk.token_count, reverse=True)
        weights = [_embedding_cost(chunk.token_count, self.embedder.max_tokens) for chunk in missing]
        all_weight = sum(weights) or 1.0
        done_weight = 0.0
        for start in range(0, len(missing), CHUNKS_PER_PROGRESS_STEP):
            step = missing[start : start + CHUNKS_PER_PROGRESS_STEP]
            vectors = self.embedder.embed(
                [chunk.embedding_input() for chunk in step], batch_size=self.embed_batch_size
            )
            for chunk, vector in zip(step, vectors, strict=True):
                chunk.embedding = vector
            done_weight += sum(weights[start : start + CHUNKS_PER_PROGRESS_STEP])
            self._report_work(embedded=units_before + (units_after - units_before) * done_weight / all_weight)
        self.chunk_count += len(chunks)
        self.on_progress(ProcessingStage.EMBEDDING, self.chunk_count, self.chunk_count)
        return ChunkBatch(chunks)

    def _report_work(
        self, *, read: float | None = None, split: float | None = None, embedded: float | None = None
    ) -> None:
        work = self._work
        if read is not None:
            work.read = max(work.read, read)
        if split is not None:
            work.split = max(work.split, split)
        if embedded is not None:
            work.embedded = max(work.embedded, embedded)
        self.on_work(work.fraction())

    def _window_progress(self, done_before: int, done_after: int, total: int) -> Callable[[int, int], None]:
        """Progress during a window's sentence pass, as a share of the window's pages."""

        def report(units_done: int, units_total: int) -> None:
            share = units_done / units_total if units_total else 1.0
            self.on_progress(
                ProcessingStage.CHUNKING, done_before + int((done_after - done_before) * share), total
            )
            self._report_work(split=done_before + (done_after - done_before) * share)

        return report

    def _pdf_batches(self) -> Iterator[ChunkBatch]:
        assert self._pdf is not None, "open() first"
        pdf = self._pdf
        total = pdf.page_count
        self._work = WorkMeter(float(total))
        chunker = make_chunker(self.embedder, boundary_embedder=self.boundary_embedder)
        pages_done = 0
        self.metadata_title = meaningful_metadata_title(pdf.title)
        self.title = context_header(self.metadata_title) or context_header(self.file_title)
        # Counted over every page so far: a window's furniture is judged on the document.
        furniture = FurnitureDetector()
        for window in _pdf_windows(
            self._each_page_progress(pdf, total), self.pages_per_window, self.characters_per_window
        ):
            furniture.observe(page.text for page in window)
            ocr_pages = {page.page_number: page.location for page in window if page.location}
            pages_before, pages_done = pages_done, window[-1].page_number
            self.on_progress(ProcessingStage.PARSING, pages_done, total)
            chunks = chunker.chunk_located_texts(
                [
                    LocatedText(page.text, page_number=page.page_number)
                    for page in window
                    if page.text.strip()
                ],
                first_chunk_index=self.chunk_count,
                on_embedded=self._window_progress(pages_before, pages_done, total),
            )
            self.on_progress(ProcessingStage.CHUNKING, pages_done, total)
            self._report_work(split=pages_done)
            lines = furniture.furniture()
            for chunk in chunks:
                chunk.search_text = strip_furniture(chunk.text, lines)
                if chunk.page_start in ocr_pages:
                    chunk.location = ocr_pages[chunk.page_start]
            if chunks:
                yield self._embed(with_context(chunks, self.title), pages_before, pages_done)
            self._report_work(embedded=pages_done)
        self.on_progress(ProcessingStage.PARSING, total, total)
        self.warnings.extend(pdf.warnings)

    def _each_page_progress(self, pages: Iterable[PageText], total: int) -> Iterator[PageText]:
        """PARSING progress as each page arrives: an OCR'd page can take seconds."""
        for page in pages:
            self.on_progress(ProcessingStage.PARSING, min(page.page_number, total), total)
            self._report_work(read=min(page.page_number, total))
            yield page

    def _unit_batches(self) -> Iterator[ChunkBatch]:
        """DOCX/PPTX/XLSX/HTML/IMAGE units (workers/pipeline/units.py) from the parser child:
        prose through the semantic splitter, tables packed like CSV rows; every chunk
        carries its unit's location, and the title plus heading path as context."""
        assert self._pdf is not None, "open() first"
        stream = self._pdf
        total = max(stream.page_count, 1)
        self._work = WorkMeter(float(total))
        chunker = make_chunker(self.embedder, boundary_embedder=self.boundary_embedder)
        self.metadata_title = meaningful_metadata_title(stream.title)
        self.title = context_header(self.metadata_title) or context_header(self.file_title)
        units = self._each_page_progress(stream, total)
        done = 0
        for window in _windows(units, self.pages_per_window):
            done_before = done
            chunks: list[Chunk] = []
            prose: list[PageText] = []
            for unit in [*window, None]:
                if unit is not None and unit.rows is None:
                    if unit.text.strip():
                        prose.append(unit)
                    continue
                chunks.extend(self._prose_chunks(chunker, prose))
                prose = []
                if unit is not None and unit.rows:
                    chunks.extend(self._table_chunks(unit))
            done = min(window[-1].page_number, total)
            self.on_progress(ProcessingStage.CHUNKING, done, total)
            self._report_work(split=done)
            for offset, chunk in enumerate(chunks):
                chunk.chunk_index = self.chunk_count + offset
                chunk.context = self._unit_context(chunk)
            if chunks:
                yield self._embed(chunks, done_before, done)
            self._report_work(embedded=done)
        self.on_progress(ProcessingStage.PARSING, total, total)
        self.warnings.extend(stream.warnings)
        if self.kind is DocumentKind.IMAGE and self.chunk_count == 0 and not stream.warnings:
            self.warnings.append("No text found: OCR read no text in the image")

    def _prose_chunks(self, chunker: CappedSemanticSplitter, units: list[PageText]) -> list[Chunk]:
        # One call per unit: a section, slide or page is a natural boundary, and a chunk
        # never mixes two headings' text, so its location is exact.
        chunks: list[Chunk] = []
        for unit in units:
            location = unit.location or {}
            for chunk in chunker.chunk_located_texts([LocatedText(unit.text)], first_chunk_index=0):
                chunk.location = location or None
                chunk.page_start = chunk.page_end = _location_page(location)
                chunk.line_start = chunk.line_end = None
                chunks.append(chunk)
        return chunks

    def _table_chunks(self, unit: PageText) -> list[Chunk]:
        chunks = pack_rows(
            unit.header or [], unit.rows or [], self.embedder.count_tokens_batch, self.embedder.max_tokens
        )
        location = unit.location or {}
        for chunk in chunks:
            chunk.location = {**location, "row_start": chunk.row_start, "row_end": chunk.row_end}
            chunk.page_start = chunk.page_end = _location_page(location)
            if location.get("kind") != "sheet":
                chunk.row_start = chunk.row_end = None  # rows of a table, kept in the location
        return chunks

    def _unit_context(self, chunk: Chunk) -> str | None:
        path = [part for part in ((chunk.location or {}).get("heading_path") or []) if part]
        header = " › ".join([self.title, *path] if self.title else path)
        header = header[:MAX_CONTEXT_CHARACTERS] if header else ""
        if not header or _normalise_heading(chunk.text[: len(header) * 2 + 16]).startswith(header):
            return None
        return header

    def _text_batches(self) -> Iterator[ChunkBatch]:
        chunker: CappedSemanticSplitter = make_chunker(
            self.embedder, boundary_embedder=self.boundary_embedder
        )
        total = max(self.path.stat().st_size, 1)
        self._work = WorkMeter(float(total))
        characters_done = 0
        for window in _windows(read_text_blocks(self.path), self.text_blocks_per_window):
            # Characters, not bytes: close enough for a progress bar, exact for ASCII.
            characters_before = characters_done
            characters_done = min(characters_done + sum(len(block.text) for block in window), total)
            self.on_progress(ProcessingStage.PARSING, characters_done, total)
            self._report_work(read=characters_done)
            if self.title is None:
                self.title = self._text_title(window[0].text)
            chunks = chunker.chunk_located_texts(
                [LocatedText(block.text, first_line=block.first_line) for block in window],
                first_chunk_index=self.chunk_count,
                on_embedded=self._window_progress(characters_before, characters_done, total),
            )
            self.on_progress(ProcessingStage.CHUNKING, characters_done, total)
            self._report_work(split=characters_done)
            if chunks:
                yield self._embed(with_context(chunks, self.title), characters_before, characters_done)
            self._report_work(embedded=characters_done)

    def _text_title(self, first_block: str) -> str | None:
        """The first non-blank line when it is short enough to be a title, else the file title."""
        for line in first_block.splitlines():
            if line.strip():
                return context_header(line) or context_header(self.file_title)
        return context_header(self.file_title)

    def _csv_batches(self) -> Iterator[ChunkBatch]:
        stream: CsvChunkStream = read_csv_chunks(
            self.path, self.embedder.count_tokens_batch, self.embedder.max_tokens, self.csv_limits
        )
        self._work = WorkMeter(float(max(stream.file_size, 1)), has_sentence_pass=False)
        bytes_done = 0
        for window in _windows(stream, self.embed_batch_size * 4):
            bytes_before, bytes_done = bytes_done, stream.bytes_read
            self.on_progress(ProcessingStage.PARSING, stream.bytes_read, stream.file_size)
            self.on_progress(ProcessingStage.CHUNKING, stream.bytes_read, stream.file_size)
            self._report_work(read=bytes_done)
            yield self._embed(window, bytes_before, bytes_done)
        self.warnings.extend(stream.warnings)


def process_document(
    path: Path,
    kind: DocumentKind,
    embedder: SentenceEmbedder,
    on_progress: ProgressCallback | None = None,
    *,
    on_work: WorkCallback | None = None,
    pages_per_window: int = 50,
    characters_per_window: int = DEFAULT_CHARACTERS_PER_WINDOW,
    pdf_limits: PdfExtractionLimits | None = None,
    csv_limits: CsvLimits | None = None,
    file_title: str | None = None,
    boundary_embedder: SentenceEmbedder | None = None,
) -> DocumentProcessing:
    """Open a document for processing; raises `DocumentParseError` when it cannot be read.

    Usage (in a worker thread):
        processing = process_document(path, kind, embedder, on_progress)
        for batch in processing.batches():
            store(batch.chunks)           # each chunk has .embedding
        processing.warnings, processing.page_count, processing.chunk_count
    """
    processing = DocumentProcessing(
        path=path,
        kind=kind,
        embedder=embedder,
        on_progress=on_progress or _ignore_progress,
        on_work=on_work or _ignore_work,
        pages_per_window=pages_per_window,
        characters_per_window=characters_per_window,
        pdf_limits=pdf_limits,
        csv_limits=csv_limits,
        file_title=file_title,
        boundary_embedder=boundary_embedder
        if boundary_embedder is not None
        else get_boundary_embedder(embedder),
    )
    processing.open()
    return processing
