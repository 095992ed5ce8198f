"""Authentication, error codes, limits and the transport's own pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from app.graphql.schema import export_sdl
from tests.conftest import DEV_SECRET

UNAUTH = {
    "errors": [
        {
            "message": "The bearer token is missing, invalid or expired.",
            "extensions": {"code": "UNAUTHENTICATED"},
        }
    ]
}


def _expired() -> str:
    past = datetime.now(UTC) - timedelta(hours=1)
    return jwt.encode(
        {"sub": "u-admin", "org_id": "org-a", "roles": ["admin"], "exp": past}, DEV_SECRET
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not.a.jwt"},
        {
            "Authorization": f"Bearer {jwt.encode({'sub': 'u', 'org_id': 'o', 'roles': []}, DEV_SECRET)}"
        },
        {"Authorization": f"Bearer {_expired()}"},
    ],
)
async def test_missing_or_bad_tokens_are_401_with_nothing_else(api, headers):
    response = await api.client.post(
        f"{api.base_url}/graphql", json={"query": "{ me { userId } }"}, headers=headers
    )
    assert response.status_code == 401
    assert response.json() == UNAUTH


def _codes(body):
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def test_unknown_fields_and_bad_arguments_are_bad_user_input(api):
    assert _codes(await api.gql("{ teachers { edges { node { salary } } } }")) == ["BAD_USER_INPUT"]
    body = await api.gql(
        'mutation { createTeacher(input: {name: "A", email: "a@example.com", salary: 1}) { id } }'
    )
    assert _codes(body) == ["BAD_USER_INPUT"]
    body = await api.gql('{ sessions(filter: {startsBefore: "yesterday"}) { totalCount } }')
    assert _codes(body) == ["BAD_USER_INPUT"]


async def test_validation_errors_name_the_fields(api):
    body = await api.gql(
        'mutation { createTeacher(input: {name: "", email: "nope", timezone: "Mars/Base"}) { id } }'
    )
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert set(error["extensions"]["fields"]) == {"name", "email", "timezone"}


async def test_filtering_or_ordering_by_a_hidden_field_is_forbidden(api):
    body = await api.gql(
        "query($g: ID!) { sessions(filter: {guardianId: $g}) { totalCount } }",
        {"g": api.world.ids["G1"]},
        role="teacher",
    )
    assert _codes(body) == ["FORBIDDEN"]
    assert "guardianId" in body["errors"][0]["message"]
    body = await api.gql("{ teachers(orderBy: [{field: EMAIL}]) { totalCount } }", role="guardian")
    assert _codes(body) == ["FORBIDDEN"]


def _fields(body) -> dict:
    (error,) = body["errors"]
    fields = error["extensions"]["fields"]
    assert isinstance(fields, dict) and all(isinstance(v, str) for v in fields.values())
    return fields


async def test_extensions_fields_has_one_shape_for_every_code(api):
    """Whatever refused the input (the document's types, the entity's schema, a read mask,
    a write mask), ``fields`` maps each named field to what is wrong with it."""
    book = "mutation($input: BookSessionInput!) { bookSession(input: $input) { id } }"
    body = await api.gql(
        book,
        {"input": {"teacherId": "t", "studentId": "s", "startTime": "x", "durationMinutes": 60}},
    )
    assert _codes(body) == ["BAD_USER_INPUT"] and set(_fields(body)) == {"startTime"}
    body = await api.gql('mutation { bookSession(input: {teacherId: "t"}) { id } }')
    assert {"studentId", "startTime", "durationMinutes"} <= {
        f for e in body["errors"] for f in e["extensions"]["fields"]
    }
    body = await api.gql(
        'mutation { createTeacher(input: {name: "", email: "a@example.com"}) { id } }'
    )
    assert _codes(body) == ["BAD_USER_INPUT"] and set(_fields(body)) == {"name"}
    body = await api.gql(
        "query($g: ID!) { sessions(filter: {guardianId: $g}) { totalCount } }",
        {"g": api.world.ids["G1"]},
        role="teacher",
    )
    assert _codes(body) == ["FORBIDDEN"] and set(_fields(body)) == {"guardianId"}
    body = await api.gql(
        "mutation($id: ID!) { updateTeacher(id: $id, input: {hourlyRate: 1}) { id } }",
        {"id": api.world.ids["T1"]},
        role="teacher",
    )
    assert _codes(body) == ["FORBIDDEN"] and set(_fields(body)) == {"hourlyRate"}


async def test_query_limits_are_query_too_complex(api):
    nested = "id"
    for _ in range(4):  # 4 x (sessions > edges > node > student) = depth 16 > 12
        nested = f"sessions {{ edges {{ node {{ student {{ {nested} }} }} }} }}"
    deep = f"{{ {nested} }}"
    assert _codes(await api.gql(deep)) == ["QUERY_TOO_COMPLEX"]
    aliases = "{ " + " ".join(f"a{i}: me {{ userId }}" for i in range(30)) + " }"
    assert _codes(await api.gql(aliases)) == ["QUERY_TOO_COMPLEX"]
    tokens = "{ me { " + " ".join(["userId"] * 5000) + " } }"
    assert _codes(await api.gql(tokens)) == ["QUERY_TOO_COMPLEX"]


async def test_request_body_is_capped(api):
    response = await api.post(
        "{ me { userId } }", {"pad": "x" * 300_000}, token=api.token_for("admin")
    )
    assert response.status_code == 413
    assert _codes(response.json()) == ["QUERY_TOO_COMPLEX"]


async def test_unexpected_errors_are_internal_without_internals(api, monkeypatch, caplog):
    async def boom(*args, **kwargs):
        raise RuntimeError("secret connection string mongodb://user:pw@db")

    monkeypatch.setattr(type(api.world.service.collection), "count", boom)
    response = await api.post("{ teachers { totalCount } }", token=api.token_for("admin"))
    body = response.json()
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INTERNAL"
    assert "secret" not in response.text and "RuntimeError" not in response.text
    request_id = response.headers["X-Request-ID"]
    assert error["extensions"]["requestId"] == request_id
    assert any(request_id in r.getMessage() for r in caplog.records)


async def test_malformed_json_body_has_a_code(api):
    response = await api.client.post(
        f"{api.base_url}/graphql",
        content=b"{not json",
        headers={
            "Authorization": f"Bearer {api.token_for('admin')}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 400
    assert _codes(response.json()) == ["BAD_USER_INPUT"]


async def test_graphiql_is_served_from_our_own_assets(api):
    page = await api.client.get(f"{api.base_url}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "GraphiQL" in page.text
    assert "unpkg" not in page.text and "cdn" not in page.text.lower()
    for asset in (
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
    ):
        assert f"/static/graphiql/{asset}" in page.text
        response = await api.client.get(f"{api.base_url}/static/graphiql/{asset}")
        assert response.status_code == 200 and len(response.content) > 1000


async def test_health_probes(api):
    assert (await api.client.get(f"{api.base_url}/healthz")).json() == {"status": "ok"}
    ready = await api.client.get(f"{api.base_url}/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_schema_file_matches_the_code():
    committed = (Path(__file__).parent.parent / "schema.graphql").read_text()
    assert committed == export_sdl(), "run `tutoring export-schema > schema.graphql`"
