"""Page furniture: running headers, footers and table headings repeated across a document's pages.

A manual's running title ("Chapter 6: Lists and data frames 30"), a journal's page header
("47699 Federal Register / Vol. 85, No. 152 / ...") or a table heading printed on every page
of a long table ("LINE POSITION DESCRIPTION") occurs on dozens of pages. Embedded and
BM25-indexed with each passage, it makes those pages look alike: their shared words outweigh
a quoted phrase that occurs on one page only, and the passage's vector leans towards the
header's topic. Such lines are kept in the stored text (a citation quotes the page as it is)
and left out of what is embedded and indexed (`Chunk.search_text`).

Detection is per document and streaming (pages arrive window by window): a line is compared
after normalising case, whitespace and digits (page numbers and chapter numbers vary), and
counted once per page. It is furniture when

- it is the first, second, last or second-to-last non-blank line of at least
  `MIN_EDGE_PAGES` pages, in the same place (a running header or footer), or
- it occurs anywhere on at least max(`MIN_REPEATED_PAGES`, `REPEATED_SHARE` of the pages
  seen) pages, holds three to `MAX_HEADING_WORDS` words of letters and does not end like a
  sentence (a repeated table heading; "for example" on a line of its own, or a sentence
  that recurs with other numbers, is content),

and, either way, it occurs once on most pages that have it: a table's cell values
("Layoff Permanent" in a list of notices) repeat within a page, furniture does not.

Lines with no letters (figures, dates, table cells) are never furniture, except a lone
page number, whose digits stay indexed anyway (see `strip_furniture`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

EDGE_LINES = 2
MIN_EDGE_PAGES = 3
MIN_REPEATED_PAGES = 5
REPEATED_SHARE = 0.05
# Longer lines are prose, even when repeated (a boilerplate paragraph is still content).
MAX_FURNITURE_CHARACTERS = 160
MAX_HEADING_WORDS = 10
_SENTENCE_END = re.compile(r"[.!?;:,]\W*$")
# Share of the pages holding a line on which it occurs exactly once, for furniture.
MIN_ONCE_PER_PAGE_SHARE = 0.8

_DIGITS = re.compile(r"\d+")
_WORD_OF_LETTERS = re.compile(r"[^\W\d_]{2,}")
_PAGE_NUMBER = re.compile(r"^\W*(?:\d+|[ivxlcdm]+)\W*$", re.IGNORECASE)
_NUMBER_TOKEN = re.compile(r"\d[\d.,/-]*")


def normalise_line(line: str) -> str:
    """The form in which a line is compared with other pages' lines."""
    return _DIGITS.sub("#", " ".join(line.split()).lower())


def _candidate(line: str) -> bool:
    stripped = line.strip()
    if not stripped or len(stripped) > MAX_FURNITURE_CHARACTERS:
        return False
    return bool(_WORD_OF_LETTERS.search(stripped)) or bool(_PAGE_NUMBER.match(stripped))


@dataclass
class FurnitureDetector:
    """Counts lines over the pages seen so far; `furniture` is the current set of normalised lines."""

    pages_seen: int = 0
    # (slot, line) → pages: slot 0/1 = first/second line, -1/-2 = last/second-to-last.
    _edge_pages: dict[tuple[int, str], int] = field(default_factory=lambda: defaultdict(int))
    _pages: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _once_pages: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def observe(self, page_texts: Iterable[str]) -> None:
        for text in page_texts:
            lines = [line for line in text.splitlines() if line.strip()]
            if not lines:
                continue
            self.pages_seen += 1
            keys = [normalise_line(line) if _candidate(line) else None for line in lines]
            slots = {
                (slot, keys[slot])
                for slot in range(-EDGE_LINES, EDGE_LINES)
                if -len(keys) <= slot < len(keys)
            }
            for slot, key in slots:
                if key is not None:
                    self._edge_pages[(slot, key)] += 1
            counts: dict[str, int] = defaultdict(int)
            for key in keys:
                if key is not None:
                    counts[key] += 1
            for key, count in counts.items():
                self._pages[key] += 1
                self._once_pages[key] += count == 1

    def _once_per_page(self, key: str) -> bool:
        return self._once_pages[key] >= MIN_ONCE_PER_PAGE_SHARE * self._pages[key]

    def furniture(self) -> frozenset[str]:
        repeated = max(MIN_REPEATED_PAGES, REPEATED_SHARE * self.pages_seen)
        found = {key for (_, key), count in self._edge_pages.items() if count >= MIN_EDGE_PAGES}
        found.update(
            key
            for key, count in self._pages.items()
            if count >= repeated
            and 3 <= len(_WORD_OF_LETTERS.findall(key)) <= MAX_HEADING_WORDS
            and not _SENTENCE_END.search(key)
        )
        return frozenset(key for key in found if self._once_per_page(key))


def strip_furniture(text: str, furniture: frozenset[str]) -> str | None:
    """`text` without its furniture lines, or None when it has none.

    A removed line's numbers stay (a page or chapter number is how people point at a page:
    "page 47699"), its words go.
    """
    if not furniture:
        return None
    kept: list[str] = []
    removed = False
    for line in text.split("\n"):
        if line.strip() and normalise_line(line) in furniture:
            removed = True
            numbers = _NUMBER_TOKEN.findall(line)
            if numbers:
                kept.append(" ".join(numbers))
            continue
        kept.append(line)
    return "\n".join(kept).strip() if removed else None
