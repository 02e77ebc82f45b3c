"""Joint cases at the desk: a page per case, opening, adding incidents, logging actions, closing."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
