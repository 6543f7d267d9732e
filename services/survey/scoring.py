"""Survey statistics: score bands, CSAT and NPS with 95% intervals, gated on a minimum response count.

Every figure is a percentage: CSAT and its interval in 0..100, NPS and its interval in -100..100.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist

DEFAULT_MIN_RESPONSES = 10
CONFIDENCE = 0.95
# Two-sided: 2.5% in each tail, z = 1.959963984540054.
Z = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2)

NPS_LOWEST = 0
NPS_HIGHEST = 10
PROMOTER_FROM = 9
DETRACTOR_UP_TO = 6


class CsatScale(StrEnum):
    """How a CSAT question is answered: 1..5, or good/bad stored as 2 = good, 1 = bad."""

    FIVE_POINT = "five_point"
    TWO_POINT = "two_point"

    @property
    def lowest(self) -> int:
        """The lowest allowed score."""
        return 1

    @property
    def highest(self) -> int:
        """The highest allowed score."""
        return 5 if self is CsatScale.FIVE_POINT else 2


# Five-point: 4-5 satisfied, 3 neutral, 1-2 dissatisfied. Two-point has no neutral answer.
_SATISFIED_FROM = {CsatScale.FIVE_POINT: 4, CsatScale.TWO_POINT: 2}
_DISSATISFIED_UP_TO = {CsatScale.FIVE_POINT: 2, CsatScale.TWO_POINT: 1}


class CsatBand(StrEnum):
    """Where a CSAT answer falls; dissatisfied answers trigger a follow-up."""

    SATISFIED = "satisfied"
    NEUTRAL = "neutral"
    DISSATISFIED = "dissatisfied"


class NpsBand(StrEnum):
    """Where a likelihood-to-recommend answer falls."""

    PROMOTER = "promoter"
    PASSIVE = "passive"
    DETRACTOR = "detractor"


class InvalidScore(ValueError):
    """A survey score that is not a whole number in its scale's range."""

    def __init__(self, *, score: object, lowest: int, highest: int, scale: str) -> None:
        super().__init__(f"{scale} score {score!r} is invalid: allowed are whole numbers {lowest}..{highest}")
        self.score = score
        self.lowest = lowest
        self.highest = highest
        self.scale = scale


@dataclass(frozen=True)
class Interval:
    """A confidence interval, in the same percentage unit as its figure."""

    lower: float
    upper: float


@dataclass(frozen=True)
class CsatTally:
    """CSAT responses counted per band, plus the score sum for the mean."""

    scale: CsatScale
    satisfied: int
    neutral: int
    dissatisfied: int
    score_sum: int

    def __post_init__(self) -> None:
        _require_counts(self.satisfied, self.neutral, self.dissatisfied)
        if self.scale is CsatScale.TWO_POINT and self.neutral:
            raise ValueError("a two-point CSAT tally has no neutral answers")

    @property
    def responses(self) -> int:
        """How many answers were counted."""
        return self.satisfied + self.neutral + self.dissatisfied


@dataclass(frozen=True)
class NpsTally:
    """NPS responses counted per band."""

    promoters: int
    passives: int
    detractors: int

    def __post_init__(self) -> None:
        _require_counts(self.promoters, self.passives, self.detractors)

    @property
    def responses(self) -> int:
        """How many answers were counted."""
        return self.promoters + self.passives + self.detractors


@dataclass(frozen=True)
class CsatFigure:
    """CSAT of a breakdown; csat, interval and mean_score are None when not sufficient."""

    tally: CsatTally
    sufficient: bool
    csat: float | None
    interval: Interval | None
    mean_score: float | None


@dataclass(frozen=True)
class NpsFigure:
    """NPS of a breakdown; nps and interval are None when not sufficient."""

    tally: NpsTally
    sufficient: bool
    nps: float | None
    interval: Interval | None


def validate_csat_score(score: int, *, scale: CsatScale = CsatScale.FIVE_POINT) -> int:
    """Return the score if it is allowed on the scale, else raise InvalidScore."""
    return _validated(score, lowest=scale.lowest, highest=scale.highest, scale=f"{scale} CSAT")


def validate_nps_score(score: int) -> int:
    """Return the score if it is allowed on the 0..10 scale, else raise InvalidScore."""
    return _validated(score, lowest=NPS_LOWEST, highest=NPS_HIGHEST, scale="NPS")


def csat_band(score: int, *, scale: CsatScale = CsatScale.FIVE_POINT) -> CsatBand:
    """Satisfied, neutral or dissatisfied."""
    validate_csat_score(score, scale=scale)
    if score >= _SATISFIED_FROM[scale]:
        return CsatBand.SATISFIED
    if score <= _DISSATISFIED_UP_TO[scale]:
        return CsatBand.DISSATISFIED
    return CsatBand.NEUTRAL


def nps_band(score: int) -> NpsBand:
    """Promoter (9-10), passive (7-8) or detractor (0-6)."""
    validate_nps_score(score)
    if score >= PROMOTER_FROM:
        return NpsBand.PROMOTER
    if score <= DETRACTOR_UP_TO:
        return NpsBand.DETRACTOR
    return NpsBand.PASSIVE


def tally_csat(scores: Iterable[int], *, scale: CsatScale = CsatScale.FIVE_POINT) -> CsatTally:
    """Count CSAT scores per band; any invalid score raises InvalidScore."""
    kept = list(scores)
    bands = [csat_band(score, scale=scale) for score in kept]
    return CsatTally(
        scale=scale,
        satisfied=bands.count(CsatBand.SATISFIED),
        neutral=bands.count(CsatBand.NEUTRAL),
        dissatisfied=bands.count(CsatBand.DISSATISFIED),
        score_sum=sum(kept),
    )


def tally_nps(scores: Iterable[int]) -> NpsTally:
    """Count NPS scores per band; any invalid score raises InvalidScore."""
    bands = [nps_band(score) for score in scores]
    return NpsTally(
        promoters=bands.count(NpsBand.PROMOTER),
        passives=bands.count(NpsBand.PASSIVE),
        detractors=bands.count(NpsBand.DETRACTOR),
    )


def csat_figure(tally: CsatTally, *, min_responses: int = DEFAULT_MIN_RESPONSES) -> CsatFigure:
    """Percentage satisfied with its Wilson interval and the mean score, or 'too few' below the minimum."""
    n = tally.responses
    if not _sufficient(n, min_responses=min_responses):
        return CsatFigure(tally=tally, sufficient=False, csat=None, interval=None, mean_score=None)
    return CsatFigure(
        tally=tally,
        sufficient=True,
        csat=100 * tally.satisfied / n,
        interval=wilson_interval(successes=tally.satisfied, trials=n),
        mean_score=tally.score_sum / n,
    )


def nps_figure(tally: NpsTally, *, min_responses: int = DEFAULT_MIN_RESPONSES) -> NpsFigure:
    """NPS with its adjusted-Wald interval, or 'too few' below the minimum."""
    n = tally.responses
    if not _sufficient(n, min_responses=min_responses):
        return NpsFigure(tally=tally, sufficient=False, nps=None, interval=None)
    return NpsFigure(
        tally=tally,
        sufficient=True,
        nps=100 * (tally.promoters - tally.detractors) / n,
        interval=adjusted_wald_nps_interval(tally),
    )


def wilson_interval(*, successes: int, trials: int) -> Interval:
    """The Wilson score 95% interval of a proportion, in percent."""
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got {successes}/{trials}")
    # Wilson (1927), written on counts: (x + z²/2 ± z·sqrt(x·f/n + z²/4)) / (n + z²), f = n - x.
    failures = trials - successes
    z2 = Z * Z
    centre = (successes + z2 / 2) / (trials + z2)
    half_width = Z * math.sqrt(successes * failures / trials + z2 / 4) / (trials + z2)
    # With no failures (or no successes) the bound is exactly 1 (or 0); floats would give 0.9999...
    lower = 0.0 if successes == 0 else centre - half_width
    upper = 1.0 if failures == 0 else centre + half_width
    return Interval(lower=100 * lower, upper=100 * upper)


def adjusted_wald_nps_interval(tally: NpsTally) -> Interval:
    """The adjusted-Wald 95% interval of the NPS, in percent, clamped to -100..100."""
    # Adjusted-Wald, the best of the six methods compared by Rocks (2016), "Interval Estimation for
    # the 'Net Promoter Score'", The American Statistician 70(4); constants as published by Sauro &
    # Lewis, "Confidence Intervals for Net Promoter Scores" (MeasuringU): add 3 to n and 3/4 to
    # promoters and to detractors, then the Wald interval of the difference of two multinomial
    # proportions. It is centred on the adjusted NPS, not the raw one, so it stays sensible at 0%
    # or 100% promoters; the clamp covers the rare overshoot past -1 or 1.
    n_adj = tally.responses + 3
    promoters = (tally.promoters + 0.75) / n_adj
    detractors = (tally.detractors + 0.75) / n_adj
    nps_adj = promoters - detractors
    variance = promoters + detractors - nps_adj**2
    margin = Z * math.sqrt(variance / n_adj)
    return Interval(lower=100 * max(-1.0, nps_adj - margin), upper=100 * min(1.0, nps_adj + margin))


def response_rate(*, responses: int, invitations: int) -> float | None:
    """Responses per invitation sent, in percent; None when no invitation was sent."""
    _require_counts(responses, invitations)
    if invitations == 0:
        return None
    # Not capped at 100: over a reporting window, responses to earlier invitations can outnumber
    # the invitations sent in it, and a cap would hide that.
    return 100 * responses / invitations


def _validated(score: int, *, lowest: int, highest: int, scale: str) -> int:
    # bool is an int subclass, and a float 4.0 from JSON is a client bug, not a four.
    if isinstance(score, bool) or not isinstance(score, int) or not lowest <= score <= highest:
        raise InvalidScore(score=score, lowest=lowest, highest=highest, scale=scale)
    return score


def _sufficient(responses: int, *, min_responses: int) -> bool:
    # A minimum below 1 would let an empty breakdown through to a division by zero.
    if min_responses < 1:
        raise ValueError(f"min_responses must be at least 1, got {min_responses}")
    return responses >= min_responses


def _require_counts(*counts: int) -> None:
    if any(count < 0 for count in counts):
        raise ValueError(f"counts must not be negative, got {counts}")
