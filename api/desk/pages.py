"""Templates shared by the desk's pages: the desk's own folder first, then the site's (base.html)."""

from pathlib import Path

from fastapi.templating import Jinja2Templates

from api.web import china_time

templates = Jinja2Templates(
    directory=[Path(__file__).parent / "templates", Path(__file__).parents[1] / "templates"]
)
templates.env.filters["china_time"] = china_time
