"""Month-over-month changes, and whether a change is larger than the noise of the counts behind it.

- A proportion (SLA compliance, CSAT): the Newcombe hybrid score interval of the difference of two
  independent proportions (Newcombe 1998, "Interval estimation for the difference between independent
  proportions", Statistics in Medicine 17, method 10), built from the two Wilson intervals. The change is
  beyond the noise when that 95% interval excludes zero.
- NPS: the adjusted-Wald interval of the difference of two independent NPS (each month adjusted as in
  services/survey/scoring.py: n + 3, promoters and detractors + 3/4; variances added).
- Availability is measured over the whole month, not sampled: its change is reported, not tested.
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from services.survey.scoring import NpsTally, Z, wilson_interval

NEWCOMBE = "Newcombe hybrid score interval of the difference, 95%"
ADJUSTED_WALD = "adjusted-Wald interval of the difference of two NPS, 95%"
MEASURED = "measured, not sampled: no noise to test against"


class Change(BaseModel):
    """A change from the previous month; `beyond_noise` is None when it cannot be told."""

    change: float | None
    beyond_noise: bool | None
    interval_lower: float | None = None
    interval_upper: float | None = None
    method: str


def proportion_change(*, before: tuple[int, int], after: tuple[int, int], min_count: int) -> Change:
    """The change in percentage points of successes/trials, tested with Newcombe's interval."""
    (x1, n1), (x2, n2) = before, after
    if min(n1, n2) < max(min_count, 1):
        return Change(change=None, beyond_noise=None, method=f"{NEWCOMBE}; too few counts in one month")
    p1, p2 = 100 * x1 / n1, 100 * x2 / n2
    w1, w2 = wilson_interval(successes=x1, trials=n1), wilson_interval(successes=x2, trials=n2)
    difference = p2 - p1
    lower = difference - math.sqrt((p2 - w2.lower) ** 2 + (w1.upper - p1) ** 2)
    upper = difference + math.sqrt((w2.upper - p2) ** 2 + (p1 - w1.lower) ** 2)
    return Change(
        change=difference,
        beyond_noise=lower > 0 or upper < 0,
        interval_lower=lower,
        interval_upper=upper,
        method=NEWCOMBE,
    )


def nps_change(*, before: NpsTally, after: NpsTally, min_count: int) -> Change:
    """The change of the NPS in points, tested with the adjusted-Wald interval of the difference."""
    if min(before.responses, after.responses) < max(min_count, 1):
        return Change(change=None, beyond_noise=None, method=f"{ADJUSTED_WALD}; too few answers in one month")
    raw = _nps(after) - _nps(before)
    (adjusted_1, variance_1), (adjusted_2, variance_2) = _adjusted(before), _adjusted(after)
    centre = adjusted_2 - adjusted_1
    margin = Z * math.sqrt(variance_1 + variance_2)
    lower, upper = max(-200.0, 100 * (centre - margin)), min(200.0, 100 * (centre + margin))
    return Change(
        change=raw,
        beyond_noise=lower > 0 or upper < 0,
        interval_lower=lower,
        interval_upper=upper,
        method=ADJUSTED_WALD,
    )


def measured_change(*, before: float | None, after: float | None) -> Change:
    """The change of a measured figure (availability), not tested."""
    change = after - before if before is not None and after is not None else None
    return Change(change=change, beyond_noise=None, method=MEASURED)


def _nps(tally: NpsTally) -> float:
    return 100 * (tally.promoters - tally.detractors) / tally.responses


def _adjusted(tally: NpsTally) -> tuple[float, float]:
    """The adjusted NPS (as a -1..1 fraction) and the variance of its estimate."""
    n = tally.responses + 3
    promoters, detractors = (tally.promoters + 0.75) / n, (tally.detractors + 0.75) / n
    nps = promoters - detractors
    return nps, (promoters + detractors - nps**2) / n
