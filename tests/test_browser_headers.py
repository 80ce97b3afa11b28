"""Browser-side defences on a real server: CSP, framing, nosniff, referrer, caching, downloads.

Black-box: every assertion reads the headers a browser would get from the running app.
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import unquote

import httpx
import pytest

from gql_server.app import FRONTEND_DIST
from tests.conftest import RunningServer
from tests.document_helpers import upload_document
from tests.factories import create_model
from tests.graphql_client import GraphQLClient
from tests.pdf_factory import text_pdf

pytestmark = pytest.mark.asyncio


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            parsed[words[0].lower()] = words[1:]
    return parsed


def assert_common(response: httpx.Response) -> None:
    headers = response.headers
    assert headers.get("x-content-type-options") == "nosniff", dict(headers)
    assert headers.get("x-frame-options") == "DENY", dict(headers)
    assert headers.get("referrer-policy") == "no-referrer", dict(headers)
    assert headers.get("cross-origin-opener-policy") == "same-origin", dict(headers)
    policy = directives(headers.get("content-security-policy", ""))
    assert policy.get("frame-ancestors") == ["'none'"], headers.get("content-security-policy")


async def test_single_page_app_has_a_strict_csp(server: RunningServer) -> None:
    assert (FRONTEND_DIST / "index.html").exists(), "frontend/dist is built by `make install`"
    http = server.client.http
    for path in ("/", "/login", "/admin/models"):
        response = await http.get(server.base_url + path)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        assert_common(response)
        policy = directives(response.headers["content-security-policy"])
        assert policy["default-src"] == ["'self'"]
        assert policy["script-src"] == ["'self'"], "no inline or eval'd script"
        assert policy["style-src"] == ["'self'"], "no inline style"
        assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
        assert policy["form-action"] == ["'self'"]
        # WebSockets only to the page's own host (never `ws:` / `wss:` at large).
        host = server.base_url.removeprefix("http://")
        assert sorted(policy["connect-src"]) == sorted(["'self'", f"ws://{host}", f"wss://{host}"])
        assert "data:" in policy["img-src"]
        assert "permissions-policy" in response.headers
        assert response.headers.get("cache-control") == "no-cache"
        # The CSP is one the built page can live with: no inline script or style in it.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.text), response.text
        assert "<style" not in response.text and " style=" not in response.text
    asset = re.search(r'src="(/assets/[^"]+\.js)"', response.text)
    assert asset, response.text
    script = await http.get(server.base_url + asset.group(1))
    assert script.status_code == 200
    assert script.headers.get("x-content-type-options") == "nosniff"
    assert "immutable" in script.headers.get("cache-control", "")


async def test_graphiql_gets_its_own_csp_matching_its_page(server: RunningServer) -> None:
    response = await server.client.http.get(server.base_url + "/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert_common(response)
    policy = directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    page = response.text
    # Every external script and stylesheet the page loads is allowed by its exact URL.
    script_urls = re.findall(r'<script[^>]*\bsrc="([^"]+)"', page)
    style_urls = re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"', page, flags=re.S)
    style_urls += re.findall(r'<link[^>]*href="([^"]+)"[^>]*rel="stylesheet"', page, flags=re.S)
    assert script_urls and style_urls
    for url in script_urls:
        assert url in policy["script-src"], url
    for url in style_urls:
        assert url in policy["style-src"], url
    # The inline script is allowed by its hash only, never by 'unsafe-inline' or eval.
    inline_scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert inline_scripts
    for block in inline_scripts:
        digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy["script-src"]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    # Styles: GraphiQL's dialogs inject computed <style> elements, so inline styles are
    # allowed there (and only there); stylesheets still only from their exact URLs.
    assert "'unsafe-inline'" in policy["style-src"]
    for directive in ("script-src", "style-src"):
        # Not the whole CDN: only full paths of pinned files.
        assert "https://unpkg.com" not in policy[directive] and "https:" not in policy[directive]
        assert all(source.startswith(("https://unpkg.com/", "'")) for source in policy[directive])
    assert policy["object-src"] == ["'none'"]


async def test_graphql_json_answers_cannot_run_and_are_not_stored(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    http = server.client.http
    anonymous = await http.post(server.base_url + "/graphql", json={"query": "{ __typename }"})
    assert anonymous.status_code == 200
    assert_common(anonymous)
    assert directives(anonymous.headers["content-security-policy"])["default-src"] == ["'none'"]
    assert anonymous.headers.get("cache-control") == "no-store"
    authenticated = await http.post(
        server.base_url + "/graphql",
        json={"query": "{ me { email } }"},
        headers={"Authorization": f"Bearer {superadmin.token}"},
    )
    assert authenticated.json()["data"]["me"]["email"]
    assert_common(authenticated)
    assert authenticated.headers.get("cache-control") == "no-store"
    get_query = await http.get(server.base_url + "/graphql", params={"query": "{ __typename }"})
    assert get_query.status_code == 200 and get_query.headers["content-type"].startswith("application/json")
    assert get_query.headers.get("cache-control") == "no-store"
    assert directives(get_query.headers["content-security-policy"])["default-src"] == ["'none'"]
    # Refusals made before the app runs (the body-size middleware) carry them too.
    too_big = await http.post(
        server.base_url + "/graphql",
        content=b'{"query": "' + b"x" * (server.settings.max_request_body_kb * 1024 + 10) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert too_big.status_code == 413
    assert_common(too_big)
    health = await http.get(server.base_url + "/healthz")
    assert_common(health)
    assert health.headers.get("cache-control") == "no-store"


async def test_downloads_pdf_inline_other_types_attachment_all_sandboxed(
    server: RunningServer, superadmin: GraphQLClient
) -> None:
    model = await create_model(server.state.sessionmaker)
    http = server.client.http
    pdf_id = await upload_document(
        superadmin, model.id, "Bericht über Äpfel.pdf", text_pdf([["Apples grow on trees."]])
    )
    # A text file whose bytes look like HTML: it must never be rendered as a page of ours.
    html_like = b"<html><script>alert(document.domain)</script>Plain text, honestly.</html>\n" * 4
    text_id = await upload_document(superadmin, model.id, "Notizen – Straße.txt", html_like)
    csv_id = await upload_document(superadmin, model.id, "rows.csv", b"name,value\nalpha,1\nbeta,2\n")
    auth = {"Authorization": f"Bearer {superadmin.token}"}

    pdf = await http.get(server.base_url + f"/files/documents/{pdf_id}", headers=auth)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    disposition = pdf.headers["content-disposition"]
    assert disposition.startswith("inline;"), disposition
    encoded = re.search(r"filename\*=UTF-8''([^;]+)", disposition)
    assert encoded and unquote(encoded.group(1)) == "Bericht über Äpfel.pdf", disposition
    assert re.search(r'filename="[ -~]+"', disposition) and "ü" not in disposition

    for document_id, kind in ((text_id, "text/plain"), (csv_id, "text/csv")):
        response = await http.get(server.base_url + f"/files/documents/{document_id}", headers=auth)
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
        assert response.headers["content-disposition"].startswith("attachment;"), response.headers
    text_response = await http.get(server.base_url + f"/files/documents/{text_id}", headers=auth)
    assert text_response.content == html_like
    fallback = re.search(r'filename="([^"]*)"', text_response.headers["content-disposition"])
    assert fallback and fallback.group(1) == "Notizen _ Stra_e.txt", text_response.headers[
        "content-disposition"
    ]

    for response in (pdf, text_response):
        assert response.headers["x-content-type-options"] == "nosniff"
        policy = directives(response.headers["content-security-policy"])
        assert "sandbox" in policy and policy["sandbox"] == [], response.headers["content-security-policy"]
        assert policy["default-src"] == ["'none'"]
        assert response.headers["cache-control"] == "private"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
    # Ranges (the PDF viewer's page fetches) keep every header.
    part = await http.get(
        server.base_url + f"/files/documents/{pdf_id}", headers={**auth, "Range": "bytes=0-99"}
    )
    assert part.status_code == 206
    assert part.headers["content-disposition"].startswith("inline;")
    assert "sandbox" in directives(part.headers["content-security-policy"])
    # Refusals are JSON that cannot run either.
    refused = await http.get(server.base_url + f"/files/documents/{pdf_id}")
    assert refused.status_code == 401
    assert_common(refused)


async def test_content_disposition_cannot_be_broken_out_of() -> None:
    # Multipart clients percent-encode quotes and line breaks in a filename, so a stored name
    # rarely holds them; the header is built safely whatever it holds.
    from gql_server.documents.downloads import content_disposition

    header = content_disposition("attachment", 'a"b\\c/d\r\nSet-Cookie: x=1;\udc80.txt')
    assert "\r" not in header and "\n" not in header
    fallback = re.search(r'filename="([^"]*)"', header)
    assert fallback and fallback.group(1) == "a_b_c_d__Set-Cookie: x=1;_.txt", header
    encoded = re.search(r"filename\*=UTF-8''(\S+)$", header)
    assert encoded and "/" not in unquote(encoded.group(1)), header
