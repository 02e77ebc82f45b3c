"""The OGC API tests read the shared demo season (``utils.demo``)."""

from utils.demo import demo, demo_client, demo_loaded  # noqa: F401  (fixtures)
