"""The unit the pipeline hands to storage: a piece of text small enough to embed whole."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(slots=True)
class Chunk:
    """A retrievable passage with where it came from.

    Locations are 1-based and inclusive: pages for PDFs, data rows (header excluded) for
    CSVs, lines for text files; the ones that do not apply are None. `token_count`
    includes the model's [CLS]/[SEP] tokens, so `token_count <= 256` means the model saw
    all of the text.
    """

    text: str
    chunk_index: int
    token_count: int
    page_start: int | None = None
    page_end: int | None = None
    row_start: int | None = None
    row_end: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    # The document's title when the text does not start with it: embedded and indexed
    # with the text (see `embedding_input`), stored apart so the snippet stays the text.
    context: str | None = None
    # The text without page furniture (running headers, footers, repeated table headings;
    # see `furniture.py`) when it had some: embedded and indexed instead of `text`, which
    # stays the passage as the page shows it.
    search_text: str | None = None
    # Where the passage is in the words of its kind (workers/pipeline/units.py): heading
    # path, slide, sheet and rows, OCR; None for PDF text-layer, CSV and text chunks.
    location: dict[str, Any] | None = None
    embedding: npt.NDArray[np.float32] | None = None

    def embedding_input(self) -> str:
        """What the embedding model reads: the context header, a blank line, the text
        (without its page furniture)."""
        text = self.text if self.search_text is None else self.search_text
        return f"{self.context}\n\n{text}" if self.context else text
