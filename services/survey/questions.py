"""The answer scales a customer sees: their choices and labels, and what an answer means."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bothways.events import SurveyKind
from services.survey.scoring import (
    CsatBand,
    CsatScale,
    NpsBand,
    csat_band,
    nps_band,
    validate_csat_score,
    validate_nps_score,
)


class Scale(StrEnum):
    """How a question is answered; CSAT takes five_point or two_point, NPS takes nps (0-10)."""

    FIVE_POINT = "five_point"
    TWO_POINT = "two_point"
    NPS = "nps"

    @property
    def kind(self) -> SurveyKind:
        """The survey kind asked on this scale."""
        return SurveyKind.NPS if self is Scale.NPS else SurveyKind.CSAT

    @property
    def event_name(self) -> str:
        """The scale as `survey.answered` events name it."""
        return {Scale.FIVE_POINT: "1-5", Scale.TWO_POINT: "2-point", Scale.NPS: "0-10"}[self]


@dataclass(frozen=True)
class Choice:
    """One answer button: the stored score and what the customer reads."""

    score: int
    label: str
    low: bool


_LABELS = {
    Scale.FIVE_POINT: {
        5: "Very satisfied",
        4: "Satisfied",
        3: "Neither satisfied nor dissatisfied",
        2: "Dissatisfied",
        1: "Very dissatisfied",
    },
    Scale.TWO_POINT: {2: "Good, I'm satisfied", 1: "Bad, I'm not satisfied"},
}


def choices(scale: Scale) -> list[Choice]:
    """The buttons, best first for CSAT (as in Zendesk's mails), 0 to 10 for NPS (the standard order)."""
    if scale is Scale.NPS:
        anchors = {0: "0, not at all likely", 10: "10, extremely likely"}
        return [Choice(score, anchors.get(score, str(score)), is_low(scale, score)) for score in range(11)]
    return [Choice(score, label, is_low(scale, score)) for score, label in _LABELS[scale].items()]


def validate(scale: Scale, score: int) -> int:
    """The score if the scale allows it; InvalidScore otherwise."""
    if scale is Scale.NPS:
        return validate_nps_score(score)
    return validate_csat_score(score, scale=CsatScale(scale.value))


def is_low(scale: Scale, score: int) -> bool:
    """An unhappy answer: a dissatisfied CSAT (1-2, or bad) or an NPS detractor (0-6); it opens a follow-up."""
    if scale is Scale.NPS:
        return nps_band(score) is NpsBand.DETRACTOR
    return csat_band(score, scale=CsatScale(scale.value)) is CsatBand.DISSATISFIED


def band(scale: Scale, score: int) -> str:
    """satisfied / neutral / dissatisfied for CSAT, promoter / passive / detractor for NPS."""
    if scale is Scale.NPS:
        return nps_band(score).value
    return csat_band(score, scale=CsatScale(scale.value)).value


def label(scale: Scale, score: int) -> str:
    """What the customer read on the button of a score."""
    return next(choice.label for choice in choices(scale) if choice.score == score)
