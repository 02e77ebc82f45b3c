"""The joint case the evidence tests package (see ``utils.evidence.make_case``), and one package
of it downloaded per backend for the tests that only read one."""

from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from utils.evidence import Case, make_case, reset_database

from patrol.db import make_session_factory


@pytest.fixture
def case(client, sessions) -> Case:
    return make_case(client, sessions)


@dataclass
class Downloaded:
    case: object
    status: int
    headers: dict[str, str]
    path: Path
    detail: dict  # GET /api/v1/joint-cases/{id}
    photos: dict[str, bytes]  # "photos/<incident>-<photo>.<ext>" → as GET …/photos/{id} serves it


@pytest.fixture(scope="package")
def downloaded(backend, tmp_path_factory) -> Downloaded:
    """One package downloaded by officer-hp (Hepu) per backend, with what the API says of the
    case beside it; the content tests read it (the database is reset by the next test)."""
    from api.app import create_app

    _, settings, engine = backend
    reset_database(engine)
    with TestClient(create_app(settings=settings, engine=engine)) as client:
        case = make_case(client, make_session_factory(engine))
        headers = case.headers["officer-hp"]
        response = client.get(f"/api/v1/joint-cases/{case.id}/package", headers=headers)
        detail = client.get(f"/api/v1/joint-cases/{case.id}", headers=headers).json()
        photos = {}
        for key, photo_id in case.photos.items():
            incident = int(key.split("-")[0])
            served = client.get(f"/api/v1/incidents/{incident}/photos/{photo_id}", headers=headers)
            assert served.status_code == 200
            suffix = {"image/jpeg": ".jpg", "image/png": ".png"}[served.headers["content-type"]]
            photos[f"photos/{key}{suffix}"] = served.content
    path = tmp_path_factory.mktemp("package") / "package.zip"
    path.write_bytes(response.content)
    return Downloaded(case, response.status_code, dict(response.headers), path, detail, photos)
