"""The GraphQL side of the OIDC log-in: what the log-in page offers, and the code exchange."""

from __future__ import annotations

import strawberry

from gql_server.auth.types import AuthPayload
from gql_server.context import Info
from gql_server.errors import maps_domain_errors
from gql_server.oidc import service
from gql_server.oidc.types import AuthOptions, ExchangeLoginCodeResult


@strawberry.type
class OidcQuery:
    @strawberry.field(description="How people sign in on this server (public: the log-in page asks).")
    def auth_options(self, info: Info) -> AuthOptions:
        settings = info.context.state.settings
        oidc = info.context.state.oidc
        return AuthOptions(
            oidc_enabled=oidc is not None,
            oidc_display_name=oidc.display_name if oidc is not None else None,
            password_login_enabled=settings.password_login_enabled,
            sign_up_enabled=settings.signup_enabled and settings.password_login_enabled,
        )


@strawberry.type
class OidcMutation:
    @strawberry.mutation(
        description=(
            "Finish an OIDC log-in: exchange the one-time code the callback put in the log-in "
            "page's URL fragment (`/login#code=…`, valid about a minute, works once) for the same "
            "session as logIn (with `X-Ragql-Session: cookie`, the refresh token as the cookie)."
        )
    )
    @maps_domain_errors
    async def exchange_login_code(self, info: Info, code: str) -> ExchangeLoginCodeResult:
        state = info.context.state
        async with state.sessionmaker.begin() as session:
            issued = await service.exchange_login_code(
                session, state.tokens, state.settings.refresh_token_days, code=code
            )
        return AuthPayload.from_session(issued, info)
