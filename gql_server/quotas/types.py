"""GraphQL types of usage quotas: a level's quota, a user's usage with their effective
limits, and the QuotaExceeded result of sendMessage / regenerateMessage (attachFile's storage
quota is StorageQuotaExceeded)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from gql_server.context import Info
from gql_server.db.models import RagModel
from gql_server.errors import Error, PublicError
from gql_server.kit.page import Page, build_page, parse_page_arguments
from gql_server.quotas import limits, service
from gql_server.quotas.repository import UsedSoFar

if TYPE_CHECKING:
    from gql_server.groups.types import AccessGroup
    from gql_server.models.types import Model
    from gql_server.users.types import User

# GraphQL's Int is 32-bit; a counter past it (2 billion tokens) is shown as the maximum.
INT_MAX = 2**31 - 1

QuotaKind = strawberry.enum(
    limits.QuotaKind,
    name="QuotaKind",
    description="A usage limit: messages per UTC day, LLM tokens per UTC day, LLM tokens per UTC month.",
)
QuotaSource = strawberry.enum(
    limits.QuotaSource,
    name="QuotaSource",
    description=(
        "Which level decided an effective limit: the user's own quota, their groups' (the most "
        "generous), the server default (QUOTA_DEFAULT_*), or NONE (nothing sets it: no limit)."
    ),
)


def _int(value: int) -> int:
    return min(value, INT_MAX)


def _figures(used: UsedSoFar) -> dict[str, int]:
    """The figures every usage type shows (users, groups, models), clamped to GraphQL's Int."""
    return {
        "messages_today": _int(used.messages_today),
        "prompt_tokens_today": _int(used.prompt_tokens_today),
        "completion_tokens_today": _int(used.completion_tokens_today),
        "tokens_today": _int(used.tokens_today),
        "messages_this_month": _int(used.messages_this_month),
        "tokens_this_month": _int(used.tokens_this_month),
    }


@strawberry.type(
    description=(
        "One level's quota (a user's or an access group's). Per limit: a number (0 refuses "
        "every request), listed in `unlimited` (explicitly no limit: a user's overrides their "
        "groups, a group's is the most generous), or neither — null, not set at this level (a "
        "user then gets their groups' limits; a group has no say)."
    )
)
class Quota:
    messages_per_day: int | None
    tokens_per_day: int | None
    tokens_per_month: int | None
    unlimited: list[QuotaKind]  # type: ignore[valid-type]

    @classmethod
    def from_values(cls, values: service.QuotaValues) -> Quota:
        return cls(
            messages_per_day=values.messages_per_day,
            tokens_per_day=values.tokens_per_day,
            tokens_per_month=values.tokens_per_month,
            unlimited=[kind for kind in limits.QuotaKind if kind in values.unlimited],
        )


@strawberry.input(
    description=(
        "A user's or group's whole quota (it replaces the previous one). Per limit: a number "
        "from 0 to 2,000,000,000, or the kind listed in `unlimited`, or null/omitted: not set "
        "at this level. Negative numbers are refused."
    )
)
class QuotaInput:
    messages_per_day: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    unlimited: list[QuotaKind] = strawberry.field(default_factory=list)  # type: ignore[valid-type]

    def to_values(self) -> service.QuotaValues:
        return service.QuotaValues(
            messages_per_day=self.messages_per_day,
            tokens_per_day=self.tokens_per_day,
            tokens_per_month=self.tokens_per_month,
            unlimited=frozenset(self.unlimited),
        )


@strawberry.type(description="One effective limit of a user and how much of it is used.")
class QuotaLimitStatus:
    kind: QuotaKind  # type: ignore[valid-type]
    limit: int | None = strawberry.field(description="Null: no limit.")
    source: QuotaSource  # type: ignore[valid-type]
    used: int
    remaining: int | None = strawberry.field(description="Null: no limit.")
    resets_at: datetime = strawberry.field(
        description="When the counter starts again: the next 00:00 UTC, or the 1st of next month 00:00 UTC."
    )

    @classmethod
    def from_status(cls, status: service.LimitStatus) -> QuotaLimitStatus:
        remaining = status.remaining
        return cls(
            kind=status.kind,
            limit=status.limit,
            source=status.source,
            used=_int(status.used),
            remaining=None if remaining is None else _int(remaining),
            resets_at=status.resets_at,
        )


MAX_DAYS = 366


DAYS_DESCRIPTION = (
    f"Usage per UTC day, oldest first: the `last` days up to today (1 to {MAX_DAYS}), "
    "each one listed, zeros where nothing was used."
)


async def _days(
    info: Info, name: str, factory: Any, subject_id: uuid.UUID, today: date, last: int
) -> list[UsageDay]:
    if not 1 <= last <= MAX_DAYS:
        raise PublicError(f"`last` must be between 1 and {MAX_DAYS}.", "BAD_USER_INPUT")
    first_day = today - timedelta(days=last - 1)
    loader = info.context.loader(name, factory)
    return [UsageDay.from_usage(day) for day in await loader.load((subject_id, first_day, today))]


@strawberry.type(description="Usage (a user's, a group's or a model's) on one UTC day.")
class UsageDay:
    day: date
    messages: int
    prompt_tokens: int
    completion_tokens: int
    tokens: int

    @classmethod
    def from_usage(cls, usage: service.DailyUsage) -> UsageDay:
        return cls(
            day=usage.day,
            messages=_int(usage.messages),
            prompt_tokens=_int(usage.prompt_tokens),
            completion_tokens=_int(usage.completion_tokens),
            tokens=_int(usage.tokens),
        )


@strawberry.type(description="One user's usage of one model today and this month (UTC).")
class ModelUsageOfUser:
    model: Annotated[Model, strawberry.lazy("gql_server.models.types")]
    messages_today: int
    tokens_today: int
    messages_this_month: int
    tokens_this_month: int

    @classmethod
    def of(cls, model: RagModel, used: UsedSoFar) -> ModelUsageOfUser:
        from gql_server.models.types import Model

        return cls(
            model=Model.from_row(model),
            messages_today=_int(used.messages_today),
            tokens_today=_int(used.tokens_today),
            messages_this_month=_int(used.messages_this_month),
            tokens_this_month=_int(used.tokens_this_month),
        )


@strawberry.type(
    description=(
        "A user's usage today and this month (UTC) with their effective limits. Messages count "
        "when sent (sendMessage and regenerateMessage); tokens are the provider's reported "
        "prompt + completion tokens of finished answers (the extractive answerer and providers "
        "that report nothing count 0)."
    )
)
class UsageSummary:
    user: Annotated[User, strawberry.lazy("gql_server.users.types")]
    day: date = strawberry.field(description="Today (UTC): the day the daily figures are for.")
    messages_today: int
    prompt_tokens_today: int
    completion_tokens_today: int
    tokens_today: int
    tokens_this_month: int
    messages_this_month: int
    limits: list[QuotaLimitStatus]
    day_resets_at: datetime
    month_resets_at: datetime
    user_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description=DAYS_DESCRIPTION)
    async def days(self, info: Info, last: int = 30) -> list[UsageDay]:
        from gql_server.quotas.loaders import daily_usage

        return await _days(info, "quotas.daily_usage", daily_usage, self.user_id, self.day, last)

    @strawberry.field(
        description=(
            "This user's usage per model this month (UTC), by model name: the models used this "
            "month that you may read (an administrator: all of them)."
        )
    )
    async def models(
        self, info: Info, first: int = 50, offset: int | None = None, after: str | None = None
    ) -> Page[ModelUsageOfUser]:
        from gql_server.quotas.loaders import usage_by_model_of_users

        request = parse_page_arguments(first, offset, after)
        loader = info.context.loader("quotas.usage_by_model_of_users", usage_by_model_of_users)
        used = await loader.load((self.user_id, self.day))
        page = used[request.offset : request.offset + request.limit]
        return build_page(
            [ModelUsageOfUser.of(model, figures) for model, figures in page], len(used), request
        )

    @classmethod
    def from_summary(cls, summary: service.UsageSummary) -> UsageSummary:
        used = summary.used
        return cls(
            user_id=summary.user.id,
            user=summary.user,  # type: ignore[arg-type]  # the mapper's type is the row
            day=summary.day,
            **_figures(used),
            limits=[QuotaLimitStatus.from_status(status) for status in summary.limits],
            day_resets_at=summary.day_resets_at,
            month_resets_at=summary.month_resets_at,
        )


@strawberry.type(
    description=(
        "An access group's usage today and this month (UTC): the sum over its CURRENT members "
        "(someone who left takes their usage along, someone who joined brings theirs), counted "
        "as for UsageSummary. A user in two groups counts in both."
    )
)
class GroupUsage:
    group: Annotated[AccessGroup, strawberry.lazy("gql_server.groups.types")]
    member_count: int
    day: date = strawberry.field(description="Today (UTC).")
    messages_today: int
    prompt_tokens_today: int
    completion_tokens_today: int
    tokens_today: int
    messages_this_month: int
    tokens_this_month: int
    group_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description=DAYS_DESCRIPTION)
    async def days(self, info: Info, last: int = 30) -> list[UsageDay]:
        from gql_server.quotas.loaders import daily_usage_of_groups

        return await _days(
            info, "quotas.daily_usage_of_groups", daily_usage_of_groups, self.group_id, self.day, last
        )

    @classmethod
    def from_usage(cls, usage: service.GroupUsage) -> GroupUsage:
        used = usage.used
        return cls(
            group_id=usage.group.id,
            group=usage.group,  # type: ignore[arg-type]  # the mapper's type is the row
            member_count=usage.member_count,
            day=usage.day,
            **_figures(used),
        )


@strawberry.type(
    description=(
        "A model's usage today and this month (UTC), over every user: messages sent to it "
        "(sendMessage, regenerateMessage, /v1, MCP ask) and its answers' reported tokens. "
        "Counted per model since migration 0013."
    )
)
class ModelUsage:
    model: Annotated[Model, strawberry.lazy("gql_server.models.types")]
    day: date = strawberry.field(description="Today (UTC).")
    messages_today: int
    prompt_tokens_today: int
    completion_tokens_today: int
    tokens_today: int
    messages_this_month: int
    tokens_this_month: int
    model_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description=DAYS_DESCRIPTION)
    async def days(self, info: Info, last: int = 30) -> list[UsageDay]:
        from gql_server.quotas.loaders import daily_usage_of_models

        return await _days(
            info, "quotas.daily_usage_of_models", daily_usage_of_models, self.model_id, self.day, last
        )

    @classmethod
    def from_usage(cls, usage: service.ModelUsage) -> ModelUsage:
        from gql_server.models.types import Model

        used = usage.used
        return cls(
            model_id=usage.model.id,
            model=Model.from_row(usage.model),
            day=usage.day,
            **_figures(used),
        )


@strawberry.type(
    description=(
        "A usage quota (messages or LLM tokens) is used up: `kind` says which, `limit` and "
        "`used` the figures, `resetsAt` when it frees up. Nothing was stored. (attachFile's "
        "chat-attachment storage quota is StorageQuotaExceeded.)"
    )
)
class QuotaExceeded(Error):
    message: str
    kind: QuotaKind  # type: ignore[valid-type]
    limit: int
    used: int
    resets_at: datetime
