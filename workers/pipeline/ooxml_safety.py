"""Refuse Office Open XML packages that would decompress to far more than they weigh.

A DOCX/PPTX/XLSX is a ZIP archive; a "zip bomb" declares (or hides) gigabytes of XML in a
few kilobytes. The central directory declares every part's uncompressed size, and
Python's `zipfile` never returns more bytes than declared (a stream that inflates past
its declared size fails its CRC check), so checking the declared sizes caps what the
parsers can read. The child's address-space limit backs this up.
"""

import zipfile
from pathlib import Path

from workers.pipeline.errors import DocumentParseError

# Parts the parsers load whole (document.xml, slides, shared strings...).
MAX_PART_BYTES = 256 * 1024 * 1024
# Everything together, worksheets included (openpyxl streams those in read-only mode).
MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024
MAX_PARTS = 50_000
# Real Office XML compresses 5-30x; far beyond that on a large part is a bomb.
MAX_COMPRESSION_RATIO = 200
_RATIO_CHECKED_FROM_BYTES = 16 * 1024 * 1024


def check_package(path: Path, streamed_prefixes: tuple[str, ...] = ()) -> None:
    """Raise `DocumentParseError` when the package is damaged or declares too much data.

    `streamed_prefixes`: part names read as a stream (XLSX worksheets), allowed past
    MAX_PART_BYTES but not past MAX_TOTAL_BYTES."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise DocumentParseError(f"The Office document is damaged and cannot be opened ({error})") from error
    if len(infos) > MAX_PARTS:
        raise DocumentParseError(
            f"The Office document has {len(infos):,} parts; ragql reads at most {MAX_PARTS:,}"
        )
    total = 0
    for info in infos:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= _RATIO_CHECKED_FROM_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise DocumentParseError(
                f"The Office document looks like a zip bomb: its part {info.filename!r} would expand "
                f"{ratio:,.0f}x to {info.file_size:,} bytes"
            )
        if info.file_size > MAX_PART_BYTES and not info.filename.startswith(streamed_prefixes):
            raise DocumentParseError(
                f"The Office document's part {info.filename!r} expands to {info.file_size:,} bytes; "
                f"ragql reads parts of at most {MAX_PART_BYTES:,} bytes"
            )
    if total > MAX_TOTAL_BYTES:
        raise DocumentParseError(
            f"The Office document expands to {total:,} bytes; ragql reads at most {MAX_TOTAL_BYTES:,}"
        )
