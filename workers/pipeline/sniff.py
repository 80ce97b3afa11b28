"""Decide what kind of document an upload is from its bytes, not from its name."""

import csv
import enum
from pathlib import Path

from workers.pipeline.errors import UnsupportedDocument
from workers.pipeline.text_encoding import detect_text_encoding

_SAMPLE_SIZE = 64 * 1024
_PDF_MAGIC_SEARCH_WINDOW = 1024  # PDF readers accept junk before the header, within 1 KB.
_CSV_SNIFF_LINES = 20
CANDIDATE_DELIMITERS = ",;\t|"

# Extensions whose owners told us "this is prose", even when the lines look like a table.
_PROSE_EXTENSIONS = frozenset({".md", ".markdown", ".txt", ".text", ".rst"})
_TABLE_EXTENSIONS = frozenset({".csv", ".tsv"})

# Leading bytes of formats people commonly upload by mistake, with the name we tell them.
_KNOWN_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", "a BMP image"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document such as .docx/.xlsx, which are ZIP files)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file"),
    (b"\x7fELF", "a Linux executable (ELF)"),
    (b"MZ", "a Windows executable"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office document (.doc/.xls/.ppt)"),
    (b"{\\rtf", "an RTF document"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"OggS", "an Ogg audio/video file"),
    (b"ID3", "an MP3 audio file"),
    (b"fLaC", "a FLAC audio file"),
    (b"%!PS", "a PostScript document"),
    (b"\x00asm", "a WebAssembly module"),
)


class DocumentKind(enum.Enum):
    PDF = "pdf"
    CSV = "csv"
    TEXT = "text"  # plain text and Markdown


def _describe_binary(sample: bytes) -> str:
    for signature, description in _KNOWN_BINARY_SIGNATURES:
        if sample.startswith(signature):
            return description
    if sample[4:8] == b"ftyp":
        return "an MP4/MOV video or HEIC image"
    if sample.startswith(b"RIFF") and sample[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return {b"WEBP": "a WebP image", b"WAVE": "a WAV audio file", b"AVI ": "an AVI video"}[sample[8:12]]
    return "a binary file"


def _sample_lines(text_sample: str) -> list[str]:
    lines = text_sample.splitlines()[: _CSV_SNIFF_LINES + 1]
    if len(lines) > 1 and (len(lines) > _CSV_SNIFF_LINES or not text_sample.endswith(("\n", "\r"))):
        lines = lines[:-1]  # the last line of a sample is usually cut short
    return lines[:_CSV_SNIFF_LINES]


def _sniff_dialect(lines: list[str]) -> type[csv.Dialect] | None:
    if not lines:
        return None
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=CANDIDATE_DELIMITERS)
    except csv.Error:
        return None


def sniff_delimiter(text_sample: str) -> str | None:
    """The delimiter csv.Sniffer finds in the sample's first complete lines, or None.

    The one delimiter sniffer: upload classification (`sniff_document_type`) and the CSV
    parser (`parse_csv.detect_delimiter`, which falls back to the header's most frequent
    candidate) use the same lines and candidates."""
    dialect = _sniff_dialect(_sample_lines(text_sample))
    return None if dialect is None else dialect.delimiter


def _has_consistent_delimiter(text_sample: str) -> bool:
    """csv.Sniffer agrees on a delimiter and at least two lines split into 2+ equal-size fields."""
    lines = _sample_lines(text_sample)
    if len(lines) < 2:
        return False
    dialect = _sniff_dialect(lines)
    if dialect is None:
        return False
    field_counts = {len(row) for row in csv.reader(lines, dialect) if row}
    return len(field_counts) == 1 and field_counts.pop() >= 2


def sniff_document_type(path: Path, filename: str) -> DocumentKind:
    """Classify an uploaded file as PDF, CSV or text, or raise `UnsupportedDocument`.

    `filename` is the name the user gave the upload; it only breaks ties between CSV
    and prose, because content alone cannot tell "a,b" prose from a table.
    """
    with path.open("rb") as file:
        sample = file.read(_SAMPLE_SIZE)
        sample_is_whole_file = len(sample) < _SAMPLE_SIZE or not file.read(1)
    if not sample:
        raise UnsupportedDocument("The file is empty")
    if b"%PDF-" in sample[:_PDF_MAGIC_SEARCH_WINDOW]:
        return DocumentKind.PDF

    encoding = detect_text_encoding(sample, sample_is_whole_file=sample_is_whole_file)
    if encoding is None:
        raise UnsupportedDocument(f"The file is {_describe_binary(sample)}, not a PDF, CSV or text document")
    text_sample = sample.decode(encoding.name, errors="replace")
    if not text_sample.strip():
        raise UnsupportedDocument("The file contains only whitespace")

    extension = Path(filename).suffix.lower()
    if extension in _TABLE_EXTENSIONS:
        return DocumentKind.CSV
    if extension not in _PROSE_EXTENSIONS and _has_consistent_delimiter(text_sample):
        return DocumentKind.CSV
    return DocumentKind.TEXT
