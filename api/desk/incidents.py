"""The incident desk: the work list and the incident page's actions."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
