"""Word, PowerPoint, Excel and HTML documents through the upload API (issue 13)."""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer
from tests.document_helpers import upload_document, wait_for_final
from tests.factories import create_model
from tests.formats_support import docx_bytes, html_bytes, located_chunks, pptx_bytes, search_texts, xlsx_bytes
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio


async def test_docx_sections_tables_and_heading_paths(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    document_id = await upload_document(superadmin, model.id, "handbook.docx", docx_bytes())
    document = await wait_for_final(superadmin, document_id)
    assert document["status"] == "READY" and document["kind"] == "DOCX", document
    chunks = await located_chunks(server.state.sessionmaker, document_id)
    leave = next(chunk for chunk in chunks if "Parental leave" in chunk["text"])
    assert leave["location"]["heading_path"] == ["Benefits", "Leave"]
    assert leave["location"]["kind"] == "section" and leave["location"]["paragraph"] >= 1
    assert "Staff handbook › Benefits › Leave" == leave["context"]
    assert "- Unused holiday carries over" in "\n".join(chunk["text"] for chunk in chunks)
    table_chunks = [chunk for chunk in chunks if (chunk["location"] or {}).get("table") == 1]
    assert len(table_chunks) >= 2  # the table was split, and every part repeats its header
    for chunk in table_chunks:
        assert all(line.startswith("Region: ") and "Office: " in line for line in chunk["text"].splitlines())
    all_text = "\n".join(chunk["text"] for chunk in chunks)
    assert "CONFIDENTIAL RUNNING HEADER" not in all_text and "Footer of every page" not in all_text
    passages = await search_texts(superadmin, model.id, "how long is parental leave")
    assert "twenty-six weeks" in passages[0]["text"]


async def test_pptx_slides_notes_and_tables(server: RunningServer, superadmin: GraphQLClient) -> None:
    model = await create_model(server.state.sessionmaker)
    document_id = await upload_document(superadmin, model.id, "review.pptx", pptx_bytes())
    document = await wait_for_final(superadmin, document_id)
    assert document["status"] == "READY" and document["kind"] == "PPTX" and document["pageCount"] == 8
    chunks = await located_chunks(server.state.sessionmaker, document_id)
    aurora = next(chunk for chunk in chunks if "aurora borealis" in chunk["text"])
    assert aurora["location"]["slide"] == 7 and aurora["page_start"] == 7
    assert "Speaker notes for slide 7" in aurora["text"]
    assert aurora["text"].count("Quarter review 7") == 1
    table = next(chunk for chunk in chunks if "Churn" in chunk["text"])
    assert table["location"]["slide"] == 8 and "Metric: Churn | Value: 4 percent" in table["text"]
    passages = await search_texts(superadmin, model.id, "aurora borealis campaign")
    assert passages[0]["pageStart"] == 7


async def test_xlsx_sheets_rows_and_cached_values(server: RunningServer, superadmin: GraphQLClient) -> None:
    model = await create_model(server.state.sessionmaker)
    document_id = await upload_document(superadmin, model.id, "sales.xlsx", xlsx_bytes())
    document = await wait_for_final(superadmin, document_id)
    assert document["status"] == "READY" and document["kind"] == "XLSX", document
    chunks = await located_chunks(server.state.sessionmaker, document_id)
    assert {chunk["location"]["sheet"] for chunk in chunks} == {"Q1", "Q2"}
    marrakesh = next(chunk for chunk in chunks if "Marrakesh" in chunk["text"])
    assert marrakesh["location"]["sheet"] == "Q2"
    # Rows are numbered as the sheet shows them: the header is row 1, Gadget 20 is row 21.
    assert marrakesh["row_start"] <= 21 <= marrakesh["row_end"]
    assert "Product: Gadget 20 | Units: 20 | Region: Marrakesh" in marrakesh["text"]
    # openpyxl wrote no cached value for the formula: the formula text is never indexed.
    assert not any("SUM(" in chunk["text"] for chunk in chunks)
    passages = await search_texts(superadmin, model.id, "Marrakesh gadget units")
    assert "Marrakesh" in passages[0]["text"] and passages[0]["rowStart"] is not None


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "cp1252"])
async def test_html_main_content_heading_path_and_encoding(
    server: RunningServer, superadmin: GraphQLClient, encoding: str
) -> None:
    model = await create_model(server.state.sessionmaker)
    content = html_bytes(encoding)
    if encoding == "utf-16":
        assert content.startswith(b"\xff\xfe")  # Python writes the BOM
    document_id = await upload_document(superadmin, model.id, "policies.html", content)
    document = await wait_for_final(superadmin, document_id)
    assert document["status"] == "READY" and document["kind"] == "HTML", document
    chunks = await located_chunks(server.state.sessionmaker, document_id)
    text = "\n".join(chunk["text"] for chunk in chunks)
    assert "café included" in text
    for dropped in ("secretScriptToken", "color: red", "Home navigation link", "Copyright footer"):
        assert dropped not in text
    sabbatical = next(chunk for chunk in chunks if "Sabbatical" in chunk["text"])
    assert sabbatical["location"]["heading_path"] == ["Benefits", "Leave"]


LOCATED_SEARCH = """
query Search($modelId: UUID!, $query: String!) {
  search(modelId: $modelId, query: $query, k: 3) {
    __typename
    ... on SearchResults { passages { documentId text location {
      kind label page slide sheet rowStart rowEnd headingPath ocr } } }
  }
}
"""

LOCATED_MESSAGE = """
query Message($id: UUID!) {
  chatMessage(id: $id) {
    __typename
    ... on ChatMessage { status sources { number documentId locationLabel url location {
      kind label page slide sheet rowStart rowEnd headingPath ocr } } }
  }
}
"""


async def test_sources_and_passages_carry_typed_locations_and_labels(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    from tests.chat_support import chat_world, send_ok, start_session, stream_all

    world = await chat_world(server)  # the extractive provider: answers from the passages themselves
    ids = {}
    for name, content in (
        ("review.pptx", pptx_bytes()),
        ("sales.xlsx", xlsx_bytes()),
        ("handbook.docx", docx_bytes()),
    ):
        ids[name] = await upload_document(superadmin, world.model.id, name, content)
        assert (await wait_for_final(superadmin, ids[name]))["status"] == "READY"

    cases = [
        (
            "review.pptx",
            "aurora borealis campaign sign-ups",
            {"kind": "SLIDE", "slide": 7, "label": "slide 7", "headingPath": [], "ocr": False},
        ),
        (
            "sales.xlsx",
            "Marrakesh gadget units",
            {"kind": "SHEET", "sheet": "Q2", "ocr": False},
        ),
        (
            "handbook.docx",
            "how long is parental leave",
            {"kind": "SECTION", "headingPath": ["Benefits", "Leave"], "label": "§ Benefits › Leave"},
        ),
    ]
    session_id = await start_session(world.client, world.model.id)
    for name, question, expected in cases:
        data = await superadmin.execute(LOCATED_SEARCH, {"modelId": str(world.model.id), "query": question})
        passage = data["search"]["passages"][0]
        assert passage["documentId"] == ids[name], (name, data)
        location = passage["location"]
        assert {key: location[key] for key in expected} == expected, (name, location)

        message_id = await send_ok(world.client, session_id, question)
        events = await stream_all(world.client, message_id, timeout=60)
        streamed = events[0]["sources"]
        stored = (await world.client.execute(LOCATED_MESSAGE, {"id": message_id}))["chatMessage"]
        assert stored["status"] == "COMPLETE", stored
        source = next(source for source in stored["sources"] if source["documentId"] == ids[name])
        assert {key: source["location"][key] for key in expected} == expected, (name, source)
        assert source["locationLabel"] == source["location"]["label"]
        assert any(item["documentId"] == ids[name] for item in streamed)
        if name == "sales.xlsx":
            rows = (source["location"]["rowStart"], source["location"]["rowEnd"])
            assert rows[0] <= 21 <= rows[1], source  # Gadget 20 is sheet row 21
            assert source["location"]["label"] == f"Sheet 'Q2', rows {rows[0]}–{rows[1]}"
        # Only PDF pages get a #page anchor: a slide is not a page of a PDF viewer.
        assert source["url"] is None or "#page=" not in source["url"], source
