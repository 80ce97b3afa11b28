"""Page furniture (running headers, footers, repeated table headings) and page attribution.

Furniture stays in a chunk's stored text and is kept out of what is embedded and indexed
(workers/pipeline/furniture.py, migration 0007); every sentence of a chunk lies on the
pages its page range names, also when the chunk crosses a page boundary.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import text

from gql_server.embedding.embedder import get_embedder
from tests.conftest import RunningServer
from tests.document_helpers import upload_document, wait_for_final
from tests.factories import create_model
from tests.graphql_client import GraphQLClient
from tests.pdf_factory import text_pdf
from workers.pipeline.furniture import FurnitureDetector, strip_furniture
from workers.pipeline.parse_pdf import open_pdf
from workers.pipeline.process import process_document
from workers.pipeline.sniff import DocumentKind

HEADER = "Zanzibarian Quarterly Operations Handbook - Chapter 4: Ledger Codes {page}"
TABLE_HEADING = "LINE POSITION DESCRIPTION FIELD VALUE"
FOOTER = "Confidential - page {page} of {pages}"

TOPICS = [
    "glaciers carve valleys",
    "volcanoes build islands",
    "rivers deposit silt",
    "winds shape dunes",
    "tides erode cliffs",
    "earthquakes lift ranges",
    "rain dissolves limestone",
    "frost splits boulders",
]


def _body(page: int) -> list[str]:
    topic = TOPICS[page % len(TOPICS)]
    return [
        f"On page {page} we learn how {topic} over many thousands of years.",
        f"Geologists measured sample {page * 7 + 3} near the northern ridge of site {page}.",
        f"The survey team logged entry {page * 11} with a careful note about {topic}.",
        f"Record {page * 13 + 1} closes the account of how {topic} in region {page}.",
    ]


def furniture_pages(pages: int) -> list[list[str]]:
    return [
        [HEADER.format(page=page), TABLE_HEADING, *_body(page), FOOTER.format(page=page, pages=pages)]
        for page in range(1, pages + 1)
    ]


def test_running_header_footer_and_table_heading_are_furniture_body_lines_are_not() -> None:
    pages = ["\n".join(lines) for lines in furniture_pages(8)]
    detector = FurnitureDetector()
    detector.observe(pages)
    furniture = detector.furniture()
    page = pages[4]
    stripped = strip_furniture(page, furniture)
    assert stripped is not None
    assert (
        "Zanzibarian" not in stripped and "LINE POSITION" not in stripped and "Confidential" not in stripped
    )
    for line in _body(5):
        assert line in stripped
    # The header's numbers stay findable ("page 5"); its words do not.
    assert "4" in stripped.split() and "5" in stripped.split()


def test_a_table_cell_repeated_within_pages_is_not_furniture() -> None:
    pages = [
        "\n".join(["Layoff Permanent", f"Notice {page} Acme Corp", "Layoff Permanent", f"Row {page} end"])
        for page in range(10)
    ]
    detector = FurnitureDetector()
    detector.observe(pages)
    assert "layoff permanent" not in detector.furniture()


@pytest.mark.asyncio
async def test_furniture_is_stored_but_not_indexed(server: RunningServer, superadmin: GraphQLClient) -> None:
    model = await create_model(server.state.sessionmaker)
    document_id = await upload_document(superadmin, model.id, "handbook.pdf", text_pdf(furniture_pages(8)))
    final = await wait_for_final(superadmin, document_id)
    assert final["status"] == "READY", final
    async with server.state.sessionmaker() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT text, search_text, search_vector @@ to_tsquery('english', 'zanzibarian') AS header,"
                    " search_vector @@ to_tsquery('english', 'confidential') AS footer,"
                    " search_vector @@ phraseto_tsquery('english', 'line position description') AS heading,"
                    " search_vector @@ to_tsquery('english', 'geologists') AS body"
                    " FROM document_chunks WHERE document_id = :d ORDER BY chunk_index"
                ),
                {"d": document_id},
            )
        ).all()
    assert rows
    stored = " ".join(row.text for row in rows)
    assert stored.count("Zanzibarian") == 8 and stored.count("Confidential") == 8
    assert stored.count(TABLE_HEADING) == 8
    assert not any(row.header or row.footer or row.heading for row in rows), [row.search_text for row in rows]
    assert any(row.body for row in rows)


def _sentences_by_page(pages: list[list[str]]) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for number, lines in enumerate(pages, start=1):
        for line in lines:
            found.setdefault(line, set()).add(number)
    return found


def test_every_sentence_of_a_chunk_lies_within_its_page_range(tmp_path: Path) -> None:
    rng = random.Random(7)
    words = "alpha beta gamma delta epsilon zeta theta kappa lambda sigma omega".split()
    pages: list[list[str]] = []
    for page in range(1, 13):
        # Pages of different lengths, some short enough that chunks cross page boundaries.
        count = rng.choice([1, 2, 3, 6, 9])
        pages.append(
            [
                f"Sentence {page}-{index} says {' '.join(rng.sample(words, 5))} and ends here."
                for index in range(count)
            ]
        )
    path = tmp_path / "pages.pdf"
    path.write_bytes(text_pdf(pages))
    with open_pdf(path) as stream:
        extracted = {page.page_number: page.text for page in stream}
    where = _sentences_by_page(pages)
    processing = process_document(path, DocumentKind.PDF, get_embedder(), pages_per_window=5)
    chunks = [chunk for batch in processing.batches() for chunk in batch.chunks]
    crossing = 0
    for chunk in chunks:
        assert chunk.page_start is not None and chunk.page_end is not None
        crossing += chunk.page_end > chunk.page_start
        for line in chunk.text.splitlines():
            if not line.strip():
                continue
            pages_of_line = where[line.strip()]
            assert pages_of_line & set(range(chunk.page_start, chunk.page_end + 1)), (line, chunk.page_start)
        # The range is tight: its first and last pages hold some of the chunk's text.
        assert any(line.strip() in extracted[chunk.page_start] for line in chunk.text.splitlines()[:1])
        assert any(line.strip() in extracted[chunk.page_end] for line in chunk.text.splitlines()[-1:])
    assert crossing, "the generated document has chunks that cross a page boundary"
