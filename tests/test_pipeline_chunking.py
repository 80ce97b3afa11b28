from pathlib import Path

import numpy as np
import pytest

from gql_server.embedding.embedder import SentenceEmbedder, get_embedder
from tests.pdf_factory import image_only_pdf, text_pdf
from workers.pipeline.chunking import LocatedText, make_chunker
from workers.pipeline.parse_pdf import NO_TEXT_LAYER_WARNING, open_pdf
from workers.pipeline.process import ProcessingStage, process_document
from workers.pipeline.sniff import DocumentKind

DOCS = Path(__file__).parents[1].parent / "shared" / "data" / "docs"

ASTRONOMY = [
    "The Sun is a G-type main-sequence star at the centre of the Solar System.",
    "Jupiter is the largest planet and has a strong magnetic field.",
    "Saturn's rings are made mostly of ice particles with some rocky debris.",
    "A light-year is the distance light travels in one Julian year.",
]
COOKING = [
    "To make bread, mix flour, water, salt and yeast into a dough.",
    "Knead the dough for ten minutes until it is smooth and elastic.",
    "Let it rise in a warm place until doubled, then bake at 220 degrees.",
    "A crusty loaf sounds hollow when tapped on the bottom.",
]


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    return get_embedder()


def test_embedder_returns_normalized_float32_vectors(embedder: SentenceEmbedder) -> None:
    vectors = embedder.embed(["a cat sat on the mat", "a kitten rested on the rug", "quarterly tax filing"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert embedder.count_tokens("hello world") == 4  # [CLS] hello world [SEP]
    assert embedder.count_tokens_batch(["hello", "hello world"]) == [3, 4]


def test_topic_change_becomes_a_chunk_boundary_with_page_provenance(embedder: SentenceEmbedder) -> None:
    chunker = make_chunker(embedder, breakpoint_percentile_threshold=80)
    pages = [
        LocatedText(" ".join(ASTRONOMY[:2]), page_number=4),
        LocatedText(" ".join(ASTRONOMY[2:]) + " " + " ".join(COOKING[:2]), page_number=5),
        LocatedText(" ".join(COOKING[2:]), page_number=6),
    ]
    chunks = chunker.chunk_located_texts(pages, first_chunk_index=10)
    assert [chunk.chunk_index for chunk in chunks] == list(range(10, 10 + len(chunks)))
    joined = "\n".join(chunk.text for chunk in chunks)
    assert all(sentence in joined for sentence in ASTRONOMY + COOKING)
    astronomy_chunk = next(chunk for chunk in chunks if "Jupiter" in chunk.text)
    cooking_chunk = next(chunk for chunk in chunks if "Knead" in chunk.text)
    assert astronomy_chunk is not cooking_chunk
    assert astronomy_chunk.page_start == 4 and "Knead" not in astronomy_chunk.text
    assert cooking_chunk.page_end == 6 and "Jupiter" not in cooking_chunk.text
    assert all(chunk.page_start <= chunk.page_end for chunk in chunks)  # type: ignore[operator]


def test_every_chunk_fits_the_model_window(embedder: SentenceEmbedder) -> None:
    chunker = make_chunker(embedder)
    long_paragraph = " ".join(
        f"Sentence number {i} talks about item {i * 7} in some detail." for i in range(100)
    )
    unbroken_run = "x1y2z3 " * 300 + "\n" + "word" * 700  # no sentence boundary, a 2800-char "word"
    chunks = chunker.chunk_located_texts(
        [LocatedText(long_paragraph, page_number=1), LocatedText(unbroken_run, page_number=2)]
    )
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.token_count <= 256
        assert embedder.count_tokens(chunk.text) == chunk.token_count
    assert chunks[0].page_start == 1 and chunks[-1].page_end == 2


def test_text_file_chunks_carry_line_ranges(tmp_path: Path, embedder: SentenceEmbedder) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# Astronomy\n\n" + "\n".join(ASTRONOMY) + "\n\n# Baking\n\n" + "\n".join(COOKING) + "\n")
    processing = process_document(path, DocumentKind.TEXT, embedder)
    chunks = [chunk for batch in processing.batches() for chunk in batch.chunks]
    assert chunks and all(chunk.embedding is not None and chunk.embedding.shape == (384,) for chunk in chunks)
    lines = path.read_text().splitlines()
    for chunk in chunks:
        assert chunk.line_start is not None and chunk.line_end is not None
        assert chunk.text.splitlines()[0] == lines[chunk.line_start - 1]
        assert chunk.text.splitlines()[-1] == lines[chunk.line_end - 1]


def test_process_pdf_reports_progress_and_embeds(tmp_path: Path, embedder: SentenceEmbedder) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(text_pdf([ASTRONOMY, None, COOKING]))
    progress: list[tuple[ProcessingStage, int, int]] = []
    processing = process_document(
        path, DocumentKind.PDF, embedder, lambda *event: progress.append(event), pages_per_window=2
    )
    assert processing.page_count == 3
    chunks = [chunk for batch in processing.batches() for chunk in batch.chunks]
    assert [chunk.chunk_index for chunk in chunks] == list(range(len(chunks)))
    assert all(chunk.embedding is not None for chunk in chunks)
    assert {chunk.page_start for chunk in chunks} == {1, 3}
    assert (ProcessingStage.PARSING, 3, 3) in progress
    assert (ProcessingStage.EMBEDDING, len(chunks), len(chunks)) in progress
    assert processing.warnings == []


def test_scanned_pdf_ends_with_zero_chunks_and_a_warning(tmp_path: Path, embedder: SentenceEmbedder) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(image_only_pdf(3))
    processing = process_document(path, DocumentKind.PDF, embedder)
    assert [batch for batch in processing.batches()] == []
    assert processing.warnings == [NO_TEXT_LAYER_WARNING]


@pytest.mark.skipif(not DOCS.is_dir(), reason=f"shared sample documents not found at {DOCS}")
def test_r_intro_pages_and_capped_chunks_with_right_page_numbers(embedder: SentenceEmbedder) -> None:
    with open_pdf(DOCS / "R-intro.pdf") as pdf:
        assert pdf.page_count == 113
        pages = list(pdf)
    assert len(pages) == 113 and pdf.warnings == []
    # Chunk the first 14 pages only: the whole manual takes ~40 s on two cores.
    chunks = make_chunker(embedder).chunk_located_texts(
        [LocatedText(page.text, page_number=page.page_number) for page in pages[:14]]
    )
    assert all(chunk.token_count <= 256 for chunk in chunks)
    help_chunk = next(chunk for chunk in chunks if "R has an inbuilt help facility" in chunk.text)
    assert help_chunk.page_start == 10  # section 1.7, printed page 4 (PDF page 10)
