"""Fixtures of the protocol-core tests: a seeded core on in-memory storage and a frozen clock."""

from __future__ import annotations

import pytest

from tests.oauth.support import Server


@pytest.fixture
def server() -> Server:
    return Server()
