"""Property-based fuzzing of the whole API against its own OpenAPI document (schemathesis).

For every operation, as an admin and as a patrol member (bearer tokens), on both backends:
valid requests generated from the document (positive) and invalid ones (negative), each answered
with no 5xx, a documented status code, a documented content type and a body matching the
documented schema. Path parameters are half of the time the ids of real rows seeded first, so
that reads, transitions and uploads reach the code behind the 404. Deletes run last, so that
they do not take away the rows the other operations read.

Nothing is excluded: multipart uploads (tracks, grid files, photos) are fuzzed too, shallowly
(random bytes are refused by the readers), since their refusals must be documented answers as
well. An operation with nothing that can be made invalid (no parameters, no body; a path string
that takes any text) has no negative cases. Bounded: a fixed number of examples per operation and mode (hypothesis, derandomised so
that a run is repeatable), about half a minute per backend and role.
"""

from __future__ import annotations

import io

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import get_client
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from utils.factories import add_users, auth
from utils.places import inside
from utils.tracks import crossing, gpx

EXAMPLES = 5  # per operation and generation mode
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (30, 120, 60)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def seeded(client, sessions) -> dict[str, list]:
    """Real rows for the path parameters: incidents (one with a photo, one in a joint case), a
    patrol and grid codes. Returns {path parameter name: real values}."""
    add_users(sessions, "admin", "member", "officer-lj", "officer-hp")
    member, officer = auth(client, "member"), auth(client, "officer-lj")
    incidents = []
    for category, grid in (("rubbish", "LJ-GQ-03"), ("cutting", "LJ-GQ-05")):
        lon, lat = inside(grid)
        body = {"category": category, "lon": lon, "lat": lat, "description": "seed"}
        incidents.append(client.post("/api/v1/incidents", json=body, headers=member).json()["id"])
    photo = client.post(
        f"/api/v1/incidents/{incidents[0]}/photos", files={"file": ("p.jpg", _jpeg())}, headers=member
    ).json()["id"]
    case = client.post(
        "/api/v1/joint-cases",
        json={"title": "seed", "incident_ids": [incidents[1]], "participants": ["officer-hp"]},
        headers=officer,
    ).json()["id"]
    lon, lat, times, _ = crossing("LJ-GQ-03")
    patrol = client.post(
        "/api/v1/patrols", files={"file": ("walk.gpx", gpx(lon, lat, times))}, headers=member
    )
    return {
        "incident_id": incidents,
        "photo_id": [photo],
        "case_id": [case],
        "patrol_id": [patrol.json()["id"]],
        "code": ["LJ-GQ-03", "HP-SK-02"],
    }


def operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    found = [result.ok() for result in schema.get_all_operations()]
    return sorted(found, key=lambda op: op.method.upper() == "DELETE")


def can_be_invalid(operation) -> bool:
    """Whether a negative case exists: a body, or a parameter that is more than any text."""
    free_text = {"type": "string"}
    return bool(list(operation.body)) or any(
        {k: v for k, v in (p.definition.get("schema") or {}).items() if k not in ("title", "description")}
        != free_text
        for p in operation.iter_parameters()
    )


def strategy(operation, mode: GenerationMode, real: dict[str, list]):
    """Cases of ``operation``; with path parameters, half of them name real rows."""
    generated = operation.as_strategy(generation_mode=mode)
    names = [p.name for p in operation.path_parameters]
    if not names or not all(n in real for n in names):
        return generated
    on_rows = st.fixed_dictionaries({n: st.sampled_from(real[n]) for n in names}).flatmap(
        lambda values: operation.as_strategy(generation_mode=mode, path_parameters=values)
    )
    return st.one_of(on_rows, generated)


@pytest.mark.parametrize("role", ["admin", "member"])
def test_every_answer_to_generated_requests_is_documented(app, client, seeded, role):
    headers = auth(client, role)
    asgi_client = get_client(app)  # one in-process client for the run, not one per request
    failures = []
    ops = operations(app)
    assert len(ops) >= 30
    for operation in ops:
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if can_be_invalid(operation) else [])
        for mode in modes:

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
            )
            @given(case=strategy(operation, mode, seeded))
            def run(case):
                case.call_and_validate(session=asgi_client, headers=headers, checks=CHECKS)

            try:
                run()
            except Exception as exc:  # noqa: BLE001 - collected, all reported at the end
                failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
