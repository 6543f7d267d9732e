"""The generic source takes a canonical ticket as JSON."""

from __future__ import annotations

import pytest

from bothways.errors import InvalidInput
from services.ingest.generic import normalize
from tests.support import ticket_body

pytestmark = pytest.mark.unit


def test_the_ticket_key_defaults_to_source_and_external_id() -> None:
    [ticket] = normalize(ticket_body("42"))
    assert ticket.ticket_key == "generic:42"


def test_another_source_name_may_be_given() -> None:
    [ticket] = normalize(ticket_body("INC1", source="cherwell"))
    assert ticket.ticket_key == "cherwell:INC1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in ticket_body().items() if k != "external_id"}, "ticket_key"),
        (ticket_body(status_category="sleeping"), "status_category"),
        (ticket_body(created_at="yesterday"), "created_at"),
        (ticket_body(priority="P9"), "priority"),
        (ticket_body(ticket_key="generic:other"), "ticket_key"),
        ([ticket_body()], "body"),
    ],
)
def test_an_invalid_ticket_names_the_field(body: object, field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        normalize(body)
    assert error.value.field == field
