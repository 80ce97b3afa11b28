import resource
import time
from pathlib import Path

import pytest

from tests.pdf_factory import decompression_bomb_pdf, encrypt, image_only_pdf, text_pdf
from workers.pipeline.errors import DocumentParseError
from workers.pipeline.parse_pdf import NO_TEXT_LAYER_WARNING, PdfExtractionLimits, open_pdf

PAGES = [
    ["Photosynthesis converts light into chemical energy.", "Chlorophyll absorbs red and blue light."],
    None,
    ["The Treaty of Westphalia was signed in 1648."],
]


def write(tmp_path: Path, content: bytes, name: str = "doc.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_pages_come_back_in_order_with_their_numbers(tmp_path: Path) -> None:
    with open_pdf(write(tmp_path, text_pdf(PAGES))) as pdf:
        assert pdf.page_count == 3
        pages = list(pdf)
    assert [page.page_number for page in pages] == [1, 2, 3]
    assert "Chlorophyll absorbs red and blue light." in pages[0].text
    assert pages[1].text.strip() == ""
    assert "Westphalia" in pages[2].text
    assert pdf.pages_without_text == 1
    assert pdf.warnings == []


def test_scanned_pdf_warns_that_there_is_no_text_layer(tmp_path: Path) -> None:
    with open_pdf(write(tmp_path, image_only_pdf(4))) as pdf:
        pages = list(pdf)
    assert len(pages) == 4
    assert pdf.warnings == [NO_TEXT_LAYER_WARNING]


def test_password_protected_pdf_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(DocumentParseError) as raised:
        open_pdf(write(tmp_path, encrypt(text_pdf(PAGES), user_password="secret")))
    assert raised.value.reason == (
        "The PDF is encrypted (password protected); remove the password and upload it again"
    )


def test_pdf_encrypted_with_an_empty_user_password_parses(tmp_path: Path) -> None:
    with open_pdf(write(tmp_path, encrypt(text_pdf(PAGES), user_password=""))) as pdf:
        pages = list(pdf)
    assert "Westphalia" in pages[2].text


def test_truncated_pdf_fails_with_a_reason_or_skips_damaged_pages(tmp_path: Path) -> None:
    content = text_pdf(PAGES)
    with pytest.raises(DocumentParseError, match="damaged or truncated"):
        with open_pdf(write(tmp_path, content[: len(content) // 3])) as pdf:
            list(pdf)


def test_garbage_after_pdf_header_fails_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(DocumentParseError, match="damaged or truncated"):
        open_pdf(write(tmp_path, b"%PDF-1.7\n" + b"garbage " * 100))


def test_decompression_bomb_page_is_skipped_and_memory_stays_bounded(tmp_path: Path) -> None:
    content, _ = decompression_bomb_pdf(inflated_bytes=1 << 30)
    parent_peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    limits = PdfExtractionLimits(max_memory_bytes=512 * 1024 * 1024, page_timeout_seconds=20)
    with open_pdf(write(tmp_path, content), limits) as pdf:
        pages = list(pdf)
    assert time.monotonic() - started < 20
    texts = {page.page_number: page.text for page in pages}
    assert "perfectly normal" in texts[1]
    assert "normal too" in texts[3]
    assert 2 not in texts or "bomb" not in texts[2] or len(texts[2]) < 100_000_000
    assert any(warning.startswith("Page 2 was skipped") for warning in pdf.warnings), pdf.warnings
    # The parse ran in a child: the test process did not grow by the inflated size.
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - parent_peak_before
    assert grown_kib < 200 * 1024
    # The child's own bound is its RLIMIT_AS (512 MiB here); RUSAGE_CHILDREN is a peak over
    # every child this test process ever waited for, so it cannot be asserted per test.


def test_hanging_page_is_skipped_after_the_timeout(tmp_path: Path) -> None:
    # A huge page at a tiny timeout stands in for a page that never finishes.
    content, _ = decompression_bomb_pdf(inflated_bytes=64 << 20)
    limits = PdfExtractionLimits(page_timeout_seconds=0.05, max_memory_bytes=0)
    with open_pdf(write(tmp_path, content), limits) as pdf:
        pages = list(pdf)
    numbers = [page.page_number for page in pages]
    assert 3 in numbers or any("Page 3 was skipped" in warning for warning in pdf.warnings)
    assert any("was skipped" in warning for warning in pdf.warnings)
