"""Regression tests from the security review of the engine, using custom roles an
organization could define (permissions are data)."""

from __future__ import annotations

import pytest

from app.platform.errors import AppError, BadUserInput, ErrorCode
from app.platform.permissions import (
    FieldMatch,
    Policy,
    ReadMask,
    RoleDefinition,
    ScopeAll,
    WriteMask,
)


async def _role(world, name, **kw):
    await world.service.roles.install(world.org, RoleDefinition(name=name, **kw))


async def test_scope_rule_on_a_nested_or_unknown_field_matches_nothing(world):
    """The filter would read data.billingAddress.country while a predicate cannot; such a rule
    must not let a second role's predicate widen masks or writes."""
    await _role(
        world,
        "names",
        policies=(Policy(resource="guardian", action="*", effect="allow"),),
        scopes={"guardian": (ScopeAll(),)},
        readMasks={"guardian": ReadMask(mode="whitelist", fields=("name",))},
    )
    await _role(
        world,
        "eudesk",
        policies=(Policy(resource="guardian", action="*", effect="allow"),),
        scopes={
            "guardian": (FieldMatch(field="billingAddress.country", operator="ne", value="US"),)
        },
        readMasks={"guardian": ReadMask(mode="blacklist")},
        writeMasks={"guardian": WriteMask(create="*", update="*")},
    )
    both = await world.as_user("u-x", "names", "eudesk")
    g1 = await both.get("guardian", world.ids["G1"])
    assert set(g1.data) == {"name"}
    with pytest.raises(AppError) as err:
        await both.update("guardian", world.ids["G1"], {"userId": "u-x"})
    assert err.value.code is ErrorCode.FORBIDDEN
    eu = await world.as_user("u-eu", "eudesk")
    assert (await eu.query("guardian")).items == []
    with pytest.raises(AppError):
        await eu.create("guardian", {"name": "Z", "phone": "123"})


async def test_booleans_are_not_numbers_in_scope_predicates(world):
    await _role(
        world,
        "reporters",
        policies=(Policy(resource="session", action="*", effect="allow"),),
        scopes={"session": (FieldMatch(field="reportSubmitted", operator="eq", value=0),)},
        readMasks={"session": ReadMask(mode="blacklist")},
        writeMasks={"session": WriteMask(update=("teacherNotes",))},
    )
    r = await world.as_user("u-r", "reporters")
    # reportSubmitted is False on X1; MongoDB does not match False against 0, nor may we.
    assert (await r.query("session")).items == []
    with pytest.raises(AppError) as err:
        await r.update("session", world.ids["X1"], {"teacherNotes": "x"})
    assert err.value.code is ErrorCode.NOT_FOUND


async def test_exists_rule_with_unlinked_actor_matches_nothing(world):
    await _role(
        world,
        "linked",
        policies=(Policy(resource="student", action="*", effect="allow"),),
        scopes={
            "student": (FieldMatch(field="notes", operator="exists", valuePath="actor.teacherId"),)
        },
        readMasks={"student": ReadMask(mode="blacklist")},
    )
    unlinked = await world.as_user("u-none", "linked")
    assert (await unlinked.query("student")).items == []


async def test_validation_errors_never_quote_fields_the_caller_did_not_send(world, service):
    # An organization tightens a type after data exists: guardianNotes may now be short only.
    types = service.store.collection("entity_types")
    await types.update_one(
        world.org, {"slug": "session"}, {"$set": {"schema.properties.guardianNotes.maxLength": 3}}
    )
    t1 = await world.as_role("teacher")
    with pytest.raises(BadUserInput) as err:
        await t1.update("session", world.ids["X1"], {"teacherNotes": "fine"})
    assert err.value.fields == {}
    assert "guardian note" not in err.value.message and "guardianNotes" not in err.value.message
    admin = await world.as_role("admin")
    with pytest.raises(BadUserInput) as err:
        await admin.update("session", world.ids["X1"], {"guardianNotes": "too long"})
    assert set(err.value.fields) == {"guardianNotes"}


async def test_links_typed_by_a_caller_must_be_in_their_scope(world):
    """Same answer for an absent id and an id the caller cannot read: no existence oracle."""
    await _role(
        world,
        "enroller",
        policies=(
            Policy(resource="student", action="*", effect="allow"),
            Policy(resource="guardian", action="read", effect="allow"),
        ),
        scopes={
            "student": (ScopeAll(),),
            "guardian": (FieldMatch(field="id", operator="eq", value="never"),),
        },
        readMasks={"student": ReadMask(mode="blacklist"), "guardian": ReadMask(mode="blacklist")},
        writeMasks={"student": WriteMask(create="*", update="*")},
    )
    e = await world.as_user("u-e", "enroller")
    answers = []
    for guardian in (world.ids["G1"], "no-such-id"):
        with pytest.raises(BadUserInput) as err:
            await e.create("student", {"name": "N", "guardianId": guardian})
        answers.append((err.value.message, err.value.fields))
    assert (
        answers[0]
        == answers[1]
        == ("Invalid references on student.", {"guardianId": "no guardian with this id"})
    )


async def test_a_role_cannot_write_what_it_cannot_read(world):
    await _role(
        world,
        "blindwriter",
        policies=(Policy(resource="teacher", action="*", effect="allow"),),
        scopes={"teacher": (ScopeAll(),)},
        readMasks={"teacher": ReadMask(mode="whitelist", fields=("name",))},
        writeMasks={"teacher": WriteMask(update="*")},
    )
    b = await world.as_user("u-b", "blindwriter")
    await b.update("teacher", world.ids["T1"], {"name": "ok"})
    with pytest.raises(AppError) as err:
        await b.update("teacher", world.ids["T1"], {"hourlyRate": 40})
    assert err.value.code is ErrorCode.FORBIDDEN


async def test_a_directory_is_not_a_time_zone(world):
    t1 = await world.as_role("teacher")
    with pytest.raises(BadUserInput) as err:
        await t1.update("teacher", world.ids["T1"], {"timezone": "America"})
    assert set(err.value.fields) == {"timezone"}
