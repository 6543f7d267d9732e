"""The fatigue budget: whether a person may receive one more survey invitation, and if not, why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from bothways.events import SurveyKind
from services.survey.rules import FatigueBudget

ROLLING_WINDOW: Final = timedelta(days=30)


class ThrottleCode(StrEnum):
    """Why a candidate was not sent; low cardinality, so it may label a metric."""

    COOLDOWN = "cooldown"
    CAP = "cap"
    SAMPLING = "sampling"
    NO_ADDRESS = "no_address"
    ALREADY_SURVEYED = "already_surveyed"
    TOO_OLD = "too_old"
    EXCLUDED = "excluded"
    REOPENED = "reopened"
    CANCELED = "canceled"


@dataclass(frozen=True)
class Throttle:
    """A decision not to send: a code for counting and a sentence for people."""

    code: ThrottleCode
    reason: str


@dataclass(frozen=True)
class PastInvitation:
    """An invitation that counts against the budget, at the instant it was (or will be) sent."""

    kind: SurveyKind
    at: datetime


def verdict(
    budget: FatigueBudget,
    *,
    kind: SurveyKind,
    at: datetime,
    history: Sequence[PastInvitation],
    exempt: bool = False,
) -> Throttle | None:
    """None when the person may be invited at `at`, else the throttle saying which limit stands in the way."""
    if exempt:
        return None
    cooldown = budget.cooldown[kind]
    # Scheduled invitations count too, before or after `at`: the cooldown is a gap between any two.
    near = [past for past in history if abs(past.at - at) < cooldown]
    if near:
        closest = min(near, key=lambda past: abs(past.at - at))
        return Throttle(
            ThrottleCode.COOLDOWN,
            f"cooldown: a {closest.kind} survey {_when(closest.at, at)}; "
            f"the {kind} cooldown is {_days(cooldown)}",
        )
    if budget.max_per_30_days is not None and _busiest_window(history, at=at) >= budget.max_per_30_days:
        return Throttle(
            ThrottleCode.CAP, f"cap: already {budget.max_per_30_days} survey(s) within 30 days of this one"
        )
    return None


def _busiest_window(history: Sequence[PastInvitation], *, at: datetime) -> int:
    """The most invitations in any 30-day window that would also hold `at`."""
    instants = sorted(past.at for past in history if abs(past.at - at) < ROLLING_WINDOW)
    starts = [instant for instant in instants if instant <= at] + [at]
    return max(sum(1 for i in instants if start <= i < start + ROLLING_WINDOW) for start in starts)


def _when(past: datetime, at: datetime) -> str:
    gap = abs(at - past)
    amount = (
        f"{gap.days} day(s)" if gap >= timedelta(days=1) else f"{int(gap.total_seconds() // 3600)} hour(s)"
    )
    return f"was sent {amount} before" if past <= at else f"is scheduled {amount} after"


def _days(duration: timedelta) -> str:
    return f"{duration.days} days" if duration.days else f"{duration}"
