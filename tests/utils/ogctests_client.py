"""A pytest plugin loaded into the ``ogctests`` suite (which tests/ogc/test_ogctests.py runs in its own
virtualenv): the suite's HTTP client, signed in with ``OGCTESTS_TOKEN`` when that is set, so that it
also sees the collections anonymous clients do not. ogctests takes a plugin's ``http_client`` when
``CLIENT_OVERRIDDEN=True``, its documented way to swap the client. Runs under ogctests' own httpx and
pytest: no project imports here."""

import os

import httpx
import pytest


@pytest.fixture(scope="session")
def http_client(instance_url: str):
    token = os.environ.get("OGCTESTS_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # Redirects are not followed, as with ogctests' own client: a 307 is an answer the suite judges.
    with httpx.Client(base_url=instance_url, headers=headers, timeout=30) as client:
        yield client
