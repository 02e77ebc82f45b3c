"""The desk: the pages where station managers and enforcement officers work incidents and joint
cases — the work list, the incident page with its actions, the joint-case pages. Thin like the API:
each form calls the same domain function the API calls (``patrol.incidents``, ``patrol.joint``)."""

from fastapi import APIRouter

from api.desk import ahead, incidents, joint

router = APIRouter(include_in_schema=False)
router.include_router(incidents.router)
router.include_router(joint.router)
router.include_router(ahead.router)
