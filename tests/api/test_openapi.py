"""The OpenAPI document tells the truth: each operation lists the problem+json errors it can give
(from its access rule, its path and its body) and the content types it really sends, also for
routes the document's post-processing has never seen. The fuzzer (test_fuzz.py) holds the
service to it."""

from fastapi import APIRouter
from fastapi.testclient import TestClient

from api.deps import AdminOnly, Public, SignedIn

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def operation(doc, method: str, path: str) -> dict:
    return doc["paths"][path][method]


def errors(op) -> list[int]:
    return sorted(int(code) for code in op["responses"] if code[0] in "45")


def test_every_operation_documents_its_errors_as_problem_json(client):
    doc = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert set(doc["components"]["schemas"]["Problem"]["required"]) == {"type", "title", "status", "detail"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            codes = errors(op)
            assert {401, 422, 503} <= set(codes), (method, path)
            names_rows = "{" in path or ("requestBody" in op and 409 in codes)  # writes by signed-in users
            assert names_rows == (404 in codes), (method, path)
            for code in codes:
                assert op["responses"][str(code)]["content"] == PROBLEM, (method, path, code)


def test_errors_follow_access_rules_writes_and_uploads(client):
    doc = client.get("/openapi.json").json()
    assert errors(operation(doc, "get", "/api/v1/grids")) == [401, 422, 503]  # public: only a bad token
    assert errors(operation(doc, "get", "/api/v1/users")) == [401, 403, 422, 503]
    assert errors(operation(doc, "post", "/api/v1/incidents/{incident_id}/transitions")) == [
        400, 401, 403, 404, 409, 422, 503,
    ]  # fmt: skip
    assert errors(operation(doc, "post", "/api/v1/patrols")) == [400, 401, 403, 404, 409, 413, 415, 422, 503]
    token = operation(doc, "post", "/api/v1/auth/token")
    assert 429 in errors(token) and "Retry-After" in token["responses"]["429"]["headers"]


def test_success_content_types_are_the_ones_sent(client):
    doc = client.get("/openapi.json").json()

    def media(method, path, status="200"):
        return set(operation(doc, method, path)["responses"][status]["content"])

    assert media("get", "/api/v1/grids") == {"application/geo+json"}
    assert media("get", "/api/v1/grids/{code}") == {"application/geo+json"}
    assert media("get", "/api/v1/incidents") == {"application/geo+json", "text/csv"}
    assert media("get", "/api/v1/patrols/{patrol_id}/fixes") == {"text/csv", "application/geo+json"}
    assert media("get", "/api/v1/incidents/{incident_id}/photos/{photo_id}") == {
        "image/jpeg", "image/png", "image/webp",
    }  # fmt: skip
    assert media("get", "/api/v1/health") == {"application/json"}
    collection = operation(doc, "get", "/api/v1/patrols")["responses"]["200"]["content"][
        "application/geo+json"
    ]
    assert collection["schema"] == {"$ref": "#/components/schemas/FeatureCollection"}


def test_a_route_added_later_is_documented_by_the_same_rules(app):
    later = APIRouter(prefix="/api/v1/later")

    @later.get("/{thing_id}")
    def read(thing_id: int, _: SignedIn):
        return {}

    @later.delete("/{thing_id}", status_code=204)
    def remove(thing_id: int, _: AdminOnly):
        return None

    @later.get("")
    def listing(_: Public):
        return []

    with TestClient(app) as client:
        assert "/api/v1/later" not in client.get("/openapi.json").json()["paths"]
        app.include_router(later)
        doc = client.get("/openapi.json").json()
    assert errors(operation(doc, "get", "/api/v1/later/{thing_id}")) == [401, 403, 404, 422, 503]
    assert errors(operation(doc, "delete", "/api/v1/later/{thing_id}")) == [401, 403, 404, 409, 422, 503]
    assert errors(operation(doc, "get", "/api/v1/later")) == [401, 422, 503]
