"""Hostile and unreadable Office/image files: a typed result or FAILED with a reason (issue 13)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.document_helpers import upload, upload_document, wait_for_final
from tests.factories import create_model
from tests.formats_support import docx_bytes, located_chunks
from tests.graphql_client import GraphQLClient

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _ole2(*streams: str) -> bytes:
    return OLE2 + b"\x00" * 504 + b"".join(name.encode("utf-16-le") + b"\x00" * 40 for name in streams)


def _zip_bomb_docx() -> bytes:
    buffer = io.BytesIO()
    source = zipfile.ZipFile(io.BytesIO(docx_bytes()))
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "word/document.xml":
                with archive.open("word/document.xml", "w", force_zip64=True) as part:
                    block = b" " * (1 << 20)
                    for _ in range(300):  # 300 MB of spaces, ~300 KB compressed
                        part.write(block)
            else:
                archive.writestr(info, data)
    return buffer.getvalue()


@pytest.mark.asyncio
async def test_legacy_and_encrypted_office_files_are_refused_naming_what_is_accepted(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    for name, content, expected in (
        ("old.doc", _ole2("WordDocument"), ".doc"),
        ("old.xls", _ole2("Workbook"), ".xls"),
        ("old.ppt", _ole2("PowerPoint Document"), ".ppt"),
        ("secret.docx", _ole2("EncryptionInfo", "EncryptedPackage"), "encrypted"),
    ):
        result = await upload(superadmin, model.id, name, content)
        assert result["__typename"] == "UnsupportedFileType", result
        assert expected in result["message"] and "Word (.docx)" in result["message"], result


@pytest.mark.asyncio
async def test_damaged_zip_and_zip_bomb_fail_with_reasons_while_others_go_on(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    truncated = docx_bytes()[:3000]
    damaged = await upload(superadmin, model.id, "cut.docx", truncated)
    assert damaged["__typename"] == "UnsupportedFileType" and "damaged" in damaged["message"], damaged
    bomb_id = await upload_document(superadmin, model.id, "bomb.docx", _zip_bomb_docx())
    fine_id = await upload_document(superadmin, model.id, "fine.docx", docx_bytes())
    bomb = await wait_for_final(superadmin, bomb_id)
    assert bomb["status"] == "FAILED" and "zip bomb" in bomb["error"], bomb
    assert (await wait_for_final(superadmin, fine_id))["status"] == "READY"


@pytest.mark.asyncio
async def test_huge_image_and_macro_enabled_files(server: RunningServer, superadmin: GraphQLClient) -> None:
    from PIL import Image

    model = await create_model(server.state.sessionmaker)
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000), 1).save(buffer, format="PNG")
    huge = await upload(superadmin, model.id, "huge.png", buffer.getvalue())
    if huge["__typename"] == "DocumentUploaded":
        document = await wait_for_final(superadmin, huge["document"]["id"])
        assert document["status"] == "FAILED" and "pixels" in document["error"], document
    else:
        assert huge["__typename"] == "UnsupportedFileType" and "pixels" in huge["message"], huge
    # A .docm: the same XML with a macro-enabled content type; the text is read.
    source = zipfile.ZipFile(io.BytesIO(docx_bytes()))
    macro = io.BytesIO()
    with zipfile.ZipFile(macro, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "[Content_Types].xml":
                data = data.replace(
                    b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
                    b"application/vnd.ms-word.document.macroEnabled.main+xml",
                )
            archive.writestr(info, data)
        archive.writestr("word/vbaProject.bin", b"\x00" * 64)
    document_id = await upload_document(superadmin, model.id, "macros.docm", macro.getvalue())
    document = await wait_for_final(superadmin, document_id)
    assert document["status"] == "READY" and document["kind"] == "DOCX" and document["chunkCount"] > 0, (
        document
    )


def _tiff(frames: list[object]) -> bytes:
    buffer = io.BytesIO()
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:])  # type: ignore[attr-defined]
    return buffer.getvalue()


@pytest.mark.asyncio
async def test_tiff_over_the_page_cap_fails_with_the_reason_multi_page_tiff_is_read(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    from PIL import Image

    from tests.formats_support import text_image_png

    model = await create_model(server.state.sessionmaker)
    # 2,000 pages (the case): the cap (OCR_MAX_IMAGE_PAGES, 500) is found by walking
    # the page directory only, so no page is decoded or read.
    pages = [Image.new("L", (8, 8), 255) for _ in range(2_000)]
    many_id = await upload_document(superadmin, model.id, "fax.tiff", _tiff(pages))
    # Under the cap: each page is OCR'd with its page number.
    scans = [
        Image.open(io.BytesIO(text_image_png([line]))).convert("L")
        for line in ("The first page is about glaciers.", "The second page names Reykjavik harbour.")
    ]
    two_id = await upload_document(superadmin, model.id, "two-pages.tif", _tiff(scans))

    many = await wait_for_final(superadmin, many_id)
    assert many["status"] == "FAILED", many
    assert "more than 500 pages" in many["error"] and "OCR_MAX_IMAGE_PAGES" in many["error"], many
    two = await wait_for_final(superadmin, two_id)
    assert two["status"] == "READY" and two["kind"] == "IMAGE" and two["pageCount"] == 2, two
    chunks = await located_chunks(server.state.sessionmaker, two_id)
    reykjavik = next(chunk for chunk in chunks if "Reykjavik" in chunk["text"])
    assert reykjavik["location"] == {"kind": "image", "ocr": True, "page": 2}, reykjavik


def _package_with_part(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    source = zipfile.ZipFile(io.BytesIO(docx_bytes()))
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info, source.read(info))
        archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("part_bytes", "refused"),
    [
        # 64 MB of one byte: deflate packs it ~1000x, past the 200x any real Office XML reaches.
        (b" " * (64 << 20), True),
        # Highly compressible but small (8 MB, under the 16 MB the ratio is checked from): read.
        (b" " * (8 << 20), False),
        # 24 MB of XML-like text that compresses like real parts (< 200x): read.
        (
            b"".join(
                b"<w:t>row %d of the ledger, value %d</w:t>" % (i, i * 7919 % 100_003) for i in range(560_000)
            ),
            False,
        ),
    ],
)
def test_compression_ratio_check(tmp_path: Path, part_bytes: bytes, refused: bool) -> None:
    from workers.pipeline.errors import DocumentParseError
    from workers.pipeline.ooxml_safety import MAX_COMPRESSION_RATIO, check_package

    path = tmp_path / "package.docx"
    path.write_bytes(_package_with_part("word/media/filler.xml", part_bytes))
    info = zipfile.ZipFile(path).getinfo("word/media/filler.xml")
    ratio = info.file_size / info.compress_size
    if refused:
        assert ratio > MAX_COMPRESSION_RATIO
        with pytest.raises(DocumentParseError, match=r"zip bomb.*filler\.xml"):
            check_package(path)
    else:
        check_package(path)  # no error


_LAUGHS = (
    b'<!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    + b"".join(
        b'<!ENTITY lol%d "' % level + (b"&lol%d;" % (level - 1)) * 10 + b'">' for level in range(2, 10)
    )
    + b"]>"
)


def _with_entity_bomb(content: bytes, part: str, marker: bytes) -> bytes:
    """The file with a billion-laughs DTD in `part` and `&lol9;` (10^9 "lol"s once expanded)
    put where `marker` stands."""
    buffer = io.BytesIO()
    source = zipfile.ZipFile(io.BytesIO(content))
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == part:
                declaration_end = data.index(b"?>") + 2 if data.startswith(b"<?xml") else 0
                data = data[:declaration_end] + _LAUGHS + data[declaration_end:]
                assert marker in data, (part, data[:400])
                data = data.replace(marker, marker + b"&lol9;", 1)
            archive.writestr(info, data)
    return buffer.getvalue()


@pytest.mark.asyncio
async def test_xml_entity_expansion_is_never_performed(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    from tests.formats_support import xlsx_bytes

    model = await create_model(server.state.sessionmaker)
    hostile = {
        "laughs.docx": _with_entity_bomb(docx_bytes(), "word/document.xml", b"Everyone gets health cover"),
        "laughs.xlsx": _with_entity_bomb(xlsx_bytes(), "xl/worksheets/sheet1.xml", b"<sheetData>"),
    }
    ids = {
        name: await upload_document(superadmin, model.id, name, content) for name, content in hostile.items()
    }
    fine_id = await upload_document(superadmin, model.id, "fine.docx", docx_bytes())
    for name, document_id in ids.items():
        document = await wait_for_final(superadmin, document_id)
        # Refused with a reason, or read without the entities: never 10^9 "lol"s in memory.
        if document["status"] == "FAILED":
            assert document["error"], (name, document)
        else:
            assert document["status"] == "READY", (name, document)
            chunks = await located_chunks(server.state.sessionmaker, document_id)
            assert sum(chunk["text"].count("lol") for chunk in chunks) < 100, (name, chunks[:2])
    assert (await wait_for_final(superadmin, fine_id))["status"] == "READY"
