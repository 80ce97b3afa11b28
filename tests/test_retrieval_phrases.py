"""Phrase evidence: a quoted span of the document's wording finds its page among look-alikes.

Every page below holds the span's seven words, in orders that differ from it by one swap
of neighbours, under the same running header and table heading; the other pages hold them
more often and more densely (BM25 and the embeddings prefer those). Only page 8 has the
words in the quoted order, once, among prose on other matters.
"""

from __future__ import annotations

import random

import pytest

from gql_server.rag.retrieval import quoted_phrases
from tests.conftest import RunningServer
from tests.document_helpers import upload_document, wait_for_final
from tests.factories import create_model
from tests.graphql_client import GraphQLClient
from tests.pdf_factory import text_pdf

SPAN = ["ledger", "status", "code", "marks", "pending", "balance", "transfer"]
TARGET_PAGE = 8
FILLER = [
    "Glaciers carve deep valleys over many thousands of years of slow movement.",
    "Volcanic islands rise where hot plumes of magma reach the ocean floor.",
    "Rivers deposit fine silt across wide plains during the spring floods.",
    "Desert winds shape long dunes that travel a few metres every year.",
    "Tides erode the chalk cliffs and leave caves and arches behind.",
    "Frost splits boulders when water freezes in their cracks each winter.",
]
PAGES = 14

SEARCH = """query($m: UUID!, $q: String!, $mode: SearchMode!) { search(modelId: $m, query: $q, k: 5, mode: $mode) {
  __typename ... on SearchResults { passages { pageStart pageEnd text } } } }"""


def _near_misses(rng: random.Random, count: int) -> list[str]:
    """The span with two neighbouring words swapped: the same words, almost the same order."""
    orders = []
    for _ in range(count):
        words = SPAN[:]
        swap = rng.randrange(len(words) - 1)
        words[swap], words[swap + 1] = words[swap + 1], words[swap]
        orders.append(" ".join(words))
    return orders


def _pages() -> list[list[str]]:
    rng = random.Random(11)
    phrase = " ".join(SPAN)
    pages: list[list[str]] = []
    for page in range(1, PAGES + 1):
        # Other pages hold the span's words more often (BM25 prefers them) in orders the
        # embedding barely tells from the span's; the target page holds the span once.
        near = _near_misses(rng, 3 if page == TARGET_PAGE else 4)
        sentences = [f"In this field the {order} entry is checked." for order in near]
        if page == TARGET_PAGE:
            # ... among prose on other matters, which dilutes its chunk for BM25 and the embedding.
            sentences = [*FILLER[:3], f"In this field the {phrase} entry is checked.", *FILLER[3:]]
        pages.append(
            [
                f"Command Codes BMFOL and BMFOR ledger status reference {page}",
                "LINE POSITION DESCRIPTION CODE BALANCE",
                *sentences,
                f"Ledger transfer codes - page {page}",
            ]
        )
    for number, lines in enumerate(pages, start=1):
        # The quoted span occurs on the target page only.
        assert (phrase in " ".join(lines)) == (number == TARGET_PAGE)
    return pages


def test_quoted_phrases_are_read_from_the_query() -> None:
    assert quoted_phrases('What does the document say about "a b c"?') == ["a b c"]
    assert quoted_phrases('“Ledger status” and «pending balance» and "one"') == [
        "Ledger status",
        "pending balance",
    ]
    assert quoted_phrases("no quotes here") == []


@pytest.mark.asyncio
async def test_a_quoted_span_among_repeated_furniture_ranks_its_page_first(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    document_id = await upload_document(superadmin, model.id, "codes.pdf", text_pdf(_pages()))
    final = await wait_for_final(superadmin, document_id)
    assert final["status"] == "READY", final
    question = f'What does the document say about "{" ".join(SPAN)}"?'
    data = await superadmin.execute(SEARCH, {"m": str(model.id), "q": question, "mode": "HYBRID"})
    passages = data["search"]["passages"]
    assert passages, data
    first = passages[0]
    assert first["pageStart"] <= TARGET_PAGE <= first["pageEnd"], [
        (p["pageStart"], p["pageEnd"]) for p in passages
    ]
    assert " ".join(SPAN) in " ".join(first["text"].split())
