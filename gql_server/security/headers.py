"""Browser-side defences: security headers on every HTTP response (a pure ASGI middleware).

Three kinds of responses get three Content-Security-Policies:

- HTML we serve (the single-page app's index.html, for `/` and every client-side route):
  only our own origin for scripts, styles, fonts, connections; no inline script or style
  (the built app needs neither: the theme bootstrap is a file, React sets `style` props
  through the CSSOM, which CSP does not govern), no framing, no `<base>`, no plugins.
- GraphiQL (`GET /graphql` answered with HTML): strawberry's page loads React, GraphiQL
  and the explorer plugin from unpkg (each tag pinned by an SRI hash) and runs one inline
  script. Its script-src allows exactly those URLs (full paths, not the whole CDN) and the
  SHA-256 of exactly that inline script, computed at start-up from the template strawberry
  actually renders, so an upgrade of strawberry keeps working and an injected script never
  runs. style-src: the exact stylesheet URLs and 'unsafe-inline' (see graphiql_csp_template).
  `font-src data:` because graphiql.min.css embeds its fonts.
- Everything else (GraphQL JSON, health, metrics, assets, errors):
  `default-src 'none'; frame-ancestors 'none'` — nothing in a JSON body may ever run.

A header the application set itself (downloads set their own sandbox CSP and
Cache-Control) is never overwritten.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, MutableMapping
from html.parser import HTMLParser
from typing import Any

from starlette.datastructures import MutableHeaders

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

GRAPHQL_PATH = "/graphql"

# Sent on every response. `no-referrer`: links to originals carry a signed token in their
# query string, and nothing in the app needs the Referer header, so none is ever sent.
COMMON_HEADERS: tuple[tuple[str, str], ...] = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    # Only features Chromium recognizes: an unknown one logs a console error on every page.
    (
        "permissions-policy",
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
        "microphone=(), payment=(), usb=()",
    ),
)

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

# A Host header we are willing to echo into connect-src (host, IPv4, [IPv6], optional port).
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


def _websocket_sources(scope: Scope) -> str:
    """ws:// and wss:// for the host the page was loaded from.

    CSP Level 3 lets 'self' match ws:/wss: on the same host (Chromium and Firefox do), but
    older Safari needs the WebSocket origin spelled out. Only the request's own host is
    added, never `ws:`/`wss:` at large, so the page still cannot talk to any other host.
    """
    for name, value in scope.get("headers") or ():
        if name == b"host":
            host = value.decode("latin-1")
            if _HOST.match(host):
                return f" ws://{host} wss://{host}"
            return ""
    return ""


def spa_csp(websocket_sources: str = "") -> str:
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        f"font-src 'self'; connect-src 'self'{websocket_sources}; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


class _PageResources(HTMLParser):
    """The external scripts/stylesheets and inline script/style blocks of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.script_urls: list[str] = []
        self.style_urls: list[str] = []
        self.inline_scripts: list[str] = []
        self.inline_styles: list[str] = []
        self._collecting: str | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script":
            if values.get("src"):
                self.script_urls.append(values["src"])
            else:
                self._collecting, self._buffer = "script", []
        elif tag == "style":
            self._collecting, self._buffer = "style", []
        elif tag == "link" and "stylesheet" in values.get("rel", "").split() and values.get("href"):
            self.style_urls.append(values["href"])

    def handle_data(self, data: str) -> None:
        if self._collecting:
            self._buffer.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._collecting == tag:
            text = "".join(self._buffer)
            (self.inline_scripts if tag == "script" else self.inline_styles).append(text)
            self._collecting = None


NONE = "'none'"


def _sha256_source(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def graphiql_csp_template(html: str) -> str:
    """The CSP for one GraphiQL page, with `{ws}` left for the request's WebSocket sources."""
    page = _PageResources()
    page.feed(html)
    page.close()
    scripts = " ".join([*page.script_urls, *map(_sha256_source, page.inline_scripts)])
    # Styles: the exact stylesheet URLs plus 'unsafe-inline'. GraphiQL's dialogs (Radix's
    # react-remove-scroll-bar) inject a <style> element whose text is computed at run time
    # (the scrollbar width), so no hash can cover it, and the bundle never reads a nonce
    # (measured in Chromium: opening the settings dialog was a style-src-elem violation).
    # A hash in the directive would disable 'unsafe-inline', so the inline block is not
    # hashed. Styles cannot run code; scripts stay pinned by URL and hash.
    styles = " ".join([*page.style_urls, "'unsafe-inline'"])
    return (
        f"default-src 'none'; script-src {scripts or NONE}; "
        f"style-src {styles}; font-src data:; img-src 'self' data:; "
        "connect-src 'self'{ws}; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'none'"
    )


def strawberry_graphiql_csp_template() -> str:
    from strawberry.http.ides import get_graphql_ide_html

    return graphiql_csp_template(get_graphql_ide_html(graphql_ide="graphiql"))


class SecurityHeaders:
    """Add the headers above to every HTTP response; WebSockets pass through untouched."""

    def __init__(self, app: ASGIApp, graphiql_csp: str | None = None) -> None:
        self.app = app
        # `{ws}` is filled per request (see _websocket_sources).
        self.graphiql_csp = graphiql_csp if graphiql_csp is not None else strawberry_graphiql_csp_template()

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        authenticated = any(name == b"authorization" for name, _ in scope.get("headers") or ())

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._decorate(MutableHeaders(scope=message), scope, path, authenticated)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _decorate(self, headers: MutableHeaders, scope: Scope, path: str, authenticated: bool) -> None:
        for name, value in COMMON_HEADERS:
            headers.setdefault(name, value)
        is_html = headers.get("content-type", "").lower().startswith("text/html")
        if is_html and path == GRAPHQL_PATH:
            headers.setdefault(
                "content-security-policy", self.graphiql_csp.replace("{ws}", _websocket_sources(scope))
            )
            headers.setdefault("cache-control", "no-cache")
        elif is_html:
            headers.setdefault("content-security-policy", spa_csp(_websocket_sources(scope)))
            # index.html names the hashed bundles: always revalidate it, so a new build is
            # picked up at once (StaticFiles answers 304 when nothing changed).
            headers.setdefault("cache-control", "no-cache")
        else:
            headers.setdefault("content-security-policy", API_CSP)
            if path == GRAPHQL_PATH or authenticated or path in ("/healthz", "/metrics"):
                # Answers are personal (or live state): no browser or proxy keeps a copy.
                headers.setdefault("cache-control", "no-store")
            elif path.startswith("/assets/"):
                # Vite names every asset by its content hash.
                headers.setdefault("cache-control", "public, max-age=31536000, immutable")
