"""Hostile and unreadable Office/image files: a typed result or FAILED with a reason (issue 13)."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.conftest import RunningServer
from tests.document_helpers import upload, upload_document, wait_for_final
from tests.factories import create_model
from tests.formats_support import docx_bytes
from tests.graphql_client import GraphQLClient

pytestmark = pytest.mark.asyncio

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
