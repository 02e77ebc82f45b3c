"""Templates shared by the desk's pages: the desk's own folder first, then the site's (base.html)."""

from pathlib import Path
from urllib.parse import urlencode

from fastapi.templating import Jinja2Templates

from api.web import china_time

templates = Jinja2Templates(
    directory=[Path(__file__).parent / "templates", Path(__file__).parents[1] / "templates"]
)
templates.env.filters["china_time"] = china_time


def desk_query(filters: dict[str, str], **override: str) -> str:
    """The work list's query string for ``filters`` with some changed (empty values left out)."""
    return urlencode({k: v for k, v in {**filters, **override}.items() if v})


templates.env.filters["desk_query"] = desk_query
