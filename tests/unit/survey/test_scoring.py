"""Unit tests of the survey statistics: bands, CSAT with Wilson, NPS with adjusted-Wald, gating."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.survey.scoring import (
    CsatBand,
    CsatScale,
    CsatTally,
    InvalidScore,
    NpsBand,
    NpsTally,
    adjusted_wald_nps_interval,
    csat_band,
    csat_figure,
    nps_band,
    nps_figure,
    response_rate,
    tally_csat,
    tally_nps,
    validate_csat_score,
    validate_nps_score,
    wilson_interval,
)

pytestmark = pytest.mark.unit

counts = st.integers(min_value=0, max_value=5_000)


# --- NPS ---------------------------------------------------------------------------------------


def test_thirty_promoters_ten_passives_ten_detractors_give_nps_40() -> None:
    figure = nps_figure(tally_nps([10] * 30 + [8] * 10 + [6] * 10))

    assert figure.tally == NpsTally(promoters=30, passives=10, detractors=10)
    assert figure.sufficient
    assert figure.nps == 40.0  # 60% promoters - 20% detractors


def test_nps_interval_is_the_hand_computed_adjusted_wald() -> None:
    # z = 1.96; n' = 50 + 3 = 53
    # p = (30 + 0.75) / 53 = 0.58019, d = (10 + 0.75) / 53 = 0.20283, nps' = p - d = 20/53 = 0.37736
    # var = p + d - nps'^2 = 0.78302 - 0.14240 = 0.64062
    # margin = 1.96 * sqrt(0.64062 / 53) = 1.96 * 0.10994 = 0.21548
    # interval = 0.37736 -/+ 0.21548 = [0.16188, 0.59284] -> [16.19, 59.28]
    interval = nps_figure(NpsTally(promoters=30, passives=10, detractors=10)).interval

    assert interval is not None
    assert interval.lower == pytest.approx(16.19, abs=0.01)
    assert interval.upper == pytest.approx(59.28, abs=0.01)


def test_nps_interval_is_centred_on_the_adjusted_estimate_not_the_raw_one() -> None:
    interval = adjusted_wald_nps_interval(NpsTally(promoters=30, passives=10, detractors=10))

    assert (interval.lower + interval.upper) / 2 == pytest.approx(100 * 20 / 53)  # 37.74, not 40


def test_all_promoters_keep_the_nps_interval_inside_100() -> None:
    figure = nps_figure(NpsTally(promoters=10, passives=0, detractors=0))
    assert figure.interval is not None

    assert figure.nps == 100.0
    assert figure.interval.upper == 100.0  # clamped: the adjusted-Wald bound would exceed 1
    assert figure.interval.lower < 100.0


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (0, NpsBand.DETRACTOR),
        (6, NpsBand.DETRACTOR),
        (7, NpsBand.PASSIVE),
        (8, NpsBand.PASSIVE),
        (9, NpsBand.PROMOTER),
        (10, NpsBand.PROMOTER),
    ],
)
def test_nps_band_boundaries_sit_between_6_and_7_and_between_8_and_9(score: int, band: NpsBand) -> None:
    assert nps_band(score) is band


# --- CSAT --------------------------------------------------------------------------------------


def test_csat_is_the_share_of_fours_and_fives_with_the_mean_score() -> None:
    figure = csat_figure(tally_csat([5, 5, 5, 5, 4, 4, 4, 4, 3, 1]))

    assert figure.tally == CsatTally(
        scale=CsatScale.FIVE_POINT, satisfied=8, neutral=1, dissatisfied=1, score_sum=40
    )
    assert figure.csat == 80.0
    assert figure.mean_score == 4.0


def test_csat_interval_is_the_hand_computed_wilson_interval() -> None:
    # z = 1.96, z^2 = 3.8416; x = 8 satisfied of n = 10, f = 2
    # centre = (x + z^2/2) / (n + z^2) = 9.9208 / 13.8416 = 0.71674
    # half   = z * sqrt(x*f/n + z^2/4) / (n + z^2) = 1.96 * sqrt(1.6 + 0.9604) / 13.8416
    #        = 1.96 * 1.60012 / 13.8416 = 0.22658
    # interval = [0.49016, 0.94332] -> [49.02, 94.33]
    interval = csat_figure(tally_csat([5] * 8 + [2] * 2)).interval

    assert interval is not None
    assert interval.lower == pytest.approx(49.02, abs=0.01)
    assert interval.upper == pytest.approx(94.33, abs=0.01)


def test_all_satisfied_gives_a_wilson_upper_bound_of_exactly_100_and_a_lower_bound_below() -> None:
    figure = csat_figure(tally_csat([5] * 12))
    assert figure.interval is not None

    assert figure.csat == 100.0
    assert figure.interval.upper == 100.0
    # 12 / (12 + 3.8415) = 75.75%: twelve answers do not prove everyone is satisfied
    assert figure.interval.lower == pytest.approx(75.75, abs=0.01)


def test_none_satisfied_gives_a_wilson_lower_bound_of_exactly_0() -> None:
    interval = wilson_interval(successes=0, trials=12)

    assert interval.lower == 0.0
    assert interval.upper == pytest.approx(24.25, abs=0.01)  # mirror of the all-satisfied case


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (1, CsatBand.DISSATISFIED),
        (2, CsatBand.DISSATISFIED),
        (3, CsatBand.NEUTRAL),
        (4, CsatBand.SATISFIED),
        (5, CsatBand.SATISFIED),
    ],
)
def test_five_point_band_boundaries_sit_between_2_and_3_and_between_3_and_4(
    score: int, band: CsatBand
) -> None:
    assert csat_band(score) is band


def test_two_point_scale_counts_good_as_satisfied_and_bad_as_dissatisfied() -> None:
    figure = csat_figure(tally_csat([2] * 9 + [1] * 3, scale=CsatScale.TWO_POINT))

    assert csat_band(2, scale=CsatScale.TWO_POINT) is CsatBand.SATISFIED
    assert csat_band(1, scale=CsatScale.TWO_POINT) is CsatBand.DISSATISFIED
    assert figure.tally.neutral == 0
    assert figure.tally.dissatisfied == 3
    assert figure.csat == 75.0


def test_a_two_point_tally_cannot_hold_neutral_answers() -> None:
    with pytest.raises(ValueError, match="no neutral"):
        CsatTally(scale=CsatScale.TWO_POINT, satisfied=1, neutral=1, dissatisfied=0, score_sum=5)


# --- minimum-count gating ----------------------------------------------------------------------


def test_zero_responses_are_too_few_rather_than_a_number() -> None:
    csat = csat_figure(tally_csat([]))
    nps = nps_figure(tally_nps([]))

    assert (csat.sufficient, csat.csat, csat.interval, csat.mean_score) == (False, None, None, None)
    assert (nps.sufficient, nps.nps, nps.interval) == (False, None, None)


def test_fewer_than_the_minimum_are_too_few_but_keep_their_counts() -> None:
    figure = nps_figure(tally_nps([10] * 9))

    assert not figure.sufficient
    assert figure.nps is None
    assert figure.interval is None
    assert figure.tally.promoters == 9


def test_exactly_the_minimum_is_enough() -> None:
    assert nps_figure(tally_nps([10] * 10)).sufficient
    assert csat_figure(tally_csat([5] * 10)).sufficient


def test_the_minimum_is_configurable() -> None:
    figure = csat_figure(tally_csat([5, 4, 1]), min_responses=3)

    assert figure.sufficient
    assert figure.csat == pytest.approx(200 / 3)
    assert not csat_figure(tally_csat([5] * 10), min_responses=20).sufficient


def test_a_minimum_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        nps_figure(tally_nps([]), min_responses=0)


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("score", [-1, 11, True, 4.5, "9"])
def test_an_nps_score_outside_0_to_10_is_refused_naming_the_range(score: int) -> None:
    with pytest.raises(InvalidScore, match=r"0\.\.10"):
        validate_nps_score(score)


@pytest.mark.parametrize(("score", "scale"), [(0, CsatScale.FIVE_POINT), (6, CsatScale.FIVE_POINT)])
def test_a_csat_score_outside_1_to_5_is_refused_naming_the_range(score: int, scale: CsatScale) -> None:
    with pytest.raises(InvalidScore, match=r"1\.\.5"):
        validate_csat_score(score, scale=scale)


def test_a_three_is_not_a_two_point_answer() -> None:
    with pytest.raises(InvalidScore, match=r"1\.\.2") as raised:
        tally_csat([2, 3], scale=CsatScale.TWO_POINT)

    assert (raised.value.score, raised.value.lowest, raised.value.highest) == (3, 1, 2)


def test_an_invalid_score_is_a_value_error() -> None:
    assert issubclass(InvalidScore, ValueError)


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        NpsTally(promoters=-1, passives=0, detractors=0)


# --- response rate -----------------------------------------------------------------------------


def test_response_rate_is_responses_per_invitation_sent() -> None:
    assert response_rate(responses=25, invitations=100) == 25.0


def test_response_rate_is_none_when_no_invitation_was_sent() -> None:
    assert response_rate(responses=0, invitations=0) is None


def test_response_rate_refuses_negative_counts() -> None:
    with pytest.raises(ValueError, match="negative"):
        response_rate(responses=-1, invitations=10)


# --- properties --------------------------------------------------------------------------------


@given(trials=st.integers(min_value=1, max_value=100_000), data=st.data())
def test_the_wilson_interval_contains_the_observed_share(trials: int, data: st.DataObject) -> None:
    successes = data.draw(st.integers(min_value=0, max_value=trials))
    interval = wilson_interval(successes=successes, trials=trials)

    assert 0.0 <= interval.lower <= 100 * successes / trials <= interval.upper <= 100.0


@given(promoters=counts, passives=counts, detractors=counts)
def test_the_nps_and_its_interval_stay_within_minus_100_and_100(
    promoters: int, passives: int, detractors: int
) -> None:
    figure = nps_figure(NpsTally(promoters=promoters, passives=passives, detractors=detractors))

    if figure.sufficient:
        assert figure.nps is not None
        assert figure.interval is not None
        assert -100.0 <= figure.nps <= 100.0
        assert -100.0 <= figure.interval.lower <= figure.interval.upper <= 100.0
    else:
        assert promoters + passives + detractors < 10


@given(scores=st.lists(st.integers(min_value=0, max_value=10)))
def test_every_nps_answer_lands_in_exactly_one_band(scores: list[int]) -> None:
    tally = tally_nps(scores)

    assert tally.responses == len(scores)
    assert tally.promoters == sum(score >= 9 for score in scores)
    assert tally.detractors == sum(score <= 6 for score in scores)


@given(scores=st.lists(st.integers(min_value=1, max_value=5), min_size=10))
def test_the_csat_mean_stays_on_the_scale_and_the_share_inside_its_interval(scores: list[int]) -> None:
    figure = csat_figure(tally_csat(scores))

    assert figure.mean_score is not None
    assert figure.csat is not None
    assert figure.interval is not None
    assert 1.0 <= figure.mean_score <= 5.0
    assert figure.interval.lower <= figure.csat <= figure.interval.upper
