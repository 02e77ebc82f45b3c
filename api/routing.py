"""Every route of the application, including those of included routers.

FastAPI 0.16x keeps included routers as nodes of their own (``app.routes`` then lists only the
routers, not their routes); ``iter_route_contexts`` walks them. Older versions flattened them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # pragma: no cover - FastAPI before 0.16x: app.routes is already flat

    def iter_route_contexts(routes: Iterable[Any]) -> Iterator[Any]:
        return iter(routes)


def all_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Each route (or route context: same attributes, with the routers' prefixes applied)."""
    yield from iter_route_contexts(list(routes))


def original(route: Any) -> Any:
    """The route object as declared (an ``APIRoute``, a ``Mount``…)."""
    return getattr(route, "original_route", route)
