"""The joint case the evidence tests package (see ``utils.evidence.make_case``)."""

import pytest
from utils.evidence import Case, make_case


@pytest.fixture
def case(client, sessions) -> Case:
    return make_case(client, sessions)
