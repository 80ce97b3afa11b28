"""Authenticated downloads of kept originals: GET /files/documents/{id}.

Browsers open links without an Authorization header, so besides a bearer token the
route accepts `?token=`, a short-lived JWT (HS256, joserfc, as the access tokens) whose
claims bind it to the document, the user and the user's token version, and that
`Document.downloadUrl` embeds. Its own audience keeps it from passing as an access token
and an access token from passing as a download link. Range requests are served by
starlette's FileResponse, so a citation can open a PDF at its page. PDFs and PNG/JPEG
scans are shown inline, everything else (HTML above all) is an attachment; every file is
served with nosniff and a sandbox CSP (see download_headers).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from urllib.parse import quote

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from gql_server.auth.service import authenticate_access_token
from gql_server.auth.tokens import ISSUER
from gql_server.db.models import DocumentKind, User
from gql_server.documents import repository
from gql_server.documents.access import can_read_document
from gql_server.documents.storage import resolve_storage_path
from gql_server.state import AppState

DOWNLOAD_LINK_SECONDS = 15 * 60
DOWNLOAD_AUDIENCE = "ragql-download"
# A link is a URL: anything longer than this is not one we issued (ours are ~300 characters).
_MAX_LINK_TOKEN_LENGTH = 2048
_OOXML = "application/vnd.openxmlformats-officedocument"
_MEDIA_TYPES = {
    DocumentKind.PDF: "application/pdf",
    DocumentKind.CSV: "text/csv",
    DocumentKind.TEXT: "text/plain",
    DocumentKind.DOCX: f"{_OOXML}.wordprocessingml.document",
    DocumentKind.PPTX: f"{_OOXML}.presentationml.presentation",
    DocumentKind.XLSX: f"{_OOXML}.spreadsheetml.sheet",
    DocumentKind.HTML: "text/html",
}
# IMAGE covers three formats: the stored file's signature says which (sniff.py checked it).
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


# Shown in the browser: PDFs, so a citation's `#page=N` anchor opens the page (Chromium's
# viewer renders a PDF under the sandbox CSP below; the e2e test opens one), and PNG/JPEG
# scans, which a browser only ever draws as a picture (nosniff holds it to the type). CSV,
# text (Markdown included) and above all HTML are always downloaded: shown inline they would
# be rendered as a page of our origin, and a document is content any uploader chose.
INLINE_MEDIA_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg"})
# `sandbox` gives the document a unique opaque origin with scripts, forms, popups and plugins
# off, `default-src 'none'` stops it loading anything; together with nosniff a file can never
# act as a page of ours, whatever it contains.
DOWNLOAD_CSP = "sandbox; default-src 'none'"
# RFC 5987 attr-char besides letters and digits (quote() always keeps those and "_.-~").
_ATTR_CHARS = "!#$&+^`|"


def content_disposition(disposition: str, filename: str) -> str:
    """`filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>` (RFC 6266 / 5987).

    The fallback replaces anything outside printable ASCII, quotes, backslashes and path
    separators with `_`, so no name can break out of the header or name a path.
    """
    fallback = (
        "".join(char if " " <= char <= "~" and char not in '"\\/' else "_" for char in filename).strip()
        or "download"
    )
    safe_name = filename.replace("/", "_").replace("\\", "_")
    # "replace": a lone surrogate (never valid UTF-8) must not fail the download.
    encoded = quote(safe_name.encode("utf-8", "replace"), safe=_ATTR_CHARS)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def download_headers(media_type: str, filename: str) -> dict[str, str]:
    disposition = "inline" if media_type in INLINE_MEDIA_TYPES else "attachment"
    return {
        "content-disposition": content_disposition(disposition, filename),
        "x-content-type-options": "nosniff",
        "content-security-policy": DOWNLOAD_CSP,
        # Personal content: kept by this browser only, never by a shared cache.
        "cache-control": "private",
    }


def _media_type(kind: DocumentKind, path: Path) -> str:
    if kind is DocumentKind.IMAGE:
        with path.open("rb") as file:
            signature = file.read(8)
        return next(
            (media for magic, media in _IMAGE_SIGNATURES if signature.startswith(magic)),
            "application/octet-stream",
        )
    return _MEDIA_TYPES.get(kind, "application/octet-stream")


def download_token(secret: bytes, document_id: uuid.UUID, user: User, now: float | None = None) -> str:
    expires = int((now or time.time()) + DOWNLOAD_LINK_SECONDS)
    claims = {
        "iss": ISSUER,
        "aud": DOWNLOAD_AUDIENCE,
        "sub": str(user.id),
        "doc": str(document_id),
        "ver": user.token_version,
        "exp": expires,
    }
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(secret))


def download_url(secret: bytes, document_id: uuid.UUID, user: User) -> str:
    return f"/files/documents/{document_id}?token={download_token(secret, document_id, user)}"


def _not_found() -> Response:
    # Same answer whether the document is missing or not yours.
    return JSONResponse({"message": "Not found."}, status_code=404)


def _link_claims(secret: bytes, document_id: uuid.UUID, token: str) -> tuple[uuid.UUID, int] | None:
    """(user id, token version) of a valid, unexpired link to this document; None otherwise."""
    if len(token) > _MAX_LINK_TOKEN_LENGTH:
        return None
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": DOWNLOAD_AUDIENCE},
        doc={"essential": True, "value": str(document_id)},
        exp={"essential": True},
        sub={"essential": True},
        ver={"essential": True},
    )
    try:
        claims = jwt.decode(token, OctKey.import_key(secret), algorithms=["HS256"]).claims
        registry.validate(claims)
        return uuid.UUID(str(claims["sub"])), int(claims["ver"])
    except (JoseError, ValueError, TypeError):
        return None


async def _user_from_link(state: AppState, document_id: uuid.UUID, token: str) -> User | None:
    link = _link_claims(state.settings.jwt_secret, document_id, token)
    if link is None:
        return None
    user_id, token_version = link
    async with state.sessionmaker() as session:
        user = await session.get(User, user_id)
    # A bumped token version (log-out everywhere, password change) ends every link too.
    if user is None or not user.is_active or user.token_version != token_version:
        return None
    return user


async def download_document(request: Request) -> Response:
    state: AppState = request.state.app_state
    try:
        document_id = uuid.UUID(request.path_params["document_id"])
    except ValueError:
        return _not_found()
    user: User | None = None
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        async with state.sessionmaker() as session:
            user, _ = await authenticate_access_token(session, state.tokens, authorization[7:].strip())
    elif token := request.query_params.get("token"):
        user = await _user_from_link(state, document_id, token)
    if user is None:
        return JSONResponse(
            {"message": "Authentication required: use a bearer token or a fresh download link."},
            status_code=401,
        )
    async with state.sessionmaker() as session:
        document = await repository.get_document(session, document_id)
        if document is None or not await can_read_document(session, user, document):
            return _not_found()
    if not document.file_kept or not document.storage_path:
        return _not_found()
    path = resolve_storage_path(state.settings, document.storage_path)
    if not path.exists():
        return _not_found()
    media_type = _media_type(document.kind, path)
    return FileResponse(path, media_type=media_type, headers=download_headers(media_type, document.filename))


def download_route() -> Route:
    return Route("/files/documents/{document_id}", download_document, methods=["GET", "HEAD"])
