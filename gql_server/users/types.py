"""GraphQL types mapped from ORM rows with strawberry-sqlalchemy-mapper."""

from __future__ import annotations

from gql_server.db import models
from gql_server.kit.mapper import mapper


@mapper.type(models.User)
class User:
    # Secrets and internals never reach the API.
    __exclude__ = ["password_hash", "token_version"]
