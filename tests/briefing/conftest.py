"""The briefing tests' database scene (see ``utils.briefing.seed_scene``)."""

import pytest
from utils.briefing import seed_scene


@pytest.fixture
def scene(sessions, settings, tmp_path):
    return seed_scene(sessions, settings, tmp_path)
