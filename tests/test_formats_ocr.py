"""Images and scanned PDFs read by Tesseract through the upload API (issue 13)."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import RunningServer
from tests.document_helpers import upload_document, wait_for_final
from tests.factories import create_model
from tests.formats_support import image_only_pdf_bytes, located_chunks, search_texts, text_image_png
from tests.graphql_client import GraphQLClient

pytestmark = [
    pytest.mark.skipif(
        shutil.which("tesseract") is None, reason="Tesseract missing: run make install-system"
    ),
]

LINES = ["The quarterly volcano survey found basalt", "under the northern glacier near Reykjavik."]


@pytest.mark.asyncio
async def test_png_is_read_by_ocr_and_marked_as_such(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    document_id = await upload_document(superadmin, model.id, "scan.png", text_image_png(LINES))
    document = await wait_for_final(superadmin, document_id)
    assert document["status"] == "READY" and document["kind"] == "IMAGE", document
    chunks = await located_chunks(server.state.sessionmaker, document_id)
    assert chunks and all(chunk["location"]["ocr"] is True for chunk in chunks)
    assert "basalt" in " ".join(chunk["text"] for chunk in chunks)
    passages = await search_texts(superadmin, model.id, "volcano survey basalt")
    assert "basalt" in passages[0]["text"]


@pytest.mark.asyncio
async def test_image_only_pdf_page_is_ocrd(server: RunningServer, superadmin: GraphQLClient) -> None:
    model = await create_model(server.state.sessionmaker)
    document_id = await upload_document(superadmin, model.id, "scanned.pdf", image_only_pdf_bytes(LINES))
    document = await wait_for_final(superadmin, document_id)
    assert document["status"] == "READY" and document["chunkCount"] >= 1, document
    chunks = await located_chunks(server.state.sessionmaker, document_id)
    assert chunks[0]["location"] == {"kind": "page", "page": 1, "ocr": True}
    assert "Reykjavik" in " ".join(chunk["text"] for chunk in chunks)


def test_pages_that_cannot_hold_text_are_not_sent_to_tesseract() -> None:
    import pypdfium2

    from tests.pdf_factory import image_only_pdf
    from workers.pipeline.ocr import OcrError, OcrOptions, ocr_pdf_page

    # A language Tesseract lacks: any page actually sent to it raises OcrError.
    options = OcrOptions(languages="no-such-language")
    tiny_images = pypdfium2.PdfDocument(image_only_pdf(3))  # each page draws a 1x1-pixel image
    assert [ocr_pdf_page(tiny_images, index, options) for index in range(3)] == ["", "", ""]
    scan = pypdfium2.PdfDocument(image_only_pdf_bytes(LINES))
    with pytest.raises(OcrError):
        ocr_pdf_page(scan, 0, options)
    assert "Reykjavik" in ocr_pdf_page(scan, 0, OcrOptions())
