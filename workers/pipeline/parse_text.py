"""Stream a plain-text or Markdown file as blocks of whole lines."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workers.pipeline.errors import DocumentParseError
from workers.pipeline.text_encoding import detect_text_encoding

_ENCODING_SAMPLE_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class TextBlock:
    text: str
    first_line: int  # 1-based, inclusive
    last_line: int


def detect_file_encoding(path: Path) -> str:
    with path.open("rb") as file:
        sample = file.read(_ENCODING_SAMPLE_SIZE)
        whole_file = not file.read(1)
    encoding = detect_text_encoding(sample, sample_is_whole_file=whole_file)
    if encoding is None:
        raise DocumentParseError("The file does not contain readable text")
    return encoding.name


def read_text_blocks(path: Path, max_block_characters: int = 64 * 1024) -> Iterator[TextBlock]:
    """Yield consecutive blocks of about `max_block_characters`, cut after a blank line if possible.

    Blocks are what the chunker sees together, so cutting at paragraph breaks keeps
    paragraphs whole; memory is bounded by the block size whatever the file size.
    """
    encoding = detect_file_encoding(path)
    # errors="replace": the encoding was guessed from the start of the file, and one
    # stray byte further on should not lose the whole document.
    with open(path, encoding=encoding, errors="replace", newline=None) as file:
        lines: list[str] = []
        size = 0
        first_line = 1
        last_blank_index = -1
        for line in file:
            lines.append(line)
            size += len(line)
            if not line.strip():
                last_blank_index = len(lines) - 1
            if size < max_block_characters:
                continue
            cut = last_blank_index + 1 if last_blank_index >= len(lines) // 2 else len(lines)
            block, lines = lines[:cut], lines[cut:]
            yield TextBlock("".join(block), first_line, first_line + len(block) - 1)
            first_line += len(block)
            size = sum(len(kept) for kept in lines)
            last_blank_index = -1
        if lines:
            yield TextBlock("".join(lines), first_line, first_line + len(lines) - 1)
