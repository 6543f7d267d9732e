"""The merged outages of one business service, and what changed on them since they were last announced.

Pure. The failures the figures count (availability.failures) become outages with the worst impact
over each and the signals behind it. They are matched with the outages already announced by overlap,
so an outage keeps its id while late or corrected signals move its start or end; two outages merged by a
correction keep the older id and withdraw the other, and an outage whose signals are all gone is
withdrawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from services.sla.availability import Impact, ServiceRecord, downtime_timeline, failures
from services.sla.signals import Episode

_WORST_FIRST = (Impact.MAJOR, Impact.PARTIAL, Impact.DEGRADED)
_FOREVER = datetime.max.replace(tzinfo=UTC)


class OutageStatus(StrEnum):
    OPEN = "open"
    RESTORED = "restored"
    WITHDRAWN = "withdrawn"


class ChangeKind(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    CLOSED = "closed"


@dataclass(frozen=True)
class Outage:
    """A merged outage of a service; `id` is None until it is stored."""

    started_at: datetime
    restored_at: datetime | None
    impact: Impact
    signals: tuple[str, ...]
    status: OutageStatus
    id: int | None = None
    revision: int = 0

    def same_as(self, other: Outage) -> bool:
        """Whether nothing announced about the outage differs."""
        return (self.started_at, self.restored_at, self.impact, self.signals, self.status) == (
            other.started_at,
            other.restored_at,
            other.impact,
            other.signals,
            other.status,
        )


@dataclass(frozen=True)
class Change:
    """An outage to store as it is now, announced once per kind (a late report is opened and closed)."""

    kinds: tuple[ChangeKind, ...]
    outage: Outage


def merged_outages(
    record: ServiceRecord, *, episodes: Mapping[str, Sequence[Episode]], now: datetime
) -> list[Outage]:
    """The service's outages up to `now`: its failures with the worst impact and the signals behind each."""
    segments = downtime_timeline(record, now=now)
    merged = []
    for failure in failures(record, now=now):
        end = failure.restored_at or now
        impacts = {s.impact for s in segments if s.start < end and failure.started_at < s.end}
        signals = tuple(
            sorted(
                key
                for key, stretches in episodes.items()
                if any(_overlaps(e.started_at, e.ended_at or now, failure.started_at, end) for e in stretches)
            )
        )
        status = OutageStatus.OPEN if failure.restored_at is None else OutageStatus.RESTORED
        worst = next(impact for impact in _WORST_FIRST if impact in impacts)
        merged.append(Outage(failure.started_at, failure.restored_at, worst, signals, status))
    return merged


def _overlaps(start: datetime, end: datetime, other_start: datetime, other_end: datetime) -> bool:
    return start < other_end and other_start < end


def reconcile(stored: Sequence[Outage], fresh: Sequence[Outage], *, now: datetime) -> list[Change]:
    """What to announce so that the stored outages become the fresh ones, ids kept by overlap."""
    live = sorted((o for o in stored if o.status is not OutageStatus.WITHDRAWN), key=lambda o: o.started_at)
    used: set[int | None] = set()
    changes: list[Change] = []
    for outage in fresh:
        end = outage.restored_at or now
        matches = [
            o
            for o in live
            if o.id not in used and _overlaps(o.started_at, o.restored_at or _FOREVER, outage.started_at, end)
        ]
        used.update(o.id for o in matches)
        if not matches:
            changes.append(_new(outage))
            continue
        kept, *merged_away = matches
        changes.extend(_withdrawn(o) for o in merged_away)
        changes.extend(_changed(kept, outage))
    changes.extend(_withdrawn(o) for o in live if o.id not in used)
    return changes


def _new(outage: Outage) -> Change:
    """A new outage is opened, and closed at once when it is already over (a late report)."""
    if outage.restored_at is None:
        return Change((ChangeKind.OPENED,), replace(outage, revision=1))
    return Change((ChangeKind.OPENED, ChangeKind.CLOSED), replace(outage, revision=2))


def _changed(stored: Outage, fresh: Outage) -> list[Change]:
    """Closed when it was open and is restored now; updated when anything else changed."""
    updated = replace(fresh, id=stored.id, revision=stored.revision + 1)
    if updated.same_as(stored):
        return []
    closing = stored.status is OutageStatus.OPEN and fresh.status is OutageStatus.RESTORED
    return [Change((ChangeKind.CLOSED if closing else ChangeKind.UPDATED,), updated)]


def _withdrawn(stored: Outage) -> Change:
    withdrawn = replace(stored, status=OutageStatus.WITHDRAWN, revision=stored.revision + 1)
    return Change((ChangeKind.UPDATED,), withdrawn)
