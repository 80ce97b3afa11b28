"""Read a document page by page, in a sandboxed child process, with bounded memory and time.

PDFs (pages with a text layer read by pypdf, pages without one by Tesseract OCR when
`ocr_languages` is set) and, with `kind`, every other parsed kind (DOCX, PPTX, XLSX,
HTML, IMAGE), whose "pages" are the units of units.py: the same limits, the same child.

The worker never runs pypdf itself: `PdfPageStream` starts
`workers.pipeline.pdf_extraction_child` under an address-space limit, reads pages back
through a pipe, and restarts it after a page that hangs or crashes it, so one bad page
costs a warning, not the document. Children are also recycled every
`pages_per_child_process` pages because pypdf caches every object it resolves, which for
a 1 GB scanned PDF would otherwise grow with the file.
"""

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from workers.pipeline.errors import DocumentParseError

NO_TEXT_LAYER_WARNING = (
    "No text layer found: this looks like a scanned PDF; OCR is turned off (OCR_ENABLED=false)"
)
NO_TEXT_FOUND_WARNING = "No text found: the PDF has no text layer and OCR read no text on its pages"

# The directory that contains the `workers` package, so the child can import it
# whatever the parent's working directory is.
_IMPORT_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True, slots=True)
class PdfExtractionLimits:
    """Resource limits of the child process that runs pypdf."""

    max_memory_bytes: int = 1536 * 1024 * 1024
    page_timeout_seconds: float = 60.0
    open_timeout_seconds: float = 120.0
    pages_per_child_process: int = 200
    # Pages the child may run ahead of the consumer; bounds memory held in the pipe. At
    # least one window's worth, so the child parses the next window while this one embeds.
    prefetch_pages: int = 64
    # Tesseract languages ("eng", "eng+deu"); empty turns OCR off (Settings.ocr_enabled).
    ocr_languages: str = ""
    max_image_pixels: int = 60_000_000  # OCR_MAX_IMAGE_PIXELS
    max_image_pages: int = 500  # OCR_MAX_IMAGE_PAGES
    max_columns: int = 512  # CSV_MAX_COLUMNS, for spreadsheets
    max_cell_chars: int = 65_536  # CSV_MAX_CELL_CHARS


@dataclass(frozen=True, slots=True)
class PageText:
    page_number: int  # 1-based; for other kinds the unit's number (units.py)
    text: str
    location: dict[str, Any] | None = None  # units.py; PDF pages only when OCR'd
    header: list[str] | None = None  # a table unit's column names
    rows: list[tuple[int, list[str]]] | None = None  # a table unit's (row number, cells)


@dataclass(slots=True)
class _ChildProcess:
    process: "subprocess.Popen[bytes]"
    messages: "queue.Queue[dict[str, Any] | None]"  # None: the child's stdout closed
    reader_thread: threading.Thread

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        # Unblock a reader thread stuck on a full queue so it can see EOF and exit.
        while self.reader_thread.is_alive():
            try:
                self.messages.get(timeout=0.05)
            except queue.Empty:
                pass
        self.reader_thread.join()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _forward_messages(stdout: IO[bytes], messages: "queue.Queue[dict[str, Any] | None]") -> None:
    try:
        for line in stdout:
            try:
                messages.put(json.loads(line))
            except json.JSONDecodeError:
                break  # output cut short by a crash: treated like EOF
    except (OSError, ValueError):
        pass
    finally:
        messages.put(None)


@dataclass
class PdfPageStream:
    """Pages of one PDF. Open with `open_pdf`; `page_count` is known before the first page.

    Iterating yields `PageText` for every page that could be read (empty text included);
    `warnings` and `pages_without_text` are complete once iteration ends.
    """

    path: Path
    limits: PdfExtractionLimits
    kind: str = "PDF"  # a DocumentKind name
    page_count: int = 0
    # The PDF's metadata title (its information dictionary's /Title), when it has one.
    title: str | None = None
    warnings: list[str] = field(default_factory=list)
    pages_without_text: int = 0
    pages_failed: int = 0
    _child: _ChildProcess | None = None

    def _start_child(self, first_page: int) -> _ChildProcess:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workers.pipeline.pdf_extraction_child",
                str(self.path),
                "--first-page",
                str(first_page),
                "--max-pages",
                str(self.limits.pages_per_child_process),
                "--max-memory-bytes",
                str(self.limits.max_memory_bytes),
                "--kind",
                self.kind,
                "--ocr-languages",
                self.limits.ocr_languages,
                # Tesseract's own timeout, inside the page's: the page ends with a reason.
                "--ocr-timeout-seconds",
                str(max(1.0, self.limits.page_timeout_seconds * 0.85)),
                "--max-image-pixels",
                str(self.limits.max_image_pixels),
                "--max-image-pages",
                str(self.limits.max_image_pages),
                "--max-columns",
                str(self.limits.max_columns),
                "--max-cell-chars",
                str(self.limits.max_cell_chars),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=_IMPORT_ROOT,
            env=_child_environment(),
        )
        assert process.stdout is not None
        messages: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=self.limits.prefetch_pages)
        reader_thread = threading.Thread(
            target=_forward_messages,
            args=(process.stdout, messages),
            daemon=True,
            name="pdf-extraction-reader",
        )
        reader_thread.start()
        return _ChildProcess(process, messages, reader_thread)

    def _receive_opened(self, child: _ChildProcess) -> int:
        try:
            message = child.messages.get(timeout=self.limits.open_timeout_seconds)
        except queue.Empty:
            child.kill()
            raise DocumentParseError(f"The {self._noun} took too long to open; it may be damaged") from None
        if message is None:
            child.kill()
            raise DocumentParseError(
                f"The {self._noun} could not be opened: reading it needed too much memory or crashed the reader"
            )
        if message["type"] == "fatal":
            child.kill()
            raise DocumentParseError(str(message["reason"]))
        title = message.get("title")
        if isinstance(title, str) and title.strip():
            self.title = title
        return int(message["page_count"])

    @property
    def _noun(self) -> str:
        return "PDF" if self.kind == "PDF" else "document"

    def open(self) -> None:
        if self.kind != "PDF":
            # Units are produced by parsing from the start; recycling the child would re-parse.
            self.limits = replace(self.limits, pages_per_child_process=1 << 30)
        child = self._start_child(first_page=0)
        self.page_count = self._receive_opened(child)
        self._child = child

    def close(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child = None

    def __enter__(self) -> "PdfPageStream":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _skip_page(self, index: int, reason: str) -> None:
        self.pages_failed += 1
        unit = {"PDF": "Page", "PPTX": "Part", "XLSX": "Sheet", "IMAGE": "Page"}.get(self.kind, "Part")
        self.warnings.append(f"{unit} {index + 1} was skipped: {reason}")

    def __iter__(self) -> Iterator[PageText]:
        next_index = 0
        try:
            while next_index < self.page_count:
                child = self._child if self._child is not None else self._start_child(next_index)
                self._child = child
                next_index = yield from self._pages_from_child(child, next_index)
                self.close()
        finally:
            self.close()
        pages_read = self.page_count - self.pages_failed
        if self.kind == "PDF" and pages_read > 0 and self.pages_without_text == pages_read:
            self.warnings.append(
                NO_TEXT_FOUND_WARNING if self.limits.ocr_languages else NO_TEXT_LAYER_WARNING
            )

    def _pages_from_child(self, child: _ChildProcess, next_index: int) -> Generator[PageText, None, int]:
        """Yield pages until the child finishes its range, hangs or dies; return the next page to read."""
        while True:
            try:
                message = child.messages.get(timeout=self.limits.page_timeout_seconds)
            except queue.Empty:
                self._skip_page(
                    next_index, f"reading it took longer than {self.limits.page_timeout_seconds:g} s"
                )
                return next_index + 1
            if message is None:
                self._skip_page(next_index, "reading it needed too much memory or crashed the PDF reader")
                return next_index + 1
            kind = message["type"]
            if kind == "opened":
                continue
            if kind == "fatal":
                raise DocumentParseError(str(message["reason"]))
            if kind == "done":
                return next_index
            index = int(message["index"])
            next_index = index + 1
            if kind == "page_failed":
                self._skip_page(index, str(message["reason"]))
                continue
            text = str(message["text"])
            if "warning" in message:
                self.warnings.append(str(message["warning"]))
            rows = message.get("rows")
            if not text.strip() and rows is None:
                self.pages_without_text += 1
            yield PageText(
                page_number=index + 1,
                text=text,
                location=message.get("location"),
                header=message.get("header"),
                rows=[(int(number), [str(cell) for cell in cells]) for number, cells in rows]
                if rows is not None
                else None,
            )


def _child_environment() -> dict[str, str]:
    environment = dict(os.environ)
    existing_path = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = (
        _IMPORT_ROOT if not existing_path else f"{_IMPORT_ROOT}{os.pathsep}{existing_path}"
    )
    return environment


def open_document(path: Path, kind: str, limits: PdfExtractionLimits | None = None) -> PdfPageStream:
    """Open any parsed kind (a DocumentKind name) for unit-by-unit reading in the child;
    raises `DocumentParseError` with the reason when it cannot be opened."""
    stream = PdfPageStream(path=path, limits=limits or PdfExtractionLimits(), kind=kind)
    stream.open()
    return stream


def open_pdf(path: Path, limits: PdfExtractionLimits | None = None) -> PdfPageStream:
    """Open a PDF for page-by-page extraction; raises `DocumentParseError` if it cannot be opened.

    The caller must iterate the result (or call `close`) so the child process ends;
    using it as a context manager does that.
    """
    stream = PdfPageStream(path=path, limits=limits or PdfExtractionLimits())
    stream.open()
    return stream
