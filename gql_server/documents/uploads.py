"""A streaming parser for GraphQL multipart requests (graphql-multipart-request-spec).

Starlette's `request.form()` spools each file to a SpooledTemporaryFile in /tmp, so a
1 GB upload would then have to be copied into the storage dir after the body arrived —
seconds of work before the mutation could even answer. Here the body is parsed as it
arrives: form fields (`operations`, `map`) are kept in memory up to a small limit, file
parts are written straight to a temporary file inside `files_dir/incoming` while their
sha256 is computed, and the size limit is enforced on the bytes actually received.
Disk writes and hashing run in a worker thread one ~1 MB buffer at a time, so memory is
bounded and the event loop never waits on the disk.

A full disk (ENOSPC, or EDQUOT/EFBIG: a quota or file-size limit) while a file is being
written is not a broken request: the partial file is removed at once, the rest of the body
is read and thrown away (bounded by the request body limit), and the resolver answers a
typed StorageFull. Non-file parts (`operations`, `map`) together may be at most
`max_field_bytes` (MAX_REQUEST_BODY_KB); past that the request is refused with 413.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.multipart import MultipartParser, parse_options_header

FLUSH_BYTES = 1024 * 1024
MAX_FIELD_BYTES = 1024 * 1024
MAX_FILES_PER_REQUEST = 10
# The disk (or the quota, or RLIMIT_FSIZE) refuses more bytes: answered as StorageFull.
STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class MultipartRejected(Exception):
    """The body is not an acceptable multipart request; the message says why."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


@dataclass(eq=False)
class IncomingFile:
    """An uploaded file as it landed in the storage dir (the value of an `Upload` variable)."""

    field_name: str
    filename: str
    content_type: str
    path: Path
    size: int = 0
    sha256: str = ""
    too_large: bool = False
    # The disk filled up while this file was written: nothing of it is kept (StorageFull).
    storage_full: bool = False
    max_bytes: int = 0
    consumed: bool = False
    _hasher: Any = field(default_factory=hashlib.sha256, repr=False)
    _handle: IO[bytes] | None = field(default=None, repr=False)

    def discard(self) -> None:
        """Remove the temporary file unless a resolver moved it into place."""
        self._close()
        if not self.consumed:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    @property
    def refused(self) -> bool:
        """Nothing more of this file is stored (too large, or the disk is full)."""
        return self.too_large or self.storage_full

    def _open(self) -> IO[bytes]:
        # 0600 whatever the process umask: uploads are private to ragql.
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return os.fdopen(descriptor, "wb")

    def _write(self, data: bytes) -> None:
        try:
            if self._handle is None:
                self._handle = self._open()
            self._handle.write(data)
        except OSError as error:
            self._storage_failed(error)
            return
        self._hasher.update(data)

    def _finish(self) -> None:
        try:
            if self._handle is None:
                self._handle = self._open()
            self._handle.close()  # flushes: a full disk can show up only here
        except OSError as error:
            self._storage_failed(error)
            return
        finally:
            self._handle = None
        self.sha256 = self._hasher.hexdigest()

    def _storage_failed(self, error: OSError) -> None:
        if error.errno not in STORAGE_FULL_ERRNOS:
            raise error
        self.storage_full = True
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()
            except OSError:
                pass  # the buffered rest cannot be written either; the file goes anyway
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    content_type: str = "application/octet-stream"
    data: bytearray = field(default_factory=bytearray)
    file: IncomingFile | None = None


@dataclass
class StreamedForm:
    fields: dict[str, str]
    files: dict[str, IncomingFile]


def _content_disposition(value: bytes) -> tuple[str, str | None]:
    _, options = parse_options_header(value)
    name = options.get(b"name", b"").decode("utf-8", "replace")
    filename = options.get(b"filename")
    return name, (filename.decode("utf-8", "replace") if filename is not None else None)


async def parse_streamed_multipart(
    content_type: str,
    body: AsyncIterator[bytes],
    incoming_dir: Path,
    max_file_bytes: int,
    registry: list[IncomingFile],
    max_field_bytes: int = MAX_FIELD_BYTES,
) -> StreamedForm:
    """Parse a multipart body chunk by chunk. Files created are appended to `registry`
    at once, so the caller can remove them whatever happens (client gone, limit hit).
    The non-file parts together may be at most `max_field_bytes` (413 past that)."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise MultipartRejected("The multipart body has no boundary.")

    fields: dict[str, str] = {}
    files: dict[str, IncomingFile] = {}
    field_bytes = 0
    # Work the synchronous parser callbacks leave for the async side, in order.
    pending: list[tuple[IncomingFile, bytes | None]] = []
    current = _Part()
    header_field = bytearray()
    header_value = bytearray()
    headers: dict[bytes, bytes] = {}

    def on_part_begin() -> None:
        nonlocal current
        current = _Part()
        headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        disposition = headers.get(b"content-disposition")
        if disposition is None:
            raise MultipartRejected("A multipart part has no Content-Disposition header.")
        current.name, current.filename = _content_disposition(disposition)
        current.content_type = headers.get(b"content-type", b"application/octet-stream").decode("latin-1")
        if current.filename is not None:
            if len(registry) >= MAX_FILES_PER_REQUEST:
                raise MultipartRejected(f"At most {MAX_FILES_PER_REQUEST} files per request.")
            incoming = IncomingFile(
                field_name=current.name,
                filename=os.path.basename(current.filename.replace("\\", "/"))[:500] or "upload",
                content_type=current.content_type,
                path=incoming_dir / f"{uuid.uuid4().hex}.part",
                max_bytes=max_file_bytes,
            )
            registry.append(incoming)
            current.file = incoming

    def on_part_data(data: bytes, start: int, end: int) -> None:
        nonlocal field_bytes
        incoming = current.file
        if incoming is None:
            field_bytes += end - start
            if field_bytes > max_field_bytes:
                raise MultipartRejected(
                    f"The multipart request's form fields (operations, map) are larger than "
                    f"{max_field_bytes // 1024} KB.",
                    413,
                )
            current.data.extend(data[start:end])
            return
        if incoming.refused:
            return  # keep reading (bounded by the request body limit) but store nothing more
        incoming.size += end - start
        if incoming.size > max_file_bytes:
            incoming.too_large = True
            current.data.clear()
            return
        current.data.extend(data[start:end])
        if len(current.data) >= FLUSH_BYTES:
            pending.append((incoming, bytes(current.data)))
            current.data.clear()

    def on_part_end() -> None:
        incoming = current.file
        if incoming is None:
            fields[current.name] = current.data.decode("utf-8", "replace")
            return
        if current.data and not incoming.refused:
            pending.append((incoming, bytes(current.data)))
        current.data.clear()
        pending.append((incoming, None))  # None: the part is complete
        files[current.name] = incoming

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
        },
    )

    async def drain_pending() -> None:
        while pending:
            incoming, data = pending.pop(0)
            if incoming.refused:
                continue
            if data is None:
                await asyncio.to_thread(incoming._finish)
            else:
                await asyncio.to_thread(incoming._write, data)

    try:
        async for chunk in body:
            if not chunk:
                continue
            parser.write(chunk)
            if pending:
                await drain_pending()
        parser.finalize()
        await drain_pending()
    except MultipartRejected:
        raise
    except ValueError as error:  # python-multipart's MultipartParseError is a ValueError
        raise MultipartRejected(f"Unable to parse the multipart body: {error}") from error
    finally:
        for incoming in registry:
            incoming._close()
    for incoming in files.values():
        if incoming.refused:
            incoming.discard()
    return StreamedForm(fields=fields, files=files)
