"""Mutations over HTTP: the same rules as the service, reported with the contract's codes."""

from __future__ import annotations


def _codes(body):
    return [e["extensions"]["code"] for e in body.get("errors", [])]


CREATE_TEACHER = """mutation($input: CreateTeacherInput!) { createTeacher(input: $input) {
  id name email hourlyRate availability { dayOfWeek startHour startMinute endHour endMinute } } }"""


async def test_admin_creates_updates_and_deletes_a_teacher(api):
    body = await api.gql(
        CREATE_TEACHER,
        {
            "input": {
                "name": "Ada",
                "email": "ada@example.com",
                "hourlyRate": 55,
                "availability": [
                    {"dayOfWeek": 1, "startHour": 9, "startMinute": 30, "endHour": 24}
                ],
            }
        },
    )
    teacher = body["data"]["createTeacher"]
    assert teacher["availability"] == [
        {"dayOfWeek": 1, "startHour": 9, "startMinute": 30, "endHour": 24, "endMinute": 0}
    ]
    updated = await api.gql(
        'mutation($id: ID!) { updateTeacher(id: $id, input: {bio: "hi", hourlyRate: null}) { bio hourlyRate } }',
        {"id": teacher["id"]},
    )
    assert updated["data"]["updateTeacher"] == {"bio": "hi", "hourlyRate": None}
    deleted = await api.gql("mutation($id: ID!) { deleteTeacher(id: $id) }", {"id": teacher["id"]})
    assert deleted["data"]["deleteTeacher"] == teacher["id"]
    again = await api.gql("query($id: ID!) { teacher(id: $id) { id } }", {"id": teacher["id"]})
    assert again["data"]["teacher"] is None


async def test_teacher_cannot_set_own_hourly_rate(api):
    body = await api.gql(
        "mutation($id: ID!) { updateTeacher(id: $id, input: {hourlyRate: 999}) { id } }",
        {"id": api.world.ids["T1"]},
        role="teacher",
    )
    assert _codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["extensions"]["fields"] == {
        "hourlyRate": "is not writable by your role"
    }
    check = await api.gql(
        "query($id: ID!) { teacher(id: $id) { hourlyRate } }", {"id": api.world.ids["T1"]}
    )
    assert check["data"]["teacher"]["hourlyRate"] == 40


async def test_out_of_scope_mutations_are_not_found(api):
    body = await api.gql(
        'mutation($id: ID!) { updateSession(id: $id, input: {teacherNotes: "x"}) { id } }',
        {"id": api.world.ids["X2"]},
        role="teacher",
    )
    assert _codes(body) == ["NOT_FOUND"]
    body = await api.gql(
        'mutation($id: ID!) { updateStudent(id: $id, input: {name: "x"}) { id } }',
        {"id": "does-not-exist"},
        role="guardian",
    )
    assert _codes(body) == ["NOT_FOUND"]


async def test_teacher_writes_notes_and_report_on_own_session(api):
    body = await api.gql(
        'mutation($id: ID!) { updateSession(id: $id, input: {teacherNotes: "prep", reportContent: "went well"}) { teacherNotes reportContent guardianNotes } }',
        {"id": api.world.ids["X1"]},
        role="teacher",
    )
    assert body["data"]["updateSession"] == {
        "teacherNotes": "prep",
        "reportContent": "went well",
        "guardianNotes": None,
    }
    body = await api.gql(
        'mutation($id: ID!) { updateSession(id: $id, input: {guardianNotes: "x"}) { id } }',
        {"id": api.world.ids["X1"]},
        role="teacher",
    )
    assert _codes(body) == ["FORBIDDEN"]


async def test_payments_and_packs_are_admin_only_and_start_where_the_business_says(api):
    ids = api.world.ids
    pay = await api.gql(
        'mutation($g: ID!) { createPayment(input: {guardianId: $g, amount: 90, currency: "EUR"}) { id status amount } }',
        {"g": ids["G1"]},
    )
    assert pay["data"]["createPayment"]["status"] == "PENDING"
    pack = await api.gql(
        "mutation($g: ID!, $s: ID!, $p: ID!) { createEntitlement(input: {guardianId: $g, studentId: $s, totalCredits: 4, paymentId: $p}) { status totalCredits remainingCredits usedCredits } }",
        {"g": ids["G1"], "s": ids["S1"], "p": pay["data"]["createPayment"]["id"]},
    )
    assert pack["data"]["createEntitlement"] == {
        "status": "ACTIVE",
        "totalCredits": 4,
        "remainingCredits": 4,
        "usedCredits": 0,
    }
    denied = await api.gql(
        "mutation($g: ID!) { createPayment(input: {guardianId: $g, amount: 1}) { id } }",
        {"g": ids["G1"]},
        role="guardian",
    )
    assert _codes(denied) == ["FORBIDDEN"]


async def test_install_pack_is_idempotent_and_admin_only(api):
    query = 'mutation { installPack(slug: "tutoring") { slug } }'
    first = await api.gql(query)
    second = await api.gql(query)
    slugs = ["teacher", "student", "guardian", "session", "payment", "entitlement"]
    assert [t["slug"] for t in first["data"]["installPack"]] == slugs
    assert second == first
    assert _codes(await api.gql(query, role="teacher")) == ["FORBIDDEN"]
    assert _codes(await api.gql('mutation { installPack(slug: "nope") { slug } }')) == ["NOT_FOUND"]


async def test_organization_settings_hide_the_rate_from_teachers(api):
    body = await api.gql(
        "mutation { updateOrganizationSettings(input: {hideHourlyRateFromTeachers: true}) { hideHourlyRateFromTeachers } }"
    )
    assert body["data"]["updateOrganizationSettings"]["hideHourlyRateFromTeachers"] is True
    me = await api.gql("{ me { teacher { name hourlyRate } } }", role="teacher")
    assert me["data"]["me"]["teacher"] == {"name": "T1", "hourlyRate": None}
    denied = await api.gql(
        "{ organizationSettings { hideHourlyRateFromTeachers } }", role="teacher"
    )
    assert _codes(denied) == ["FORBIDDEN"]


async def test_cursors_survive_inserts_and_total_count_is_in_scope(api):
    page = await api.gql(
        "{ students(first: 2, orderBy: [{field: NAME}]) { totalCount pageInfo { hasNextPage endCursor } edges { node { name } } } }"
    )
    data = page["data"]["students"]
    assert [e["node"]["name"] for e in data["edges"]] == ["S1", "S2"] and data["totalCount"] == 3
    await api.gql('mutation { createStudent(input: {name: "A-first"}) { id } }')
    rest = await api.gql(
        "query($a: String!) { students(first: 2, after: $a, orderBy: [{field: NAME}]) { pageInfo { hasNextPage } edges { node { name } } } }",
        {"a": data["pageInfo"]["endCursor"]},
    )
    assert [e["node"]["name"] for e in rest["data"]["students"]["edges"]] == ["S3"]
    guardian = await api.gql("{ students { totalCount } }", role="guardian")
    assert guardian["data"]["students"]["totalCount"] == 2


async def test_me_and_entity_types(api):
    body = await api.gql(
        "{ me { userId roles guardian { name } teacher { name } } entityTypes { slug } }",
        role="guardian",
    )
    assert body["data"]["me"] == {
        "userId": "u-g1",
        "roles": ["guardian"],
        "guardian": {"name": "G1"},
        "teacher": None,
    }
    assert len(body["data"]["entityTypes"]) == 6
