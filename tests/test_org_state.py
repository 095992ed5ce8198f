"""What is cached per organization (types, roles, limits, user links) follows every change on
the very next request -- in the process that made it and in any other -- and never crosses
organizations."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.config import Settings
from app.graphql.app import create_app
from app.platform.auth import TokenVerifier, mint_dev_token
from app.platform.errors import Unauthenticated
from app.platform.permissions import ReadMask
from app.runtime import build_runtime
from tests.conftest import DEV_SECRET

ME = "{ me { teacher { id name hourlyRate } } }"


@pytest.fixture
async def two_processes(store, clock, world):
    """Two API processes (each its own runtime and caches) on one store."""
    clients = []
    for _ in range(2):
        runtime = await build_runtime(
            Settings(auth_dev_secret=DEV_SECRET), store=store, clock=clock
        )
        transport = httpx.ASGITransport(app=create_app(runtime))
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://api"))
    yield clients
    for client in clients:
        await client.aclose()


async def _gql(client, query, *, user="u-t1", role="teacher", org="org-a", variables=None):
    token = mint_dev_token(DEV_SECRET, org=org, user=user, roles=[role])
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def test_a_role_change_applies_to_the_next_request_in_every_process(two_processes):
    first, second = two_processes
    assert (await _gql(second, ME))["me"]["teacher"]["hourlyRate"] == 40  # cached in second
    await _gql(
        first,
        "mutation { updateOrganizationSettings(input: {hideHourlyRateFromTeachers: true}) "
        "{ hideHourlyRateFromTeachers } }",
        user="u-admin",
        role="admin",
    )
    assert (await _gql(second, ME))["me"]["teacher"]["hourlyRate"] is None
    assert (await _gql(first, ME))["me"]["teacher"]["hourlyRate"] is None


async def test_a_link_change_applies_to_the_next_request_in_every_process(two_processes, world):
    first, second = two_processes
    assert (await _gql(second, ME, user="u-new"))["me"]["teacher"] is None  # cached: no link
    link = "mutation($id: ID!, $u: String) { updateTeacher(id: $id, input: {userId: $u}) { id } }"
    t2 = world.ids["T2"]
    await _gql(first, link, user="u-admin", role="admin", variables={"id": t2, "u": "u-new"})
    assert (await _gql(second, ME, user="u-new"))["me"]["teacher"]["id"] == t2
    await _gql(first, link, user="u-admin", role="admin", variables={"id": t2, "u": None})
    assert (await _gql(second, ME, user="u-new"))["me"]["teacher"] is None
    # The teacher lost the sessions of their former profile at once too.
    sessions = "{ sessions { totalCount } }"
    assert (await _gql(second, sessions, user="u-new"))["sessions"]["totalCount"] == 0


async def test_cached_roles_never_cross_organizations(two_processes, world, other_world):
    (client, _) = two_processes
    # org-b customises its teacher role: its teachers see no names of students.
    roles = other_world.service.roles
    (teacher,) = await roles.for_names("org-b", ["teacher"])
    masks = {**teacher.read_masks, "student": ReadMask(mode="whitelist", fields=("grade",))}
    await roles.replace("org-b", teacher.model_copy(update={"read_masks": masks}))
    students = "{ students { edges { node { name grade } } } }"
    in_a = await _gql(client, students, org="org-a")
    in_b = await _gql(client, students, org="org-b")
    assert {e["node"]["name"] for e in in_a["students"]["edges"]} == {"S1"}
    assert {e["node"]["name"] for e in in_b["students"]["edges"]} == {None}
    # The same user id in both organizations is linked to each organization's own teacher.
    a = (await _gql(client, ME, org="org-a"))["me"]["teacher"]["id"]
    b = (await _gql(client, ME, org="org-b"))["me"]["teacher"]["id"]
    assert (a, b) == (world.ids["T1"], other_world.ids["T1"]) and a != b


async def test_a_remembered_token_still_expires():
    verifier = TokenVerifier(dev_secret=DEV_SECRET, leeway_seconds=0)
    token = mint_dev_token(DEV_SECRET, org="o", user="u", roles=["admin"], ttl_seconds=1)
    assert (await verifier.verify(token)).user_id == "u"
    assert (await verifier.verify(token)).user_id == "u"  # remembered
    await asyncio.sleep(1.2)
    with pytest.raises(Unauthenticated):
        await verifier.verify(token)
