"""A service freezes what start-up left alive, after collecting what start-up left as garbage."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from bothways.web import freeze_start_up_heap

pytestmark = pytest.mark.unit


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # this test process runs on: let its objects be collected again


def test_garbage_is_collected_and_what_is_alive_is_frozen(unfrozen: None) -> None:
    garbage, alive = Node(), Node()
    gone = weakref.ref(garbage)
    del garbage
    freeze_start_up_heap()
    assert gone() is None
    assert gc.get_freeze_count() > 0
    # Frozen objects are in no generation: the collector no longer walks them.
    assert not any(obj is alive for obj in gc.get_objects())
    gc.unfreeze()
    assert any(obj is alive for obj in gc.get_objects())
