"""Signed download links (gql_server/documents/downloads.py): bound to one document, one
user and that user's token version; expire; never interchangeable with access tokens."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

from gql_server.auth.tokens import AccessTokenCodec, InvalidToken
from gql_server.documents.downloads import DOWNLOAD_LINK_SECONDS, _link_claims, download_token

SECRET = b"download-link-test-secret-of-32b"


def _user(token_version: int = 3) -> Any:
    return cast(Any, SimpleNamespace(id=uuid.uuid4(), token_version=token_version))


def test_a_link_names_its_user_and_token_version() -> None:
    user, document_id = _user(), uuid.uuid4()
    assert _link_claims(SECRET, document_id, download_token(SECRET, document_id, user)) == (user.id, 3)


def test_a_link_opens_only_its_own_document() -> None:
    token = download_token(SECRET, uuid.uuid4(), _user())
    assert _link_claims(SECRET, uuid.uuid4(), token) is None


def test_a_link_expires() -> None:
    document_id = uuid.uuid4()
    stale = download_token(SECRET, document_id, _user(), now=time.time() - DOWNLOAD_LINK_SECONDS - 5)
    assert _link_claims(SECRET, document_id, stale) is None


def test_a_link_needs_this_servers_secret_and_an_intact_signature() -> None:
    document_id = uuid.uuid4()
    token = download_token(SECRET, document_id, _user())
    assert _link_claims(b"another-servers-secret-of-32-byt", document_id, token) is None
    assert (
        _link_claims(SECRET, document_id, token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"))
        is None
    )
    assert _link_claims(SECRET, document_id, "not.a.token") is None
    assert _link_claims(SECRET, document_id, "") is None


def test_links_and_access_tokens_are_not_interchangeable() -> None:
    user, document_id = _user(), uuid.uuid4()
    codec = AccessTokenCodec(SECRET, timedelta(minutes=5))
    assert _link_claims(SECRET, document_id, codec.issue(user.id, user.token_version).token) is None
    with pytest.raises(InvalidToken):
        codec.decode(download_token(SECRET, document_id, user))
