"""GraphQL types of the `search` query."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated, Any

import strawberry

from gql_server.errors import InvalidInput, NotFound
from gql_server.rag.citations import source_location
from gql_server.rag.retrieval import RetrievalMode, RetrievedPassage


@strawberry.enum(name="SearchMode", description="Which ranking `search` uses.")
class SearchMode(enum.Enum):
    HYBRID = "HYBRID"
    DENSE = "DENSE"
    LEXICAL = "LEXICAL"

    @property
    def retrieval_mode(self) -> RetrievalMode:
        return RetrievalMode(self.value)


@strawberry.enum(name="LocationKind", description="What kind of place a source's location names.")
class LocationKind(enum.Enum):
    PAGE = "PAGE"  # a PDF page (ocr: read from its image)
    SLIDE = "SLIDE"  # a PowerPoint slide
    SECTION = "SECTION"  # a Word or HTML section, by its heading path
    SHEET = "SHEET"  # an Excel sheet and row range (rows numbered as Excel shows them)
    IMAGE = "IMAGE"  # a PNG/JPEG/TIFF scan (page: the TIFF page), always OCR
    ROWS = "ROWS"  # CSV data rows (the N-th row after the header)
    DOCUMENT = "DOCUMENT"  # nothing finer is known (plain text, Markdown)


@strawberry.type(
    description="Where a passage is in its document, in the terms of the document's kind; "
    '`label` says it in words ("p. 4", "slide 7", "Sheet \'Q2\', rows 12–30", '
    '"§ Benefits › Leave", "p. 3 (OCR)").'
)
class SourceLocation:
    kind: LocationKind
    label: str
    page: int | None = strawberry.field(description="PDF page, Word page (when recorded), TIFF page.")
    page_end: int | None = strawberry.field(description="The last PDF page, when the passage spans pages.")
    slide: int | None
    sheet: str | None
    row_start: int | None = strawberry.field(
        description="SHEET: the first row as Excel numbers it; ROWS: the first CSV data row."
    )
    row_end: int | None
    heading_path: list[str] = strawberry.field(
        description="SECTION: the headings above the passage, outermost first."
    )
    paragraph: int | None = strawberry.field(description="SECTION: the paragraph's number in the document.")
    table: int | None = strawberry.field(description="The table's number in the document (or on the slide).")
    ocr: bool = strawberry.field(description="Whether the text was read from an image by OCR.")

    @classmethod
    def from_dict(cls, where: dict[str, Any]) -> SourceLocation:
        """From citations.source_location's dict (or one stored with an answer's sources)."""
        try:
            kind = LocationKind(str(where.get("kind") or "DOCUMENT"))
        except ValueError:
            kind = LocationKind.DOCUMENT
        return cls(
            kind=kind,
            label=str(where.get("label") or ""),
            page=where.get("page"),
            page_end=where.get("page_end"),
            slide=where.get("slide"),
            sheet=where.get("sheet"),
            row_start=where.get("row_start"),
            row_end=where.get("row_end"),
            heading_path=[str(part) for part in where.get("heading_path") or []],
            paragraph=where.get("paragraph"),
            table=where.get("table"),
            ocr=bool(where.get("ocr")),
        )


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
    location: SourceLocation = strawberry.field(
        description="Where the passage is, typed by the document's kind, with a label in words."
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
            location=SourceLocation.from_dict(
                source_location(
                    passage.location, passage.page_start, passage.page_end, passage.row_start, passage.row_end
                )
            ),
        )


@strawberry.type(description="Passages best matching the query, best first.")
class SearchResults:
    passages: list[Passage]


SearchResult = Annotated[SearchResults | NotFound | InvalidInput, strawberry.union("SearchResult")]
