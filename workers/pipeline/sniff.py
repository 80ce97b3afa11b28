"""Decide what kind of document an upload is from its bytes, not from its name.

Office Open XML files (DOCX, PPTX, XLSX and their macro-enabled variants) are ZIP
archives: their kind is the content type of the main part, read from
`[Content_Types].xml` (size-capped; never an XML parse). Legacy Office files and
encrypted OOXML files are OLE2 compound files (magic D0 CF 11 E0); the names of their
streams say which one it is, and both are refused with a message naming what is accepted.
"""

import csv
import re
import zipfile
from pathlib import Path

from gql_server.db.models import DocumentKind
from workers.pipeline.errors import UnsupportedDocument
from workers.pipeline.text_encoding import detect_text_encoding

__all__ = ["ACCEPTED_KINDS_DESCRIPTION", "CANDIDATE_DELIMITERS", "DocumentKind", "sniff_document_type"]

ACCEPTED_KINDS_DESCRIPTION = (
    "PDF, Word (.docx), PowerPoint (.pptx), Excel (.xlsx), HTML, CSV/TSV, text/Markdown, "
    "or a PNG/JPEG/TIFF image"
)

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
    (b"{\\rtf", "an RTF document"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"OggS", "an Ogg audio/video file"),
    (b"ID3", "an MP3 audio file"),
    (b"fLaC", "a FLAC audio file"),
    (b"%!PS", "a PostScript document"),
    (b"\x00asm", "a WebAssembly module"),
)


_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAX_CONTENT_TYPES_BYTES = 1024 * 1024
# Main-part content types (ECMA-376 and the macro-enabled/template variants) per kind.
_OOXML_MAIN_PARTS: tuple[tuple[str, DocumentKind], ...] = (
    ("wordprocessingml.document.main+xml", DocumentKind.DOCX),
    ("wordprocessingml.template.main+xml", DocumentKind.DOCX),
    ("ms-word.document.macroenabled.main+xml", DocumentKind.DOCX),
    ("ms-word.template.macroenabledtemplate.main+xml", DocumentKind.DOCX),
    ("presentationml.presentation.main+xml", DocumentKind.PPTX),
    ("presentationml.slideshow.main+xml", DocumentKind.PPTX),
    ("ms-powerpoint.presentation.macroenabled.main+xml", DocumentKind.PPTX),
    ("ms-powerpoint.slideshow.macroenabled.main+xml", DocumentKind.PPTX),
    ("spreadsheetml.sheet.main+xml", DocumentKind.XLSX),
    ("spreadsheetml.template.main+xml", DocumentKind.XLSX),
    ("ms-excel.sheet.macroenabled.main+xml", DocumentKind.XLSX),
    ("ms-excel.template.macroenabled.main+xml", DocumentKind.XLSX),
)
# An HTML document starts (after whitespace, an XML declaration and comments) with its
# doctype or its <html>, <head> or <body> element; prose that merely contains tags does not.
_HTML_PREAMBLE = re.compile(r"(?:\s+|<\?xml[^>]*>|<!--.*?-->)*", re.DOTALL)
_HTML_START = re.compile(r"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]", re.IGNORECASE)
# A file the user named .txt/.md/.csv is read as HTML only with a whole document's structure.
_HTML_STRUCTURE = re.compile(r"<head[\s>]|<body[\s>]", re.IGNORECASE)
_HTML_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})
_HTML_SNIFF_CHARACTERS = 4096


def _ole2_stream(sample: bytes, name: str) -> bool:
    # Directory entries hold stream names in UTF-16LE; the directory of a small file is
    # within the first 64 KB.
    return name.encode("utf-16-le") in sample


def _refuse_ole2(sample: bytes) -> UnsupportedDocument:
    if _ole2_stream(sample, "EncryptionInfo") or _ole2_stream(sample, "EncryptedPackage"):
        return UnsupportedDocument(
            "The file is an encrypted (password-protected) Office document; remove the password "
            f"and upload it again. Accepted: {ACCEPTED_KINDS_DESCRIPTION}"
        )
    if _ole2_stream(sample, "WordDocument"):
        legacy = "a legacy binary Word document (.doc)"
    elif _ole2_stream(sample, "Workbook") or _ole2_stream(sample, "Book"):
        legacy = "a legacy binary Excel workbook (.xls)"
    elif _ole2_stream(sample, "PowerPoint Document"):
        legacy = "a legacy binary PowerPoint presentation (.ppt)"
    else:
        legacy = "a legacy binary Microsoft Office file (.doc/.xls/.ppt)"
    return UnsupportedDocument(
        f"The file is {legacy}, which ragql does not read; save it as .docx/.xlsx/.pptx and upload "
        f"that. Accepted: {ACCEPTED_KINDS_DESCRIPTION}"
    )


def _sniff_zip(path: Path) -> DocumentKind:
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo("[Content_Types].xml")
            except KeyError:
                raise UnsupportedDocument(
                    f"The file is a ZIP archive, not an Office document; accepted: {ACCEPTED_KINDS_DESCRIPTION}"
                ) from None
            if info.file_size > _MAX_CONTENT_TYPES_BYTES:
                raise UnsupportedDocument(
                    "The Office document is damaged: its content-type list is too large"
                )
            with archive.open(info) as part:
                content_types = part.read(_MAX_CONTENT_TYPES_BYTES).decode("utf-8", "replace").lower()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as error:
        raise UnsupportedDocument(
            f"The file is a damaged ZIP archive (or Office document) and cannot be opened ({error})"
        ) from error
    for marker, kind in _OOXML_MAIN_PARTS:
        if marker in content_types:
            return kind
    raise UnsupportedDocument(
        "The file is an Office Open XML package of a kind ragql does not read; "
        f"accepted: {ACCEPTED_KINDS_DESCRIPTION}"
    )


def _check_image(path: Path, described: str) -> None:
    """Refuse an image whose header is damaged or declares a decompression bomb.

    Only headers and chunk checksums are read here (Pillow's `verify`), never pixels; the
    parser child enforces the pixel and page limits of the settings."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except Image.DecompressionBombError as error:
        raise UnsupportedDocument(
            f"The file is {described} with too many pixels to read safely ({error})"
        ) from error
    except Exception as error:
        detail = str(error).strip() or type(error).__name__
        raise UnsupportedDocument(
            f"The file is {described} that is damaged or truncated ({detail})"
        ) from error


def _looks_like_html(text_sample: str, extension: str) -> bool:
    """An .html/.htm name and a tag suffice; otherwise the sample must start as an HTML document.

    Without an HTML name the first thing in the file (after whitespace, an XML
    declaration and comments) is a doctype or an <html>/<head>/<body> element; a file
    named as text or a table (.txt, .md, .csv) needs more: a doctype, or a <head> or
    <body> element, so notes that quote some markup stay text.
    """
    head = text_sample[:_HTML_SNIFF_CHARACTERS].lstrip("\ufeff")
    if extension in _HTML_EXTENSIONS:
        return "<" in head and ">" in head
    start = _HTML_PREAMBLE.match(head)
    rest = head[start.end() if start else 0 :]
    if _HTML_START.match(rest) is None:
        return False
    if extension in _PROSE_EXTENSIONS or extension in _TABLE_EXTENSIONS:
        return rest[:9].lower() == "<!doctype" or _HTML_STRUCTURE.search(rest) is not None
    return True


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
    """Classify an uploaded file by its content, or raise `UnsupportedDocument`.

    `filename` is the name the user gave the upload; it only breaks ties between CSV,
    HTML and prose, because content alone cannot tell "a,b" prose from a table.
    """
    with path.open("rb") as file:
        sample = file.read(_SAMPLE_SIZE)
        sample_is_whole_file = len(sample) < _SAMPLE_SIZE or not file.read(1)
    if not sample:
        raise UnsupportedDocument("The file is empty")
    if b"%PDF-" in sample[:_PDF_MAGIC_SEARCH_WINDOW]:
        return DocumentKind.PDF
    if sample.startswith(_OLE2_MAGIC):
        raise _refuse_ole2(sample)
    if sample.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _sniff_zip(path)
    if sample.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")):
        _check_image(path, _describe_binary(sample))
        return DocumentKind.IMAGE

    encoding = detect_text_encoding(sample, sample_is_whole_file=sample_is_whole_file)
    if encoding is None:
        raise UnsupportedDocument(
            f"The file is {_describe_binary(sample)}, which ragql does not read; accepted: "
            f"{ACCEPTED_KINDS_DESCRIPTION}"
        )
    text_sample = sample.decode(encoding.name, errors="replace")
    if not text_sample.strip():
        raise UnsupportedDocument("The file contains only whitespace")

    extension = Path(filename).suffix.lower()
    if _looks_like_html(text_sample, extension):
        return DocumentKind.HTML
    if extension in _TABLE_EXTENSIONS:
        return DocumentKind.CSV
    if extension not in _PROSE_EXTENSIONS and _has_consistent_delimiter(text_sample):
        return DocumentKind.CSV
    return DocumentKind.TEXT
