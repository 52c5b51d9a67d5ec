"""Fixtures for the card layer: a fixed ``now`` and the snapshot assertion."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

import pytest

from tests.cards.samples import NOW
from tests.cards.snapshot import assert_snapshot


@pytest.fixture
def snapshot() -> Callable[[str, Any], None]:
    return assert_snapshot


@pytest.fixture
def now() -> datetime:
    return NOW
