"""Survey rules: which resolved tickets are surveyed and how, the fatigue budget, follow-ups, reasons.

Parsed from a YAML-style mapping (see `surveys.yaml`) into frozen values; every section and key is
optional and falls back to the defaults below. An invalid entry raises RulesConfigError naming it as a
dotted path, so a bad file stops the start rather than a survey.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import yaml

from bothways.events import SurveyKind
from services.sla.calendar import Calendar, CalendarConfigError
from services.survey.scoring import CsatScale

DEFAULT_RULES_FILE: Final = Path(__file__).parent / "surveys.yaml"

_DURATION: Final = re.compile(r"(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")
_MATCH_KEYS: Final = ("source", "kind", "business_service", "priority")
_RULE_KEYS: Final = frozenset(
    {"name", "match", "survey", "delay", "sampling_percent", "expiry", "scale", "each_resolution"}
)
_TOP_KEYS: Final = frozenset({"csat", "nps", "fatigue", "followup", "results"})
_CSAT_KEYS: Final = frozenset({"rules", "question", "reasons", "sampling_seed", "max_age"})
_NPS_KEYS: Final = frozenset({"expiry", "reasons", "question", "comment_prompt"})
_FATIGUE_KEYS: Final = frozenset({"cooldown", "max_per_30_days"})
_FOLLOWUP_KEYS: Final = frozenset({"due", "calendar", "resurvey", "resurvey_delay"})
_RESULTS_KEYS: Final = frozenset({"min_responses"})

DEFAULT_CSAT_QUESTION: Final = "How satisfied are you with how your request was handled?"
DEFAULT_NPS_QUESTION: Final = "How likely are you to recommend our IT services to a friend or colleague?"
DEFAULT_COMMENT_PROMPT: Final = "What is the main reason for your score?"
# Zendesk's and ServiceNow's usual low-score reasons, worded for a customer.
DEFAULT_REASONS: Final = (
    "It took too long",
    "My issue was not resolved",
    "I had to repeat myself",
    "The agent was unhelpful",
    "Something else",
)


class RulesConfigError(ValueError):
    """A survey rules definition is invalid; `field` names the offending entry as a dotted path."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True)
class TicketFacts:
    """What a rule matches on: the ticket as it was at resolution."""

    source: str | None
    kind: str | None
    business_service: str | None
    priority: str | None


@dataclass(frozen=True)
class CsatRule:
    """How one kind of resolved ticket is surveyed; an empty match criterion matches every ticket."""

    name: str
    match: Mapping[str, frozenset[str]] = field(default_factory=dict)
    survey: bool = True
    delay: timedelta = timedelta(hours=1)
    sampling_percent: float = 100.0
    expiry: timedelta = timedelta(days=7)
    scale: CsatScale = CsatScale.FIVE_POINT
    # A reopened ticket that is resolved again invites again only when this is true.
    each_resolution: bool = False

    def matches(self, ticket: TicketFacts) -> bool:
        """Whether every criterion of this rule admits the ticket."""
        return all(getattr(ticket, key) in allowed for key, allowed in self.match.items())


@dataclass(frozen=True)
class FatigueBudget:
    """One budget per person across survey kinds: a cooldown per kind and an optional rolling cap."""

    cooldown: Mapping[SurveyKind, timedelta] = field(
        default_factory=lambda: {SurveyKind.CSAT: timedelta(days=30), SurveyKind.NPS: timedelta(days=90)}
    )
    max_per_30_days: int | None = None


@dataclass(frozen=True)
class FollowupPolicy:
    """When an unhappy answer must have been followed up, on which calendar, and whether to re-survey."""

    due: timedelta = timedelta(hours=48)
    calendar: Calendar = field(default_factory=lambda: Calendar.always_open("around-the-clock"))
    resurvey: bool = False
    resurvey_delay: timedelta = timedelta(days=1)


@dataclass(frozen=True)
class SurveyRules:
    """The whole survey configuration of a site."""

    csat_rules: Sequence[CsatRule] = (CsatRule(name="default"),)
    csat_question: str = DEFAULT_CSAT_QUESTION
    csat_reasons: Sequence[str] = DEFAULT_REASONS
    sampling_seed: str = "bothways"
    # A resolution older than this when first seen (a late or replayed event) is not surveyed.
    max_age: timedelta = timedelta(days=7)
    nps_question: str = DEFAULT_NPS_QUESTION
    nps_comment_prompt: str = DEFAULT_COMMENT_PROMPT
    nps_expiry: timedelta = timedelta(days=14)
    nps_reasons: Sequence[str] = ()
    fatigue: FatigueBudget = field(default_factory=FatigueBudget)
    followup: FollowupPolicy = field(default_factory=FollowupPolicy)
    min_responses: int = 10

    def rule_for(self, ticket: TicketFacts) -> CsatRule | None:
        """The first rule matching the ticket; None when no rule covers it."""
        return next((rule for rule in self.csat_rules if rule.matches(ticket)), None)

    def reasons(self, kind: SurveyKind) -> Sequence[str]:
        """The reasons offered after a low score of this kind."""
        return self.csat_reasons if kind is SurveyKind.CSAT else self.nps_reasons


def sampled(*, seed: str, key: str, percent: float) -> bool:
    """Whether a candidate is in the sample: a seeded hash, so the same candidate always gets the same answer."""
    if percent >= 100:
        return True
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode()).digest()
    # The first 8 bytes as a uniform fraction in [0, 1).
    return int.from_bytes(digest[:8], "big") / 2**64 < percent / 100


def parse_duration(value: object, *, field: str) -> timedelta:
    """'90s', '30m', '1h', '7d', '1h30m' or a whole number of seconds."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    match = _DURATION.fullmatch(value) if isinstance(value, str) and value else None
    if match is None or not any(match.groupdict().values()):
        raise RulesConfigError(
            field, f"expected a duration such as '90s', '30m', '1h' or '7d', got {value!r}"
        )
    parts = {unit: int(amount or 0) for unit, amount in match.groupdict().items()}
    return timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])


def load_rules(path: Path | None = None) -> SurveyRules:
    """Read a rules file (the packaged `surveys.yaml` when none is given)."""
    source = path or DEFAULT_RULES_FILE
    try:
        document = yaml.safe_load(source.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RulesConfigError(str(source), f"cannot read the rules file: {exc}") from exc
    return parse_rules(document or {})


def parse_rules(document: object) -> SurveyRules:
    """Build the survey rules from their YAML-style definition."""
    top = _mapping(document, field="(root)", keys=_TOP_KEYS)
    csat = _mapping(top.get("csat", {}), field="csat", keys=_CSAT_KEYS)
    nps = _mapping(top.get("nps", {}), field="nps", keys=_NPS_KEYS)
    defaults = SurveyRules()
    return SurveyRules(
        csat_rules=_parse_csat_rules(csat.get("rules", [{"name": "default"}])),
        csat_question=_text(csat.get("question", defaults.csat_question), field="csat.question"),
        csat_reasons=_reasons(csat.get("reasons", list(defaults.csat_reasons)), field="csat.reasons"),
        sampling_seed=_text(csat.get("sampling_seed", defaults.sampling_seed), field="csat.sampling_seed"),
        max_age=parse_duration(csat.get("max_age", "7d"), field="csat.max_age"),
        nps_question=_text(nps.get("question", defaults.nps_question), field="nps.question"),
        nps_comment_prompt=_text(
            nps.get("comment_prompt", defaults.nps_comment_prompt), field="nps.comment_prompt"
        ),
        nps_expiry=_positive(
            parse_duration(nps.get("expiry", "14d"), field="nps.expiry"), field="nps.expiry"
        ),
        nps_reasons=_reasons(nps.get("reasons", []), field="nps.reasons"),
        fatigue=_parse_fatigue(top.get("fatigue", {})),
        followup=_parse_followup(top.get("followup", {})),
        min_responses=_parse_min_responses(top.get("results", {})),
    )


def _parse_csat_rules(value: object) -> tuple[CsatRule, ...]:
    if not isinstance(value, list) or not value:
        raise RulesConfigError("csat.rules", "expected a non-empty list of rules")
    rules = tuple(_parse_rule(item, field=f"csat.rules[{index}]") for index, item in enumerate(value))
    names = [rule.name for rule in rules]
    if duplicate := next((name for name in names if names.count(name) > 1), None):
        raise RulesConfigError("csat.rules", f"the rule name {duplicate!r} is used twice")
    return rules


def _parse_rule(value: object, *, field: str) -> CsatRule:
    rule = _mapping(value, field=field, keys=_RULE_KEYS)
    sampling = rule.get("sampling_percent", 100)
    if isinstance(sampling, bool) or not isinstance(sampling, int | float) or not 0 <= sampling <= 100:
        raise RulesConfigError(f"{field}.sampling_percent", f"expected a number 0..100, got {sampling!r}")
    scale = rule.get("scale", CsatScale.FIVE_POINT.value)
    if scale not in {s.value for s in CsatScale}:
        raise RulesConfigError(f"{field}.scale", f"expected five_point or two_point, got {scale!r}")
    return CsatRule(
        name=_text(rule.get("name"), field=f"{field}.name"),
        match=_parse_match(rule.get("match", {}), field=f"{field}.match"),
        survey=_flag(rule.get("survey", True), field=f"{field}.survey"),
        delay=parse_duration(rule.get("delay", "1h"), field=f"{field}.delay"),
        sampling_percent=float(sampling),
        expiry=_positive(
            parse_duration(rule.get("expiry", "7d"), field=f"{field}.expiry"), field=f"{field}.expiry"
        ),
        scale=CsatScale(scale),
        each_resolution=_flag(rule.get("each_resolution", False), field=f"{field}.each_resolution"),
    )


def _parse_match(value: object, *, field: str) -> dict[str, frozenset[str]]:
    criteria = _mapping(value, field=field, keys=frozenset(_MATCH_KEYS))
    parsed = {}
    for key, allowed in criteria.items():
        values = allowed if isinstance(allowed, list) else [allowed]
        if not values or not all(isinstance(v, str) and v for v in values):
            raise RulesConfigError(f"{field}.{key}", "expected a name or a non-empty list of names")
        parsed[key] = frozenset(values)
    return parsed


def _parse_fatigue(value: object) -> FatigueBudget:
    fatigue = _mapping(value, field="fatigue", keys=_FATIGUE_KEYS)
    cooldowns = _mapping(
        fatigue.get("cooldown", {}), field="fatigue.cooldown", keys=frozenset({"csat", "nps"})
    )
    defaults = FatigueBudget().cooldown
    cap = fatigue.get("max_per_30_days")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise RulesConfigError(
            "fatigue.max_per_30_days", f"expected a whole number >= 1 or null, got {cap!r}"
        )
    return FatigueBudget(
        cooldown={
            kind: parse_duration(cooldowns[kind.value], field=f"fatigue.cooldown.{kind.value}")
            if kind.value in cooldowns
            else defaults[kind]
            for kind in SurveyKind
        },
        max_per_30_days=cap,
    )


def _parse_followup(value: object) -> FollowupPolicy:
    followup = _mapping(value, field="followup", keys=_FOLLOWUP_KEYS)
    defaults = FollowupPolicy()
    calendar = defaults.calendar
    if "calendar" in followup:
        try:
            calendar = Calendar.from_config(followup["calendar"])
        except CalendarConfigError as exc:
            raise RulesConfigError(f"followup.calendar.{exc.field}", str(exc)) from exc
    return FollowupPolicy(
        due=_positive(parse_duration(followup.get("due", "48h"), field="followup.due"), field="followup.due"),
        calendar=calendar,
        resurvey=_flag(followup.get("resurvey", False), field="followup.resurvey"),
        resurvey_delay=parse_duration(followup.get("resurvey_delay", "1d"), field="followup.resurvey_delay"),
    )


def _parse_min_responses(value: object) -> int:
    results = _mapping(value, field="results", keys=_RESULTS_KEYS)
    minimum = results.get("min_responses", 10)
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 1:
        raise RulesConfigError("results.min_responses", f"expected a whole number >= 1, got {minimum!r}")
    return minimum


def _mapping(value: object, *, field: str, keys: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RulesConfigError(field, "expected a mapping")
    if unknown := sorted(set(map(str, value)) - keys):
        raise RulesConfigError(f"{field}.{unknown[0]}" if field != "(root)" else unknown[0], "unknown key")
    return value


def _text(value: object, *, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RulesConfigError(field, "expected a non-empty text")
    return value.strip()


def _flag(value: object, *, field: str) -> bool:
    if not isinstance(value, bool):
        raise RulesConfigError(field, f"expected true or false, got {value!r}")
    return value


def _positive(duration: timedelta, *, field: str) -> timedelta:
    if duration <= timedelta(0):
        raise RulesConfigError(field, "expected a duration longer than zero")
    return duration


def _reasons(value: object, *, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise RulesConfigError(field, "expected a list of texts")
    reasons = tuple(v.strip() for v in value)
    if len(set(reasons)) != len(reasons):
        raise RulesConfigError(field, "a reason is listed twice")
    if any(len(reason) > 200 for reason in reasons):
        raise RulesConfigError(field, "a reason is longer than 200 characters")
    return reasons
