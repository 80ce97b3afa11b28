"""GET /auth/oidc/login and GET /auth/oidc/callback: the browser's part of an OIDC log-in.

The flow state (state, nonce, PKCE verifier, redirect URI) lives in a signed cookie,
`ragql_oidc` (starlette's SessionMiddleware, mounted on /auth/oidc only: Path=/auth/oidc,
HttpOnly, SameSite=Lax — the callback is a top-level navigation from the IdP — 10 minutes),
not in a server-side store: it binds the callback to the browser that started the flow
(authlib requires that binding even with a cache, RFC 6749 §10.12), works across API
processes with nothing shared, and leaves nothing to clean up. Signed, not encrypted: it
holds nothing the browser's owner may not see.

The callback never answers with a token or an error page: it redirects to the SPA's log-in
page with `#code=<one-time code>` (exchanged by `exchangeLoginCode` for the session) or
`#error=<short reason>`; the fragment never reaches a server log or a Referer. Every
failure is one WARNING line (an unexpected one an ERROR with the request id), never a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from urllib.parse import quote

from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from joserfc.errors import JoseError
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from gql_server.events.bus import AccessChanged, AccessChangeReason, publish_access_changed
from gql_server.exceptions import OidcLoginRefusedError
from gql_server.oidc import service
from gql_server.oidc.client import HTTP_ERRORS, MissingIdToken, OidcClient
from gql_server.settings import Settings
from gql_server.state import AppState

logger = logging.getLogger(__name__)

FLOW_COOKIE = "ragql_oidc"
FLOW_COOKIE_SECONDS = 600
SPA_LOGIN_PAGE = "/login"
# Discovery failing: the IdP is down, answers an error, or no discovery document.
_START_ERRORS: tuple[type[Exception], ...] = (*HTTP_ERRORS, ValueError, KeyError)


def spa_redirect(**fragment: str) -> RedirectResponse:
    # 303: the browser GETs the SPA; the fragment is for the page's script only.
    parts = "&".join(f"{key}={quote(value, safe='')}" for key, value in fragment.items())
    response = RedirectResponse(f"{SPA_LOGIN_PAGE}#{parts}", status_code=303)
    response.headers["cache-control"] = "no-store"
    return response


def _redirect_uri(request: Request, client: OidcClient) -> str:
    return client.redirect_uri or str(request.url_for("oidc_callback"))


def _state(request: Request) -> AppState:
    state: AppState = request.state.app_state
    return state


async def oidc_login(request: Request) -> Response:
    client = _state(request).oidc
    if client is None:
        return spa_redirect(error="oidc_disabled")
    try:
        return await client.start(request, _redirect_uri(request, client))
    except _START_ERRORS as error:
        logger.warning("OIDC log-in could not start: the identity provider is unreachable (%s)", error)
        return spa_redirect(error="idp_unavailable")


async def _verified_claims(request: Request, client: OidcClient) -> tuple[str, dict]:  # type: ignore[type-arg]
    """(issuer, claims) of the callback, or OidcLoginRefusedError with the short reason."""
    params = request.query_params
    try:
        if error := params.get("error"):
            # The IdP's own refusal (the user cancelled, no access): its short code, our words.
            reason = "access_denied" if error == "access_denied" else "idp_error"
            # repr: the value comes from the query string and must not break the log line.
            raise OidcLoginRefusedError(reason, f"The identity provider refused: {error[:60]!r}")
        issuer = await client.issuer()
        # RFC 9207: an `iss` on the callback must be ours (a mix-up with another IdP otherwise).
        if "iss" in params and params["iss"] != issuer:
            raise OidcLoginRefusedError("state_mismatch", "The callback came from another issuer.")
        claims = await client.finish(request)
    except MismatchingStateError as error:
        raise OidcLoginRefusedError("state_mismatch", "The log-in's state did not match.") from error
    except OAuthError as error:
        # The token endpoint refused the code (reused, expired, another client's) or the
        # callback lacked it.
        raise OidcLoginRefusedError("code_rejected", f"The code was refused: {error.error}") from error
    except (JoseError, MissingIdToken) as error:
        raise OidcLoginRefusedError("invalid_token", f"The ID token was refused: {error}") from error
    except HTTP_ERRORS as error:
        raise OidcLoginRefusedError("idp_unavailable", f"The identity provider failed: {error}") from error
    return issuer, claims


async def oidc_callback(request: Request) -> Response:
    app_state = _state(request)
    client = app_state.oidc
    if client is None:
        return spa_redirect(error="oidc_disabled")
    try:
        issuer, claims = await _verified_claims(request, client)
        identity = service.read_identity(issuer, claims, client.policy.groups_claim)
        async with app_state.sessionmaker.begin() as session:
            signed_in = await service.sign_in(session, app_state.passwords, client.policy, identity)
    except OidcLoginRefusedError as refusal:
        logger.warning("OIDC log-in refused (%s): %s", refusal.reason, refusal.message)
        return spa_redirect(error=refusal.reason)
    except Exception:
        request_id = uuid.uuid4().hex[:12]
        logger.exception("OIDC callback failed [request %s]", request_id)
        return spa_redirect(error="server_error")
    # After the commit: open subscriptions of the user re-check what they may still see.
    for group_id in signed_in.removed_group_ids:
        change = AccessChanged.of(
            AccessChangeReason.MEMBERSHIP_REMOVED, user_ids=[signed_in.user_id], group_id=group_id
        )
        await publish_access_changed(app_state.bus, change)
    if signed_in.demoted:
        change = AccessChanged.of(AccessChangeReason.USER_DEMOTED, user_ids=[signed_in.user_id])
        await publish_access_changed(app_state.bus, change)
    # Widened: the user's pages already open elsewhere refresh their model list.
    for group_id in signed_in.added_group_ids:
        change = AccessChanged.of(
            AccessChangeReason.MEMBERSHIP_ADDED, user_ids=[signed_in.user_id], group_id=group_id
        )
        await publish_access_changed(app_state.bus, change)
    if signed_in.promoted:
        change = AccessChanged.of(AccessChangeReason.USER_PROMOTED, user_ids=[signed_in.user_id])
        await publish_access_changed(app_state.bus, change)
    return spa_redirect(code=signed_in.code)


def flow_cookie_key(settings: Settings) -> str:
    """The flow cookie's signing key, derived from the server secret (its own purpose)."""
    return hmac.new(settings.jwt_secret, b"ragql oidc flow cookie", hashlib.sha256).hexdigest()


def oidc_routes(settings: Settings) -> list[BaseRoute]:
    """The two routes, under the flow cookie's SessionMiddleware (on this mount only)."""
    secure = (settings.oidc_redirect_uri or "").startswith("https://")
    return [
        Mount(
            "/auth/oidc",
            routes=[
                Route("/login", oidc_login, methods=["GET"], name="oidc_login"),
                Route("/callback", oidc_callback, methods=["GET"], name="oidc_callback"),
            ],
            middleware=[
                Middleware(
                    SessionMiddleware,
                    secret_key=flow_cookie_key(settings),
                    session_cookie=FLOW_COOKIE,
                    max_age=FLOW_COOKIE_SECONDS,
                    path="/auth/oidc",
                    same_site="lax",
                    https_only=secure,
                )
            ],
        )
    ]
