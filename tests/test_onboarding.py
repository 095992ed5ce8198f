"""A new organization onboarded over real HTTP: its admin installs the pack, then runs it."""

from __future__ import annotations

from app.platform.auth import mint_dev_token
from tests.booking_world import WED_10_BERLIN, WEEKDAYS
from tests.conftest import DEV_SECRET

ORG = "acme"


def _token(user: str, *roles: str, org: str = ORG) -> str:
    return mint_dev_token(DEV_SECRET, org=org, user=user, roles=list(roles))


async def _ok(api, query: str, variables: dict | None = None, *, token: str) -> dict:
    body = await api.gql(query, variables, token=token)
    assert "errors" not in body, body
    return body["data"]


async def test_a_fresh_organizations_admin_installs_the_pack_and_books(api):
    admin = _token("acme-admin", "admin")
    # Before the pack there are no types and no roles; only the bootstrap policy applies.
    body = await api.gql("{ entityTypes { slug } }", token=admin)
    assert body["data"]["entityTypes"] == []
    teacher_first = await api.gql(
        'mutation { installPack(slug: "tutoring") { slug } }', token=_token("t", "teacher")
    )
    assert [e["extensions"]["code"] for e in teacher_first["errors"]] == ["FORBIDDEN"]

    data = await _ok(api, 'mutation { installPack(slug: "tutoring") { slug } }', token=admin)
    assert {t["slug"] for t in data["installPack"]} == {
        "teacher", "student", "guardian", "session", "payment", "entitlement",
    }  # fmt: skip
    # Idempotent, and from now on the installed admin role decides.
    await _ok(api, 'mutation { installPack(slug: "tutoring") { slug } }', token=admin)

    teacher = (await _ok(api, """mutation($a: [AvailabilityWindowInput!]) {
        createTeacher(input: {name: "Ada", email: "ada@example.com", userId: "acme-ada",
                              availability: $a, timezone: "Europe/Berlin", subjects: ["math"]})
        { id } }""", {"a": WEEKDAYS}, token=admin))["createTeacher"]["id"]  # fmt: skip
    guardian = (await _ok(api, """mutation {
        createGuardian(input: {name: "Grace", phone: "+1 555 0100", userId: "acme-grace"})
        { id } }""", token=admin))["createGuardian"]["id"]  # fmt: skip
    student = (await _ok(api, """mutation($g: ID!) {
        createStudent(input: {name: "Sam", grade: "7", guardianId: $g}) { id } }""",
        {"g": guardian}, token=admin))["createStudent"]["id"]  # fmt: skip
    pack = (await _ok(api, """mutation($g: ID!, $s: ID!) {
        createEntitlement(input: {guardianId: $g, studentId: $s, totalCredits: 4}) { id } }""",
        {"g": guardian, "s": student}, token=admin))["createEntitlement"]["id"]  # fmt: skip

    parent = _token("acme-grace", "guardian")
    booked = await _ok(api, """mutation($t: ID!, $s: ID!, $at: DateTime!, $e: ID) {
        bookSession(input: {teacherId: $t, studentId: $s, startTime: $at,
                            durationMinutes: 60, entitlementId: $e})
        { status teacher { name } student { name } } }""",
        {"t": teacher, "s": student, "at": WED_10_BERLIN.isoformat(), "e": pack},
        token=parent)  # fmt: skip
    assert booked["bookSession"] == {
        "status": "SCHEDULED", "teacher": {"name": "Ada"}, "student": {"name": "Sam"},
    }  # fmt: skip
    # The other organization of the same service saw none of it.
    other = await api.gql("{ sessions { totalCount } }", role="admin")
    assert other["data"]["sessions"]["totalCount"] == 2


async def test_the_bootstrap_policy_covers_only_an_organization_without_packs(api):
    # org-a has the pack: a token claiming admin there is judged by org-a's own roles,
    # which an organization may change; the bootstrap policy no longer applies.
    from app.platform.permissions import Policy

    roles = api.world.service.roles
    (admin_role,) = await roles.for_names(api.world.org, ["admin"])
    denied = admin_role.model_copy(
        update={
            "policies": (*admin_role.policies, Policy(resource="pack", action="*", effect="deny"))
        }
    )
    await roles.replace(api.world.org, denied)
    body = await api.gql('mutation { installPack(slug: "tutoring") { slug } }', role="admin")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
