"""How a user's quota is decided, and when each limit frees up. Pure: no database.

Each limit kind (messages per day, tokens per day, tokens per month) is decided on its
own, from three levels:

1. the user's own quota, if it sets the kind (a number, or UNLIMITED): that is the answer
   — a per-user value overrides every group;
2. otherwise the quotas of the user's access groups that set the kind: the most generous
   wins (UNLIMITED beats any number, else the largest number). A group that does not set
   the kind has no say about it (it neither limits nor frees its members);
3. otherwise, when no group sets it either, the server's default
   (QUOTA_DEFAULT_MESSAGES_PER_DAY, ..._TOKENS_PER_DAY, ..._TOKENS_PER_MONTH); unset means
   no limit.

Days and months are UTC: a day's counters reset at 00:00 UTC, a month's on the 1st at
00:00 UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from gql_server.db.models import QUOTA_UNLIMITED

# GraphQL's Int is 32-bit: a limit above this could not be shown.
MAX_LIMIT = 2_000_000_000


class QuotaKind(enum.Enum):
    MESSAGES_PER_DAY = "MESSAGES_PER_DAY"
    TOKENS_PER_DAY = "TOKENS_PER_DAY"
    TOKENS_PER_MONTH = "TOKENS_PER_MONTH"


class QuotaSource(enum.Enum):
    """Which level decided a user's effective limit."""

    USER = "USER"
    GROUP = "GROUP"
    DEFAULT = "DEFAULT"
    NONE = "NONE"  # no level sets it and there is no default: no limit


COLUMNS: dict[QuotaKind, str] = {
    QuotaKind.MESSAGES_PER_DAY: "messages_per_day",
    QuotaKind.TOKENS_PER_DAY: "tokens_per_day",
    QuotaKind.TOKENS_PER_MONTH: "tokens_per_month",
}


@dataclass(frozen=True)
class EffectiveLimit:
    kind: QuotaKind
    limit: int | None  # None: no limit
    source: QuotaSource


def effective_limit(
    kind: QuotaKind, user_value: int | None, group_values: Iterable[int | None], default: int | None
) -> EffectiveLimit:
    """Stored values: None (not set at this level), QUOTA_UNLIMITED, or a limit >= 0."""
    if user_value is not None:
        return EffectiveLimit(kind, None if user_value == QUOTA_UNLIMITED else user_value, QuotaSource.USER)
    set_by_groups = [value for value in group_values if value is not None]
    if set_by_groups:
        if QUOTA_UNLIMITED in set_by_groups:
            return EffectiveLimit(kind, None, QuotaSource.GROUP)
        return EffectiveLimit(kind, max(set_by_groups), QuotaSource.GROUP)
    if default is not None:
        return EffectiveLimit(kind, default, QuotaSource.DEFAULT)
    return EffectiveLimit(kind, None, QuotaSource.NONE)


def utc_day(now: datetime) -> date:
    return now.astimezone(UTC).date()


def month_start(day: date) -> date:
    return day.replace(day=1)


def day_resets_at(now: datetime) -> datetime:
    return datetime.combine(utc_day(now) + timedelta(days=1), time(0), tzinfo=UTC)


def month_resets_at(now: datetime) -> datetime:
    day = utc_day(now)
    first_next = date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
    return datetime.combine(first_next, time(0), tzinfo=UTC)


def resets_at(kind: QuotaKind, now: datetime) -> datetime:
    return month_resets_at(now) if kind is QuotaKind.TOKENS_PER_MONTH else day_resets_at(now)
