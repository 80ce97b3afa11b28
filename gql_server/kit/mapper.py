"""The one strawberry-sqlalchemy-mapper instance; `gql_server.schema` finalizes it."""

from strawberry_sqlalchemy_mapper import StrawberrySQLAlchemyMapper

mapper: StrawberrySQLAlchemyMapper = StrawberrySQLAlchemyMapper()
