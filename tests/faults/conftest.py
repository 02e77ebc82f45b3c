"""Fixtures for faults that only one backend can have."""

from __future__ import annotations

import pytest


@pytest.fixture
def postgis(backend, engine):
    """The PostGIS test database's engine (the SpatiaLite run of the test is skipped)."""
    if backend[0] != "postgis":
        pytest.skip("SpatiaLite has no server connection to lose")
    return engine


@pytest.fixture
def spatialite(backend, engine):
    """The SpatiaLite test database's engine (the PostGIS run of the test is skipped)."""
    if backend[0] != "spatialite":
        pytest.skip("the write lock and its busy timeout are SpatiaLite's")
    return engine
