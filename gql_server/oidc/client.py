"""The OpenID Provider, through authlib's Starlette client.

authlib does the protocol: discovery from OIDC_ISSUER_URL (metadata fetched once, at the
first log-in, and again after a failure), the authorization code flow with PKCE (S256),
`state` and `nonce` kept in the browser's flow cookie (see routes.py), the code exchange,
and the ID token's checks — signature against the provider's JWKS (fetched again when a
token names a key id it does not know: key rotation), issuer, audience (this client id;
azp when several), expiry and nonce. `claims_options` pins issuer and audience explicitly:
without them authlib checks the audience only through `azp`.
"""

from __future__ import annotations

from typing import Any

import httpx
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from starlette.requests import Request
from starlette.responses import RedirectResponse

from gql_server.oidc.service import OidcPolicy
from gql_server.settings import Settings

try:  # authlib's HTTP client is httpx2 when installed (openai and anthropic bring it), else httpx
    import httpx2

    HTTP_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, httpx2.HTTPError)
except ImportError:  # pragma: no cover
    HTTP_ERRORS = (httpx.HTTPError,)

CLIENT_NAME = "oidc"
# Clock skew accepted on exp/iat/nbf.
ID_TOKEN_LEEWAY_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 10.0


class OidcClient:
    """The configured provider; built by the lifespan (app.py) when OIDC_ISSUER_URL is set."""

    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_issuer_url and settings.oidc_client_id
        self.issuer_url = settings.oidc_issuer_url.rstrip("/")
        self.client_id = settings.oidc_client_id
        self.display_name = settings.oidc_display_name
        self.redirect_uri = settings.oidc_redirect_uri
        scopes = settings.oidc_scopes.split()
        if "openid" not in scopes:
            scopes.insert(0, "openid")
        self.policy = OidcPolicy(
            groups_claim=settings.oidc_groups_claim,
            admin_groups=settings.oidc_admin_group_names,
            auto_create_users=settings.oidc_auto_create_users,
            link_by_email=settings.oidc_link_by_email,
        )
        oauth = OAuth()
        oauth.register(
            CLIENT_NAME,
            client_id=self.client_id,
            client_secret=(
                settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
            ),
            server_metadata_url=f"{self.issuer_url}/.well-known/openid-configuration",
            client_kwargs={
                "scope": " ".join(scopes),
                "code_challenge_method": "S256",
                "timeout": HTTP_TIMEOUT_SECONDS,
                "trust_env": False,
            },
        )
        app = oauth.create_client(CLIENT_NAME)
        assert isinstance(app, StarletteOAuth2App)
        self._app = app

    async def issuer(self) -> str:
        """The issuer the discovery document names (and ID tokens must carry)."""
        metadata = await self._app.load_server_metadata()
        return str(metadata["issuer"])

    async def _claims_options(self) -> dict[str, Any]:
        return {
            "iss": {"essential": True, "value": await self.issuer()},
            "aud": {"essential": True, "value": self.client_id},
        }

    async def verify_id_token(self, token: dict[str, Any], nonce: str) -> dict[str, Any]:
        """The claims of a token response's ID token, checked exactly as at the callback
        (authorize_access_token runs the same parse_id_token with the same options); a
        JoseError when it is not for us, expired, tampered or of another nonce."""
        claims = await self._app.parse_id_token(
            token, nonce, claims_options=await self._claims_options(), leeway=ID_TOKEN_LEEWAY_SECONDS
        )
        if claims is None:
            raise MissingIdToken()
        return dict(claims)

    async def start(self, request: Request, redirect_uri: str) -> RedirectResponse:
        """The redirect to the provider's authorization endpoint; state, nonce and the PKCE
        verifier go into the flow cookie's session."""
        response: RedirectResponse = await self._app.authorize_redirect(request, redirect_uri)
        return response

    async def finish(self, request: Request) -> dict[str, Any]:
        """Exchange the callback's code and verify the ID token; the claims it proves,
        completed from userinfo when the ID token lacks email or groups."""
        token = await self._app.authorize_access_token(
            request, claims_options=await self._claims_options(), leeway=ID_TOKEN_LEEWAY_SECONDS
        )
        claims = token.get("userinfo")
        if not claims:
            raise MissingIdToken()
        claims = dict(claims)
        if "email" not in claims or self.policy.groups_claim not in claims:
            metadata = await self._app.load_server_metadata()
            if metadata.get("userinfo_endpoint"):
                extra = dict(await self._app.userinfo(token=token))
                # OIDC Core 5.3.2: userinfo of another subject must not be used.
                if extra.get("sub") != claims.get("sub"):
                    raise MissingIdToken()
                claims = {**extra, **claims}
        return claims


class MissingIdToken(Exception):
    """The token response had no ID token, or userinfo spoke of another subject."""
