"""OGC API – Features (Parts 1–3) over the service's collections: see ``api.ogc.routes``."""

from api.ogc.routes import router

__all__ = ["router"]
