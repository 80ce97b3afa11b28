"""Detect the character encoding of a text file from a sample of its bytes.

Shared by the sniffer and the CSV/text parsers so that all three agree on what
"is text" means.
"""

import codecs
from dataclasses import dataclass

# Bytes below 0x20 that legitimately appear in text files: tab, LF, VT, FF, CR, and
# ESC/SUB, which show up in old DOS exports. Anything else smells like binary.
_TEXT_CONTROL_BYTES = frozenset(b"\t\n\x0b\x0c\r\x1a\x1b")

_BOM_ENCODINGS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: its BOM starts with UTF-16 LE's
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True, slots=True)
class DetectedEncoding:
    """How to decode a file, with `codecs`-compatible name and whether it carries a BOM."""

    name: str
    has_byte_order_mark: bool


def looks_binary(sample: bytes) -> bool:
    """True when the sample contains NULs or control bytes that text files do not contain."""
    return any(byte < 0x20 and byte not in _TEXT_CONTROL_BYTES for byte in sample)


def detect_text_encoding(sample: bytes, *, sample_is_whole_file: bool) -> DetectedEncoding | None:
    """Return the encoding of a text sample, or None when the bytes are not text.

    UTF-8 is tried strictly; a sample cut in the middle of a multi-byte character is
    tolerated unless the sample is the whole file. cp1252 is the single-byte fallback
    (it is what Excel on Windows writes); its five undefined bytes fall back to latin-1.
    """
    for byte_order_mark, encoding in _BOM_ENCODINGS:
        if sample.startswith(byte_order_mark):
            try:
                codecs.getincrementaldecoder(encoding)().decode(sample, final=sample_is_whole_file)
            except UnicodeDecodeError:
                return None
            return DetectedEncoding(encoding, has_byte_order_mark=True)
    if looks_binary(sample):
        return None
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=sample_is_whole_file)
        return DetectedEncoding("utf-8", has_byte_order_mark=False)
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return DetectedEncoding("cp1252", has_byte_order_mark=False)
    except UnicodeDecodeError:
        return DetectedEncoding("latin-1", has_byte_order_mark=False)
