"""Split text into sentences that are exact, contiguous substrings of it.

Punkt alone keeps headings, list items and code lines glued to the next sentence,
because it never splits at line breaks; paragraph breaks (blank lines) are split first.
"""

import re
from collections.abc import Callable

from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


def make_sentence_splitter() -> Callable[[str], list[str]]:
    """A splitter whose pieces, concatenated, give back the text (minus leading whitespace)."""
    punkt_splitter = split_by_sentence_tokenizer()

    def split_sentences(text: str) -> list[str]:
        sentences: list[str] = []
        paragraph_start = 0
        for paragraph_break in _PARAGRAPH_BREAK.finditer(text):
            paragraph = text[paragraph_start : paragraph_break.end()]
            if paragraph.strip():
                sentences.extend(punkt_splitter(paragraph))
            paragraph_start = paragraph_break.end()
        tail = text[paragraph_start:]
        if tail.strip():
            sentences.extend(punkt_splitter(tail))
        return [sentence for sentence in sentences if sentence.strip()]

    return split_sentences
