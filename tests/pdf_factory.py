"""Build small PDFs byte by byte for the pipeline tests.

Written by hand rather than with a PDF library so the tests control exactly what is in
the file: known sentences on known pages, pages without text, hostile streams.
"""

import io
import zlib
from collections.abc import Sequence

from pypdf import PdfReader, PdfWriter

_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def _escape(text: str) -> bytes:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1")


def _text_content_stream(lines: Sequence[str]) -> bytes:
    commands = [b"BT /F1 11 Tf 14 TL 50 780 Td"]
    for line in lines:
        commands.append(b"(" + _escape(line) + b") Tj T*")
    commands.append(b"ET")
    return b"\n".join(commands)


def _image_content_stream() -> bytes:
    return b"q 200 0 0 200 100 500 cm /Im1 Do Q"


class _PdfBuilder:
    def __init__(self) -> None:
        self.objects: list[bytes] = []

    def add(self, body: bytes) -> int:
        self.objects.append(body)
        return len(self.objects)

    def add_stream(self, data: bytes, extra: bytes = b"", declared_length: int | None = None) -> int:
        length = len(data) if declared_length is None else declared_length
        return self.add(b"<< /Length %d %s>>\nstream\n" % (length, extra) + data + b"\nendstream")

    def build(self, page_bodies: Sequence[tuple[int, bool]]) -> bytes:
        """page_bodies: (content stream object number, uses the image) per page."""
        font = self.add(_FONT)
        image = self.add_stream(
            b"\x80",
            b"/Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 8 ",
        )
        pages_number = len(self.objects) + len(page_bodies) + 1
        kids = []
        for content, _ in page_bodies:
            kids.append(
                self.add(
                    b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                    b"/Resources << /Font << /F1 %d 0 R >> /XObject << /Im1 %d 0 R >> >> >>"
                    % (pages_number, content, font, image)
                )
            )
        kid_refs = b" ".join(b"%d 0 R" % kid for kid in kids)
        assert self.add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kid_refs, len(kids))) == pages_number
        catalog = self.add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_number)

        output = io.BytesIO()
        output.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(self.objects, start=1):
            offsets.append(output.tell())
            output.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
        xref_offset = output.tell()
        output.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(self.objects) + 1))
        for offset in offsets:
            output.write(b"%010d 00000 n \n" % offset)
        output.write(
            b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(self.objects) + 1, catalog, xref_offset)
        )
        return output.getvalue()


def text_pdf(pages: Sequence[Sequence[str] | None]) -> bytes:
    """A PDF with one page per entry: lines of text, or None for an image-only page."""
    builder = _PdfBuilder()
    bodies = []
    for lines in pages:
        if lines is None:
            bodies.append((builder.add_stream(_image_content_stream()), True))
        else:
            bodies.append((builder.add_stream(_text_content_stream(lines)), False))
    return builder.build(bodies)


def image_only_pdf(page_count: int) -> bytes:
    return text_pdf([None] * page_count)


def decompression_bomb_pdf(inflated_bytes: int = 1 << 30) -> tuple[bytes, int]:
    """Page 1: normal text; page 2: a Flate stream inflating to `inflated_bytes` of spaces; page 3: text.

    Returns the PDF and its size. Compressing 1 GiB of a repeated byte takes about a
    second and yields about 1 MB.
    """
    compressor = zlib.compressobj(9)
    block = b" " * (1 << 20)
    parts = [compressor.compress(b"BT /F1 11 Tf 50 700 Td (bomb) Tj ET\n")]
    for _ in range(inflated_bytes // len(block)):
        parts.append(compressor.compress(block))
    parts.append(compressor.flush())
    bomb = b"".join(parts)
    builder = _PdfBuilder()
    first = builder.add_stream(_text_content_stream(["The first page is perfectly normal."]))
    bomb_stream = builder.add_stream(bomb, b"/Filter /FlateDecode ")
    last = builder.add_stream(_text_content_stream(["The third page is normal too."]))
    pdf = builder.build([(first, False), (bomb_stream, False), (last, False)])
    return pdf, len(pdf)


def encrypt(pdf: bytes, user_password: str, owner_password: str = "owner-secret") -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-128")
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


# The 8-byte PNG signature plus an IHDR chunk: enough for any sniffer.
PNG_BYTES = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489") + b"\x00" * 64
