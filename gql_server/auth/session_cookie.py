"""The refresh token as an HttpOnly cookie, for browsers (the SPA), and its CSRF rule.

A browser that sends `X-Ragql-Session: cookie` with logIn / signUp / refreshToken /
changePassword gets the refresh token as `Set-Cookie: ragql_refresh=…; HttpOnly;
SameSite=Strict; Path=/graphql; Max-Age=<REFRESH_TOKEN_DAYS>` (plus `Secure` over https,
as seen through TRUSTED_PROXIES) and `refreshToken: null` in the body: no script on the
page, injected or not, can read it. API clients that do not send the header get the token
in the body as before.

Refreshing or logging out *from the cookie* (no token argument) is a state-changing request
that a browser would attach the cookie to on its own, so it must prove it is not
cross-site: it carries the `X-Ragql-Session: cookie` header (a custom header cannot be sent
cross-site without a CORS preflight, which this server never grants), and its `Origin`,
when present, is this server's own scheme and host. SameSite=Strict already keeps the
cookie off cross-site requests in current browsers; the header check does not depend on
that. Behind a proxy the Host header must reach the server unchanged (X-Forwarded-Host is
not consulted) and X-Forwarded-Proto counts only from a trusted proxy.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

COOKIE_NAME = "ragql_refresh"
COOKIE_PATH = "/graphql"
SESSION_HEADER = "x-ragql-session"
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_http(request: HTTPConnection | None) -> bool:
    return isinstance(request, Request)


def wants_cookie(request: HTTPConnection | None) -> bool:
    """The caller asked for a cookie session (browsers: the SPA)."""
    return (
        is_http(request)
        and request is not None
        and (request.headers.get(SESSION_HEADER, "").strip().lower() == "cookie")
    )


def cookie_token(request: HTTPConnection | None) -> str | None:
    if not is_http(request) or request is None:
        return None
    return request.cookies.get(COOKIE_NAME) or None


def _origin_matches(origin: str, request: HTTPConnection) -> bool:
    try:
        parts = urlsplit(origin.strip())
        scheme = parts.scheme.lower()
        port = parts.port or DEFAULT_PORTS.get(scheme)
        own_scheme = request.url.scheme.lower()
        own_port = request.url.port or DEFAULT_PORTS.get(own_scheme)
    except ValueError:
        return False
    return bool(
        parts.hostname
        and scheme == own_scheme
        and parts.hostname.lower() == (request.url.hostname or "").lower()
        and port == own_port
    )


def cross_site_problem(request: HTTPConnection | None) -> str | None:
    """Why a cookie-only refresh or log-out is refused as possibly cross-site, or None."""
    if not wants_cookie(request) or request is None:
        return (
            "Using the session cookie needs the request header `X-Ragql-Session: cookie` "
            "(refused as a possible cross-site request); API clients pass the refresh token "
            "as an argument instead."
        )
    origin = request.headers.get("origin")
    if origin is not None and not _origin_matches(origin, request):
        return f"Refused: the request's Origin ({origin[:100]}) is not this server (cross-site request)."
    return None


def set_refresh_cookie(response: Response, request: HTTPConnection, token: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        # Starlette writes the value as given; "Strict" is the spelling of RFC 6265bis.
        samesite="Strict",  # type: ignore[arg-type]
    )


def clear_refresh_cookie(response: Response, request: HTTPConnection) -> None:
    set_refresh_cookie(response, request, "", 0)
