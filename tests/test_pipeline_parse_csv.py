import codecs
from collections.abc import Sequence
from itertools import islice, pairwise
from pathlib import Path

import pytest

from gql_server.embedding.embedder import SentenceEmbedder, get_embedder
from workers.pipeline.parse_csv import read_csv_chunks

DOCS = Path(__file__).parents[1].parent / "shared" / "data" / "docs"


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    return get_embedder()


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def rows_of(chunks: Sequence[object]) -> list[tuple[int | None, int | None]]:
    return [(chunk.row_start, chunk.row_end) for chunk in chunks]  # type: ignore[attr-defined]


def test_semicolon_cp1252_with_ragged_rows(tmp_path: Path, embedder: SentenceEmbedder) -> None:
    content = (
        "Stadt;Einwohner;Fluss\nKöln;1080000;Rhein\nMünchen;1500000\nZürich;420000;Limmat;extra\n".encode(
            "cp1252"
        )
    )
    stream = read_csv_chunks(write(tmp_path, "städte.csv", content), embedder.count_tokens_batch)
    chunks = list(stream)
    assert stream.delimiter == ";"
    assert stream.encoding == "cp1252"
    assert len(chunks) == 1
    assert chunks[0].text.splitlines() == [
        "Stadt: Köln | Einwohner: 1080000 | Fluss: Rhein",
        "Stadt: München | Einwohner: 1500000",
        "Stadt: Zürich | Einwohner: 420000 | Fluss: Limmat",
    ]
    assert rows_of(chunks) == [(1, 3)]
    assert stream.ragged_rows == 2
    assert stream.warnings == [
        "2 of 3 rows did not have 3 columns; they were padded or truncated to match the header"
    ]


@pytest.mark.parametrize(("delimiter", "name"), [("\t", "t.tsv"), ("|", "p.csv"), (",", "c.csv")])
def test_delimiters(tmp_path: Path, embedder: SentenceEmbedder, delimiter: str, name: str) -> None:
    lines = [delimiter.join(["id", "fruit", "colour"])] + [
        delimiter.join([str(i), f"fruit{i}", "red"]) for i in range(1, 6)
    ]
    stream = read_csv_chunks(
        write(tmp_path, name, ("\n".join(lines) + "\n").encode()), embedder.count_tokens_batch
    )
    chunks = list(stream)
    assert stream.delimiter == delimiter
    assert "id: 3 | fruit: fruit3 | colour: red" in chunks[0].text


def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path: Path, embedder: SentenceEmbedder) -> None:
    content = codecs.BOM_UTF8 + "name,city\nZoë,Besançon\n".encode()
    chunks = list(read_csv_chunks(write(tmp_path, "bom.csv", content), embedder.count_tokens_batch))
    assert chunks[0].text == "name: Zoë | city: Besançon"


def test_rows_are_packed_within_the_window_with_contiguous_row_ranges(
    tmp_path: Path, embedder: SentenceEmbedder
) -> None:
    header = "country,capital,population,continent,notes"
    rows = [
        f"Country {i},Capital {i},{i * 1000},Continent {i % 7},some notes about number {i}"
        for i in range(1, 401)
    ]
    stream = read_csv_chunks(
        write(tmp_path, "many.csv", ("\n".join([header, *rows]) + "\n").encode()), embedder.count_tokens_batch
    )
    chunks = list(stream)
    assert len(chunks) > 5
    assert all(chunk.token_count <= 256 for chunk in chunks)
    assert all(embedder.count_tokens(chunk.text) == chunk.token_count for chunk in chunks)
    assert chunks[0].row_start == 1 and chunks[-1].row_end == 400
    for previous, following in pairwise(chunks):
        assert following.row_start == previous.row_end + 1  # type: ignore[operator]
    assert [chunk.chunk_index for chunk in chunks] == list(range(len(chunks)))
    row_57 = next(chunk for chunk in chunks if chunk.row_start <= 57 <= chunk.row_end)  # type: ignore[operator]
    assert "country: Country 57 | capital: Capital 57" in row_57.text


def test_a_row_wider_than_the_window_is_spread_over_chunks_of_that_row(
    tmp_path: Path, embedder: SentenceEmbedder
) -> None:
    header = ",".join(f"measurement_{i}" for i in range(120))
    row = ",".join(f"value {i} units" for i in range(120))
    chunks = list(
        read_csv_chunks(
            write(tmp_path, "wide.csv", f"{header}\n{row}\nsmall,row\n".encode()), embedder.count_tokens_batch
        )
    )
    wide = [chunk for chunk in chunks if chunk.row_start == 1]
    assert len(wide) > 1
    assert all(chunk.row_end == 1 and chunk.token_count <= 256 for chunk in wide)
    assert "measurement_119: value 119 units" in wide[-1].text
    assert chunks[-1].row_start == 2


@pytest.mark.skipif(not DOCS.is_dir(), reason=f"shared sample documents not found at {DOCS}")
def test_real_congress_csv_row_ranges(embedder: SentenceEmbedder) -> None:
    stream = read_csv_chunks(
        DOCS / "fivethirtyeight__congress-demographics_data_aging_congress.csv", embedder.count_tokens_batch
    )
    # The first few hundred chunks: tokenizing all 29k rows would dominate the test run.
    chunks = list(islice(stream, 300))
    assert chunks[0].row_start == 1
    for previous, following in pairwise(chunks):
        assert following.row_start == previous.row_end + 1  # type: ignore[operator]
    assert chunks[0].text.startswith(
        "congress: 82 | start_date: 1951-01-03 | chamber: House | state_abbrev: ND"
    )
    assert "bioname: ABBITT, Watkins Moorman" in chunks[0].text
    assert all(chunk.token_count <= 256 for chunk in chunks)
    assert stream.ragged_rows == 0


@pytest.mark.skipif(not DOCS.is_dir(), reason=f"shared sample documents not found at {DOCS}")
def test_real_polls_csv(embedder: SentenceEmbedder) -> None:
    stream = read_csv_chunks(
        DOCS / "fivethirtyeight__pollster-ratings_2023_raw-polls.csv", embedder.count_tokens_batch
    )
    chunks = list(islice(stream, 100))
    assert chunks[0].row_start == 1
    assert "pollster: Blum & Weprin Associates" in chunks[0].text
    assert all(chunk.token_count <= 256 for chunk in chunks)
