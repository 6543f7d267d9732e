"""Transactional CSAT, decided for one resolution: not surveyed (excluded), throttled (why), or scheduled (when)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bothways.events import SurveyKind
from services.survey import fatigue
from services.survey.fatigue import PastInvitation, Throttle, ThrottleCode
from services.survey.rules import CsatRule, SurveyRules, TicketFacts, sampled


class Outcome(StrEnum):
    SCHEDULED = "scheduled"
    THROTTLED = "throttled"
    # No rule surveys this ticket: not a survey at all, so no event announces it.
    EXCLUDED = "excluded"


@dataclass(frozen=True)
class Resolution:
    """One resolution cycle of a ticket, as it was when it happened."""

    ticket_key: str
    cycle: int
    ticket: TicketFacts
    resolved_at: datetime
    # Whether the person can be reached on the configured channel.
    reachable: bool

    @property
    def sampling_key(self) -> str:
        """What sampling hashes: the same resolution always gets the same answer."""
        return f"{self.ticket_key}#{self.cycle}"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    rule: CsatRule | None
    send_at: datetime | None = None
    throttle: Throttle | None = None


def decide(
    resolution: Resolution,
    *,
    rules: SurveyRules,
    now: datetime,
    history: Sequence[PastInvitation],
    surveyed_cycles: Collection[int],
) -> Verdict:
    """Apply the first matching rule, then the sample and the person's fatigue budget."""
    rule = rules.rule_for(resolution.ticket)
    if rule is None:
        return Verdict(
            Outcome.EXCLUDED, None, throttle=Throttle(ThrottleCode.EXCLUDED, "no rule covers the ticket")
        )
    if not rule.survey:
        reason = f"the rule {rule.name!r} does not survey such tickets"
        return Verdict(Outcome.EXCLUDED, rule, throttle=Throttle(ThrottleCode.EXCLUDED, reason))
    # A late event (consumer lag, an outage) sends at once rather than in the past.
    send_at = max(resolution.resolved_at + rule.delay, now)
    if throttle := _throttle(
        resolution,
        rule=rule,
        rules=rules,
        now=now,
        send_at=send_at,
        history=history,
        surveyed_cycles=surveyed_cycles,
    ):
        return Verdict(Outcome.THROTTLED, rule, send_at=send_at, throttle=throttle)
    return Verdict(Outcome.SCHEDULED, rule, send_at=send_at)


def _throttle(
    resolution: Resolution,
    *,
    rule: CsatRule,
    rules: SurveyRules,
    now: datetime,
    send_at: datetime,
    history: Sequence[PastInvitation],
    surveyed_cycles: Collection[int],
) -> Throttle | None:
    if now - resolution.resolved_at > rules.max_age:
        return Throttle(
            ThrottleCode.TOO_OLD, f"resolved more than {rules.max_age.days} days before it was seen"
        )
    if not resolution.reachable:
        return Throttle(ThrottleCode.NO_ADDRESS, "the requester has no address to send the survey to")
    if not rule.each_resolution and any(cycle < resolution.cycle for cycle in surveyed_cycles):
        return Throttle(
            ThrottleCode.ALREADY_SURVEYED,
            f"already surveyed for an earlier resolution; the rule {rule.name!r} surveys one resolution per ticket",
        )
    if not sampled(seed=rules.sampling_seed, key=resolution.sampling_key, percent=rule.sampling_percent):
        return Throttle(
            ThrottleCode.SAMPLING, f"not in the {rule.sampling_percent:g}% sample of the rule {rule.name!r}"
        )
    return fatigue.verdict(rules.fatigue, kind=SurveyKind.CSAT, at=send_at, history=history)
