from __future__ import annotations

import pytest

from bothways.events import StatusCategory
from services.reporting.tickets import ticket_counts

pytestmark = pytest.mark.unit


def test_every_status_category_is_reported_even_when_empty() -> None:
    counts = ticket_counts({"open": 3, "resolved": 2})
    assert counts.total == 5
    assert set(counts.by_status_category) == set(StatusCategory)
    assert counts.by_status_category[StatusCategory.CANCELED] == 0
