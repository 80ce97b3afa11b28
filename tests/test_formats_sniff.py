"""What an upload is read as (HTML only with a document's structure), how each kind is served,
and how a source's location is put in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.document_helpers import upload_document, wait_for_final
from tests.factories import create_model
from tests.formats_support import docx_bytes, html_bytes, text_image_png
from tests.graphql_client import GraphQLClient
from workers.pipeline.sniff import DocumentKind, sniff_document_type

NOTES_WITH_TAGS = b"<html><script>alert(1)</script>Plain text, honestly.</html>\n" * 4


def sniffed(tmp_path: Path, name: str, content: bytes) -> DocumentKind:
    path = tmp_path / "upload"
    path.write_bytes(content)
    return sniff_document_type(path, name)


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        # Named as text: tags alone keep it text; a whole document's structure makes it HTML.
        ("notes.txt", NOTES_WITH_TAGS, DocumentKind.TEXT),
        ("notes.md", b"Use <body> and <head> tags like this.\n", DocumentKind.TEXT),
        ("page.txt", b"<!DOCTYPE html><p>Saved page</p>", DocumentKind.HTML),
        (
            "page.txt",
            b"  <html lang='en'><head><title>t</title></head><body>x</body></html>",
            DocumentKind.HTML,
        ),
        # No name to go by: the file must start as an HTML document.
        ("upload", b"Notes: the <body> element holds the page.\n", DocumentKind.TEXT),
        ("upload", b"<!-- saved -->\n<?xml version='1.0'?><html><body>x</body></html>", DocumentKind.HTML),
        ("upload", NOTES_WITH_TAGS, DocumentKind.HTML),
        # Named HTML: a tag suffices.
        ("fragment.html", b"<p>Just a fragment</p>", DocumentKind.HTML),
        ("rows.csv", b"name,value\n<b>alpha</b>,1\n", DocumentKind.CSV),
    ],
)
def test_html_needs_a_documents_structure_unless_named_html(
    tmp_path: Path, name: str, content: bytes, kind: DocumentKind
) -> None:
    assert sniffed(tmp_path, name, content) is kind


def test_utf16_html_without_doctype_is_html_even_named_txt(tmp_path: Path) -> None:
    content = "\n<head><title>Datasheet</title></head><body><p>Steel</p></body>".encode("utf-16")
    assert sniffed(tmp_path, "datasheet.txt", content) is DocumentKind.HTML


@pytest.mark.asyncio
async def test_each_kind_is_served_with_its_media_type_html_never_inline(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    uploads = {
        "policies.html": (html_bytes(), "text/html", "attachment"),
        "handbook.docx": (
            docx_bytes(),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "attachment",
        ),
        "scan.png": (text_image_png(["A scanned line of text"]), "image/png", "inline"),
        "notes.txt": (NOTES_WITH_TAGS, "text/plain", "attachment"),
    }
    ids = {
        name: await upload_document(superadmin, model.id, name, body)
        for name, (body, _, _) in uploads.items()
    }
    auth = {"Authorization": f"Bearer {superadmin.token}"}
    for name, (body, media_type, disposition) in uploads.items():
        document = await wait_for_final(superadmin, ids[name])
        assert document["status"] == "READY", document
        response = await server.client.http.get(
            server.base_url + f"/files/documents/{ids[name]}", headers=auth
        )
        assert response.status_code == 200 and response.content == body
        assert response.headers["content-type"].split(";")[0] == media_type, (name, response.headers)
        assert response.headers["content-disposition"].startswith(disposition + ";"), response.headers
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-security-policy"].startswith("sandbox;")


@pytest.mark.parametrize(
    ("location", "pages", "rows", "label"),
    [
        (None, (4, 5), (None, None), "pp. 4–5"),
        (None, (None, None), (7, 9), "data rows 7–9"),
        ({"kind": "page", "page": 3, "ocr": True}, (3, 3), (None, None), "p. 3 (OCR)"),
        ({"kind": "slide", "slide": 7, "title": "Review"}, (7, 7), (None, None), "slide 7"),
        (
            {"kind": "sheet", "sheet": "Q2", "row_start": 12, "row_end": 30},
            (None, None),
            (12, 30),
            "Sheet 'Q2', rows 12–30",
        ),
        (
            {"kind": "section", "heading_path": ["Benefits", "Leave"], "paragraph": 4},
            (None, None),
            (None, None),
            "§ Benefits › Leave",
        ),
        (
            {"kind": "section", "heading_path": ["Offices"], "table": 1},
            (None, None),
            (None, None),
            "§ Offices, table 1",
        ),
        ({"kind": "image", "ocr": True}, (None, None), (None, None), "image (OCR)"),
        ({"kind": "image", "page": 2, "ocr": True}, (2, 2), (None, None), "p. 2 (OCR)"),
    ],
)
def test_location_labels_in_words(
    location: dict[str, object] | None,
    pages: tuple[int | None, int | None],
    rows: tuple[int | None, int | None],
    label: str,
) -> None:
    from gql_server.rag.citations import location_label, source_location

    assert location_label(*pages, *rows, location) == label
    assert source_location(location, *pages, *rows)["label"] == label
