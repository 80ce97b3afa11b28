"""Keeping only the [n] citation markers that point at a passage the model was actually given.

Models invent citations: numbers beyond the passages they saw, or markers copied from
the history. A marker that leads nowhere is worse than none, so the final answer keeps
only markers for stored sources, and removing one must not leave a stray space before
punctuation or an empty "[]". Markdown links ("[1](url)") and code (`a[0]`, fenced
blocks) are left alone: they are not citations.
"""

from __future__ import annotations

import re

# One bracket holding numbers and ranges separated by commas or semicolons: [1] [1, 3] [2-4] [1;2].
_NUMBER_OR_RANGE = r"\d+(?:\s*[-–]\s*\d+)?"
_MARKER = re.compile(
    rf"(?P<lead>[ \t]*)(?P<marker>\[\s*(?P<body>{_NUMBER_OR_RANGE}(?:\s*[,;]\s*{_NUMBER_OR_RANGE})*)\s*\])(?!\()"
)
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.DOTALL)
_RANGE = re.compile(r"(\d+)\s*[-–]\s*(\d+)")


def extract_citations(text: str, valid_numbers: set[int]) -> tuple[str, list[int]]:
    """`text` with invalid citation markers removed, and the cited numbers in order of first use.

    Groups keep their valid members ("[1, 9]" becomes "[1]" when 9 is invalid); a range
    keeps the valid numbers inside it ("[2-4]" becomes "[2, 3, 4]").
    """
    code_spans = [match.span() for match in _CODE.finditer(text)]
    pieces: list[str] = []
    cited: dict[int, None] = {}
    cursor = 0
    for match in _MARKER.finditer(text):
        marker_start = match.start("marker")
        if any(start <= marker_start < end for start, end in code_spans):
            continue
        kept = [
            number for number in _numbers_in(match.group("body"), valid_numbers) if number in valid_numbers
        ]
        lead_start = max(cursor, match.start())
        if kept:
            pieces.append(text[cursor:marker_start])
            pieces.append("[" + ", ".join(str(number) for number in dict.fromkeys(kept)) + "]")
            cited.update(dict.fromkeys(kept))
            cursor = match.end()
            continue
        # Drop the marker together with the space before it ("word [9]." -> "word.").
        pieces.append(text[cursor:lead_start])
        cursor = match.end()
        written = "".join(pieces)
        if not written or written.endswith("\n"):
            # At the start of a line there is no space before it; drop the one after instead.
            while cursor < len(text) and text[cursor] in " \t":
                cursor += 1
    pieces.append(text[cursor:])
    return "".join(pieces), list(cited)


def _numbers_in(body: str, valid_numbers: set[int]) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*[,;]\s*", body.strip()):
        range_match = _RANGE.fullmatch(part)
        if range_match:
            low, high = sorted((int(range_match.group(1)), int(range_match.group(2))))
            # Expand only over valid numbers, so "[1-100000]" costs nothing.
            numbers.extend(number for number in sorted(valid_numbers) if low <= number <= high)
        else:
            numbers.append(int(part))
    return numbers
