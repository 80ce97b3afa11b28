"""Sources a person can tell apart: a clean title (PDF metadata when it names the document, else the
file name without extension and separators), the page or data-row range, and a one-line preview."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader, PdfWriter

from gql_server.rag.citations import location_label, meaningful_metadata_title, preview, title_from_filename
from tests.chat_support import chat_world, send_ok, start_session, stream_all
from tests.conftest import RunningServer
from tests.document_helpers import upload_document, wait_for_final
from tests.graphql_client import GraphQLClient
from tests.pdf_factory import text_pdf

SOURCES = """
query Answer($id: UUID!) {
  chatMessage(id: $id) {
    __typename
    ... on ChatMessage { sources { number documentTitle locationLabel preview snippet pageStart rowStart } }
  }
}
"""


@pytest.mark.parametrize(
    ("filename", "title"),
    [
        ("unstructured__layout-parser-paper-fast.pdf", "unstructured layout parser paper fast"),
        (
            "fivethirtyeight__congress-demographics_data_aging_congress.csv",
            "fivethirtyeight congress demographics data aging congress",
        ),
        ("R-intro.pdf", "R intro"),
        ("report v1.2 final.pdf", "report v1.2 final"),
        ("notes", "notes"),
        ("__.txt", "__.txt"),
    ],
)
def test_titles_from_file_names_lose_extension_and_separators(filename: str, title: str) -> None:
    assert title_from_filename(filename) == title


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("LayoutParser: A Unified Toolkit for Deep Learning Based Document Image Analysis", "same"),
        ("An  Introduction\nto R", "An Introduction to R"),
        ("Microsoft Word - notes.doc", None),
        ("untitled", None),
        ("report_final.docx", None),
        ("/home/someone/scans/page.pdf", None),
        ("C:\\Users\\x\\draft", None),
        ("", None),
        ("  ", None),
        ("42", None),
        (None, None),
    ],
)
def test_metadata_titles_are_used_only_when_they_name_the_document(
    metadata: str | None, expected: str | None
) -> None:
    assert meaningful_metadata_title(metadata) == (metadata if expected == "same" else expected)


def test_locations_say_what_row_numbers_count_and_previews_are_one_line() -> None:
    assert location_label(4, 4, None, None) == "p. 4"
    assert location_label(4, 5, None, None) == "pp. 4–5"
    assert location_label(None, None, 7, 7) == "data row 7"
    assert location_label(None, None, 7, 9) == "data rows 7–9"
    line = preview("A first line\nand a second   one.\n\n" + "word " * 80)
    assert "\n" not in line and len(line) <= 160 and line.endswith("…")
    assert line.startswith("A first line and a second one. word")


def _pdf_with_title(lines: list[str], title: str | None) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf([lines]))))
    if title is not None:
        writer.add_metadata({"/Title": title})
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


async def _ready(admin: GraphQLClient, model_id: object, filename: str, content: bytes) -> dict[str, object]:
    document = await wait_for_final(admin, await upload_document(admin, str(model_id), filename, content))
    assert document["status"] == "READY", document
    return document


@pytest.mark.asyncio
async def test_documents_and_sources_carry_clean_titles(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    world = await chat_world(server)
    text = await _ready(
        superadmin,
        world.model.id,
        "unstructured__layout-parser-paper-fast.txt",
        b"Layout detection models find the regions of a scanned page.\n",
    )
    assert text["title"] == "unstructured layout parser paper fast"
    named = await _ready(
        superadmin,
        world.model.id,
        "scan_0042.pdf",
        _pdf_with_title(["Glacier survey results for the northern valley."], "Glacier Survey 2024"),
    )
    assert named["title"] == "Glacier Survey 2024"
    placeholder = await _ready(
        superadmin,
        world.model.id,
        "field-notes_v2.pdf",
        _pdf_with_title(["Moraine samples were taken at four sites."], "Microsoft Word - fieldnotes.doc"),
    )
    assert placeholder["title"] == "field notes v2"

    session_id = await start_session(world.client, world.model.id)
    message_id = await send_ok(
        world.client, session_id, "What did the glacier survey of the northern valley find?"
    )
    await stream_all(world.client, message_id)
    sources = (await world.client.execute(SOURCES, {"id": message_id}))["chatMessage"]["sources"]
    by_title = {source["documentTitle"]: source for source in sources}
    assert "Glacier Survey 2024" in by_title, sources
    glacier = by_title["Glacier Survey 2024"]
    assert glacier["locationLabel"] == "p. 1"
    assert glacier["preview"] == "Glacier survey results for the northern valley."
    # Every source is told apart by its title, place and preview.
    labels = [(source["documentTitle"], source["locationLabel"], source["preview"]) for source in sources]
    assert len(set(labels)) == len(labels)
