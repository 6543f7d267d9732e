"""One outage signal's stretches of outage (episodes), folded from its events whatever their arrival order.

Pure. Events are snapshots taken in `occurred_at` order. The latest snapshot's impact and `planned`
hold for the whole episode they describe: a reclassification corrects the outage, it does not split it.

- A start (or update) while an episode is open restates it, moving its start when the snapshot says
  so (a backdated impact start). A start reaching back over an earlier episode of the same signal is
  the signal's first start restated (PagerDuty sends the incident's creation on every event), not a
  correction, and leaves the start alone.
- A start (or update) with no episode open refers to the first ended episode that ends after it: it
  restates or backdates that one; a start after every episode opens a new one.
- An end closes the open episode, or restates (corrects) the ended episode it refers to; an end for
  nothing is counted from its own start and reported as an anomaly.
- Input that cannot be true (an end before its start) is reported and not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from bothways.events import StatusCategory, TicketChanged
from services.sla.availability import Impact, OutageSignal
from services.sla.catalogue import CatalogueError, MajorIncidentRule, ticket_instant


class SignalKind(StrEnum):
    STARTED = "started"
    UPDATED = "updated"
    ENDED = "ended"


class AnomalyKind(StrEnum):
    END_WITHOUT_START = "end_without_start"
    END_WITHOUT_END_TIME = "end_without_end_time"
    ENDS_BEFORE_START = "ends_before_start"
    UPDATE_WITHOUT_START = "update_without_start"
    UNMAPPED_SERVICE = "unmapped_service"
    INVALID_TICKET_FIELD = "invalid_ticket_field"
    IMPLAUSIBLE_TIME = "implausible_time"


# Outages are counted from this instant on; a start before it is a mistake (a zero date), not history.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# A start this far ahead of our clock is no outage yet (clock skew is far smaller).
_AHEAD = timedelta(days=1)

# Same instant: a start before an update before an end, so a snapshot pair sent together folds in order.
_RANK = {SignalKind.STARTED: 0, SignalKind.UPDATED: 1, SignalKind.ENDED: 2}


@dataclass(frozen=True)
class SignalEvent:
    """One event of a signal, as stored."""

    event_id: str
    kind: SignalKind
    occurred_at: datetime
    started_at: datetime
    ended_at: datetime | None
    impact: Impact
    planned: bool = False


@dataclass(frozen=True)
class Episode:
    """A stretch of outage reported by one signal; `ended_at` is None while it is open."""

    started_at: datetime
    ended_at: datetime | None
    impact: Impact
    planned: bool = False

    def signal(self) -> OutageSignal:
        """The episode as the availability figures take it."""
        return OutageSignal(self.started_at, self.ended_at, self.impact, self.planned)

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "impact": self.impact.value,
            "planned": self.planned,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Episode:
        ended = data.get("ended_at")
        return cls(
            started_at=datetime.fromisoformat(data["started_at"]),
            ended_at=datetime.fromisoformat(ended) if ended else None,
            impact=Impact(data["impact"]),
            planned=bool(data.get("planned", False)),
        )


@dataclass(frozen=True)
class Anomaly:
    """Input that cannot be true or cannot be placed, with the event that carried it; the detail names
    the offending values, so the same bad input restated is the same anomaly."""

    kind: AnomalyKind
    detail: str
    event_id: str = ""


@dataclass(frozen=True)
class Folded:
    """A signal's episodes, oldest first, and what was wrong with its events."""

    episodes: tuple[Episode, ...]
    anomalies: tuple[Anomaly, ...]


def fold_signal(events: Iterable[SignalEvent]) -> Folded:
    """Fold a signal's events into its episodes, in `occurred_at` order whatever the arrival order."""
    episodes: list[Episode] = []
    anomalies: list[Anomaly] = []
    for event in sorted(events, key=lambda e: (e.occurred_at, _RANK[e.kind], e.event_id)):
        if event.kind is SignalKind.ENDED:
            anomalies.extend(_end(episodes, event))
        else:
            anomalies.extend(_restate(episodes, event))
    return Folded(tuple(sorted(episodes, key=lambda e: e.started_at)), tuple(anomalies))


def _open_index(episodes: Sequence[Episode]) -> int | None:
    # At most one episode is open, and nothing is appended while it is: it is the last one.
    return len(episodes) - 1 if episodes and episodes[-1].ended_at is None else None


def _previous_end(episodes: Sequence[Episode], index: int) -> datetime | None:
    """The latest end among the ended episodes that start before episodes[index]."""
    start = episodes[index].started_at
    return max(
        (e.ended_at for e in episodes if e.ended_at is not None and e.started_at < start), default=None
    )


def _referred(episodes: Sequence[Episode], started_at: datetime) -> int | None:
    """The ended episode a start refers to: the earliest-starting one that ends after it."""
    later = [i for i, e in enumerate(episodes) if e.ended_at is not None and started_at < e.ended_at]
    return min(later, key=lambda i: episodes[i].started_at, default=None)


def _restate(episodes: list[Episode], event: SignalEvent) -> list[Anomaly]:
    """Apply a start or update: restate the open episode or the ended one it refers to, else open one."""
    opened = _open_index(episodes)
    if opened is not None:
        episode = episodes[opened]
        before = _previous_end(episodes, opened)
        start = event.started_at if before is None or event.started_at >= before else episode.started_at
        episodes[opened] = replace(episode, started_at=start, impact=event.impact, planned=event.planned)
        return []
    referred = _referred(episodes, event.started_at)
    if referred is not None:
        episodes[referred] = replace(
            episodes[referred], started_at=event.started_at, impact=event.impact, planned=event.planned
        )
        return []
    episodes.append(Episode(event.started_at, None, event.impact, event.planned))
    if event.kind is SignalKind.UPDATED:
        detail = (
            f"an update for an outage never started; counted as started at {event.started_at.isoformat()}"
        )
        return [Anomaly(AnomalyKind.UPDATE_WITHOUT_START, detail, event.event_id)]
    return []


def _end(episodes: list[Episode], event: SignalEvent) -> list[Anomaly]:
    """Apply an end: close the open episode, correct the ended one it refers to, or count it alone."""
    anomalies = []
    ended_at = event.ended_at
    if ended_at is None:
        ended_at = event.occurred_at
        detail = f"an end without an end time; taken as its occurred_at {ended_at.isoformat()}"
        anomalies.append(Anomaly(AnomalyKind.END_WITHOUT_END_TIME, detail, event.event_id))
    opened = _open_index(episodes)
    start = event.started_at
    if opened is not None:
        before = _previous_end(episodes, opened)
        if before is not None and start < before:
            start = episodes[opened].started_at
    if ended_at < start:
        detail = f"ends at {ended_at.isoformat()} before it starts at {start.isoformat()}; not counted"
        return [*anomalies, Anomaly(AnomalyKind.ENDS_BEFORE_START, detail, event.event_id)]
    closed = Episode(start, ended_at, event.impact, event.planned)
    if opened is not None:
        episodes[opened] = closed
        return anomalies
    referred = _referred(episodes, start)
    if referred is not None:
        episodes[referred] = closed
        return anomalies
    episodes.append(closed)
    detail = f"an end for an outage never started; counted from its start {start.isoformat()}"
    return [*anomalies, Anomaly(AnomalyKind.END_WITHOUT_START, detail, event.event_id)]


def plausible(
    episodes: Iterable[Episode], *, now: datetime
) -> tuple[tuple[Episode, ...], tuple[Anomaly, ...]]:
    """The episodes that can be counted, and an anomaly for each one starting before 1970 or days ahead."""
    kept, anomalies = [], []
    for episode in episodes:
        if EARLIEST <= episode.started_at <= now + _AHEAD:
            kept.append(episode)
            continue
        detail = (
            f"starts at {episode.started_at.isoformat()}, before 1970 or more than a day ahead; not counted"
        )
        anomalies.append(Anomaly(AnomalyKind.IMPLAUSIBLE_TIME, detail))
    return tuple(kept), tuple(anomalies)


def major_incident_episode(
    ticket: TicketChanged, *, rule: MajorIncidentRule
) -> tuple[Episode | None, list[Anomaly]]:
    """The outage a ticket snapshot stands for under the rule: None when it is no major incident (any more)."""
    if not rule.covers(ticket):
        return None, []
    assert ticket.priority is not None
    anomalies: list[Anomaly] = []
    # ITIL: downtime counts from the impact start, not from when the ticket was raised.
    start = _instant(ticket, rule.impact_start_field, anomalies) or ticket.created_at
    end = _instant(ticket, rule.restored_field, anomalies)
    if end is None and ticket.status_category in (StatusCategory.RESOLVED, StatusCategory.CLOSED):
        end = ticket.resolved_at or ticket.closed_at or ticket.updated_at or ticket.occurred_at
    if end is not None and end < start:
        detail = (
            f"restored at {end.isoformat()} before its impact started at {start.isoformat()}; not counted"
        )
        return None, [*anomalies, Anomaly(AnomalyKind.ENDS_BEFORE_START, detail)]
    return Episode(start, end, Impact(rule.priorities[ticket.priority].value)), anomalies


def _instant(ticket: TicketChanged, field: str | None, anomalies: list[Anomaly]) -> datetime | None:
    if field is None:
        return None
    try:
        return ticket_instant(ticket, field)
    except CatalogueError as error:
        anomalies.append(Anomaly(AnomalyKind.INVALID_TICKET_FIELD, f"{error}; ignored"))
        return None
