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
