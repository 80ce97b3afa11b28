"""Contextual chunk headers: every chunk is embedded and indexed with its document's title."""

import io
from pathlib import Path

import numpy as np
import pypdf
import pytest

from gql_server.embedding.embedder import SentenceEmbedder, get_embedder
from tests.pdf_factory import text_pdf
from workers.pipeline.chunk import Chunk
from workers.pipeline.process import context_header, process_document, with_context
from workers.pipeline.sniff import DocumentKind

ASTRONOMY = [
    "The Sun is a G-type main-sequence star at the centre of the Solar System.",
    "Jupiter is the largest planet and has a strong magnetic field.",
    "Saturn's rings are made mostly of ice particles with some rocky debris.",
]
COOKING = [
    "To make bread, mix flour, water, salt and yeast into a dough.",
    "Knead the dough for ten minutes until it is smooth and elastic.",
    "Let it rise in a warm place until doubled, then bake at 220 degrees.",
]


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    return get_embedder()


def _chunks(path: Path, kind: DocumentKind, embedder: SentenceEmbedder, **options: object) -> list[Chunk]:
    processing = process_document(path, kind, embedder, **options)  # type: ignore[arg-type]
    return [chunk for batch in processing.batches() for chunk in batch.chunks]


def test_header_is_one_short_line_without_heading_marks() -> None:
    assert context_header("## Solar   system\n") == "Solar system"
    assert context_header("x" * 301) is None
    assert context_header("   ") is None
    assert context_header(None) is None


def test_only_chunks_not_starting_with_the_title_get_it() -> None:
    chunks = [Chunk("# Title\n\nIntro", 0, 5), Chunk("Body text", 1, 3)]
    with_context(chunks, "Title")
    assert [chunk.context for chunk in chunks] == [None, "Title"]


def test_text_file_title_is_embedded_with_every_later_chunk(
    tmp_path: Path, embedder: SentenceEmbedder
) -> None:
    path = tmp_path / "stored-name.md"
    body = "\n".join(ASTRONOMY * 6) + "\n\n" + "\n".join(COOKING * 6)
    path.write_text("# The Solar System\n\n" + body + "\n")
    chunks = _chunks(path, DocumentKind.TEXT, embedder)
    assert len(chunks) >= 2
    assert chunks[0].context is None and chunks[0].text.startswith("# The Solar System")
    assert all(chunk.context == "The Solar System" for chunk in chunks[1:])
    for chunk in chunks:
        assert chunk.chunk_index == 0 or not chunk.text.startswith("#")  # the snippet stays the text
        expected = embedder.embed([chunk.embedding_input()])[0]
        assert chunk.embedding is not None
        np.testing.assert_allclose(chunk.embedding, expected, atol=1e-5)


def test_text_file_opening_with_a_paragraph_uses_the_file_title(
    tmp_path: Path, embedder: SentenceEmbedder
) -> None:
    path = tmp_path / "x.txt"
    path.write_text(" ".join(ASTRONOMY * 3) + "\n\n" + " ".join(COOKING * 3) + "\n")
    chunks = _chunks(path, DocumentKind.TEXT, embedder, file_title="Field notes")
    assert chunks and all(chunk.context == "Field notes" for chunk in chunks)


def _with_title(pdf: bytes, title: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf)))
    writer.add_metadata({"/Title": title})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_metadata_title_else_file_title(tmp_path: Path, embedder: SentenceEmbedder) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(_with_title(text_pdf([ASTRONOMY, COOKING]), "Planets and Bread"))
    chunks = _chunks(path, DocumentKind.PDF, embedder, file_title="upload name")
    assert chunks and all(chunk.context == "Planets and Bread" for chunk in chunks)

    path.write_bytes(text_pdf([ASTRONOMY, COOKING]))
    chunks = _chunks(path, DocumentKind.PDF, embedder, file_title="upload name")
    assert chunks and all(chunk.context == "upload name" for chunk in chunks)


def test_csv_chunks_have_no_header_context(tmp_path: Path, embedder: SentenceEmbedder) -> None:
    path = tmp_path / "t.csv"
    path.write_text("name,planet\nSun,no\nJupiter,yes\n")
    chunks = _chunks(path, DocumentKind.CSV, embedder, file_title="t")
    assert chunks and all(chunk.context is None for chunk in chunks)
