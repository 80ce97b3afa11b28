"""GraphQL types of the `search` query."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated

import strawberry

from gql_server.errors import InvalidInput, NotFound
from gql_server.rag.retrieval import RetrievalMode, RetrievedPassage


@strawberry.enum(name="SearchMode", description="Which ranking `search` uses.")
class SearchMode(enum.Enum):
    HYBRID = "HYBRID"
    DENSE = "DENSE"
    LEXICAL = "LEXICAL"

    @property
    def retrieval_mode(self) -> RetrievalMode:
        return RetrievalMode(self.value)


@strawberry.type(description="A retrieved chunk of a document, with where it comes from.")
class Passage:
    chunk_id: strawberry.ID
    document_id: uuid.UUID
    document_title: str
    text: str
    page_start: int | None
    page_end: int | None
    row_start: int | None
    row_end: int | None
    score: float = strawberry.field(
        description="HYBRID: reciprocal-rank-fusion score; DENSE: cosine similarity; LEXICAL: BM25 score."
    )

    @classmethod
    def of(cls, passage: RetrievedPassage) -> Passage:
        return cls(
            chunk_id=strawberry.ID(str(passage.chunk_id)),
            document_id=passage.document_id,
            document_title=passage.document_title,
            text=passage.text,
            page_start=passage.page_start,
            page_end=passage.page_end,
            row_start=passage.row_start,
            row_end=passage.row_end,
            score=passage.score,
        )


@strawberry.type(description="Passages best matching the query, best first.")
class SearchResults:
    passages: list[Passage]


SearchResult = Annotated[SearchResults | NotFound | InvalidInput, strawberry.union("SearchResult")]
