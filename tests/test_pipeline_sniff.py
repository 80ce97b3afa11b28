import codecs
from pathlib import Path

import pytest

from tests.pdf_factory import PNG_BYTES, text_pdf
from workers.pipeline.errors import UnsupportedDocument
from workers.pipeline.sniff import DocumentKind, sniff_document_type


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_pdf_is_recognised_by_magic_bytes_whatever_its_name(tmp_path: Path) -> None:
    assert (
        sniff_document_type(write(tmp_path, "report.txt", text_pdf([["Hello."]])), "report.txt")
        is DocumentKind.PDF
    )


def test_pdf_header_after_junk_within_first_kilobyte(tmp_path: Path) -> None:
    content = b"\x00" * 500 + text_pdf([["Hello."]])
    assert sniff_document_type(write(tmp_path, "a.pdf", content), "a.pdf") is DocumentKind.PDF


def test_damaged_png_named_pdf_is_rejected_with_a_clear_reason(tmp_path: Path) -> None:
    # PNG images are accepted (OCR, issue 13); this one is only a header and zeros.
    with pytest.raises(UnsupportedDocument) as raised:
        sniff_document_type(write(tmp_path, "scan.pdf", PNG_BYTES), "scan.pdf")
    assert raised.value.reason.startswith("The file is a PNG image that is damaged or truncated")


@pytest.mark.parametrize(
    ("content", "described_as"),
    [
        (b"BM" + b"\x00" * 60, "BMP image"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00", "GIF image"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40, "ZIP archive"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\x00" * 20, "gzip"),
        (b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 40, "ELF"),
        (bytes(range(256)) * 4, "binary file"),
    ],
)
def test_binary_formats_are_named(tmp_path: Path, content: bytes, described_as: str) -> None:
    with pytest.raises(UnsupportedDocument) as raised:
        sniff_document_type(write(tmp_path, "upload.pdf", content), "upload.pdf")
    assert described_as in raised.value.reason


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedDocument, match="The file is empty"):
        sniff_document_type(write(tmp_path, "empty.txt", b""), "empty.txt")


def test_csv_by_extension_and_by_content(tmp_path: Path) -> None:
    table = b"name;age;city\nAda;36;London\nAlan;41;Wilmslow\n"
    assert sniff_document_type(write(tmp_path, "people.csv", table), "people.csv") is DocumentKind.CSV
    assert sniff_document_type(write(tmp_path, "people.dat", table), "people.dat") is DocumentKind.CSV
    # The owner said prose: a table-looking .txt stays text.
    assert sniff_document_type(write(tmp_path, "people.txt", table), "people.txt") is DocumentKind.TEXT


def test_markdown_and_prose_are_text(tmp_path: Path) -> None:
    markdown = b"# Title\n\nSome prose, with commas, here.\n\n- a list item\n"
    assert sniff_document_type(write(tmp_path, "notes.md", markdown), "notes.md") is DocumentKind.TEXT
    prose = b"It was a bright cold day in April, and the clocks were striking thirteen.\n"
    assert sniff_document_type(write(tmp_path, "novel", prose), "novel") is DocumentKind.TEXT


@pytest.mark.parametrize(
    "content",
    [
        codecs.BOM_UTF8 + "Café crème\n".encode(),
        "Café crème, naïve façade\n".encode("utf-16"),  # with BOM
        "Café crème – “quoted”\n".encode("cp1252"),
    ],
)
def test_text_encodings(tmp_path: Path, content: bytes) -> None:
    assert sniff_document_type(write(tmp_path, "x.txt", content), "x.txt") is DocumentKind.TEXT
