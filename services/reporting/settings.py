"""The reporting service's settings (BOTHWAYS_* environment variables); every one has a default."""

from __future__ import annotations

from pydantic import Field, model_validator

from bothways.settings import ServiceSettings
from services.reporting.experience import DEFAULT_WEIGHTS, ExperienceRules
from services.reporting.scorecard import ScorecardRules
from services.reporting.watermelon import WatermelonRules


class ReportingSettings(ServiceSettings):
    port: int = Field(default=8004, ge=1, le=65535)
    # The experience score (docs/reporting.md): component weights, e.g.
    # BOTHWAYS_EXPERIENCE_WEIGHTS='{"sla_compliance": 0.3, "availability": 0.2, "csat": 0.35, "nps": 0.15}'
    experience_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    experience_good_above: float = Field(default=75.0, ge=0, le=100)
    experience_poor_below: float = Field(default=45.0, ge=0, le=100)
    # The watermelon flag: the SLA target every metric must reach, and the customer targets whose
    # interval's upper bound must fall below for the service to be flagged.
    sla_target_percent: float = Field(default=95.0, gt=0, le=100)
    csat_target_percent: float = Field(default=85.0, gt=0, le=100)
    nps_target: float = Field(default=0.0, ge=-100, le=100)
    # CSAT and NPS of a service are withheld below this many answers.
    min_responses: int = Field(default=10, ge=1, le=100_000)
    # Breakdown rows (assignment group, priority) withhold each figure below this many counts.
    breakdown_min_count: int = Field(default=10, ge=1, le=100_000)

    @model_validator(mode="after")
    def _valid_rules(self) -> ReportingSettings:
        self.scorecard_rules()  # fails the start with the reason, not the first request
        return self

    def scorecard_rules(self) -> ScorecardRules:
        """The scorecard rules these settings describe."""
        return ScorecardRules(
            experience=ExperienceRules(
                weights=dict(self.experience_weights),
                good_above=self.experience_good_above,
                poor_below=self.experience_poor_below,
            ),
            watermelon=WatermelonRules(
                sla_target_percent=self.sla_target_percent,
                csat_target_percent=self.csat_target_percent,
                nps_target=self.nps_target,
            ),
            min_responses=self.min_responses,
            breakdown_min_count=self.breakdown_min_count,
        )
