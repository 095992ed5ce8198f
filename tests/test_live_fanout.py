"""How changes reach subscribers: from another process on the same Redis, to many subscribers
at once (each event exactly once), numbered per organization, only once the operation that
made them committed, replayed after a reconnect; and the job and message subscriptions."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from app.platform.undo import undo_on_failure
from tests.live_client import LiveClient

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = "subscription($after: Int) { sessionChanged(after: $after) { sequence kind id session { id teacherNotes } } }"
NOTE = 'mutation($id: ID!, $n: String = "n") { updateSession(id: $id, input: {teacherNotes: $n}) { id } }'
PAY = (
    'mutation($p: ID!) { recordPaymentSucceeded(paymentId: $p, providerReference: "r") { status } }'
)

# A second process: it shares nothing with the API process but Redis, and announces changes
# the way the worker does (``Changes`` with a ``RedisChangeBus`` publisher).
PUBLISHER = """
import asyncio, sys
from redis.asyncio import Redis
from app.platform.changes import Changes
from app.platform.live import RedisChangeBus

async def main(url, org, *ids):
    redis = Redis.from_url(url)
    changes = Changes()
    changes.publisher = RedisChangeBus(redis)
    for id in ids:
        await changes.record(org, "session", id, "completed")
    await redis.aclose()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_changes_published_by_another_process_reach_subscribers(live_server, redis_url):
    async with live_server() as api:
        ids = api.world.ids
        async with (
            LiveClient.connect(api.ws_url, api.token_for("guardian")) as g1,
            LiveClient.connect(api.ws_url, api.token_for("admin")) as admin,
        ):
            await g1.subscribe(SESSIONS)
            await admin.subscribe(SESSIONS)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                PUBLISHER,
                redis_url,
                api.world.org,
                ids["X2"],  # G2's session
                ids["X1"],
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            assert await asyncio.wait_for(process.wait(), 60) == 0
            x2, x1 = await admin.events("sessionChanged", 2)
            (mine,) = await g1.events("sessionChanged", 1)
            await g1.nothing()
    assert [x2["id"], x1["id"]] == [ids["X2"], ids["X1"]]
    assert x1["sequence"] == x2["sequence"] + 1
    # read in the API process, as each subscriber
    assert mine == {**x1, "session": {"id": ids["X1"], "teacherNotes": None}}
    assert x1["kind"] == "COMPLETED" and x1["session"]["teacherNotes"] == "teacher-only note"


async def test_a_hundred_subscribers_each_receive_each_event_once(live_server):
    async with live_server() as api:
        x1 = api.world.ids["X1"]
        async with asyncio.TaskGroup() as group:
            connecting = [
                group.create_task(_subscriber(api, n)) for n in range(100)
            ]  # each an admin of its own
        clients = [task.result() for task in connecting]
        try:
            for n in range(5):
                await api.gql(NOTE, {"id": x1, "n": f"note {n}"}, role="teacher")
            got = await asyncio.gather(*(c.events("sessionChanged", 5, 10) for c, _ in clients))
            await asyncio.gather(*(c.nothing(0.3) for c, _ in clients))
        finally:
            for _, context in clients:
                await context.__aexit__(None, None, None)
    notes = [f"note {n}" for n in range(5)]
    first = got[0]
    assert [e["session"]["teacherNotes"] for e in first] == notes
    sequences = [e["sequence"] for e in first]
    assert sequences == sorted(set(sequences))
    for events in got:  # the same five events, once each, in order, for everyone
        assert events == first


async def _subscriber(api, n: int):
    context = LiveClient.connect(api.ws_url, api.token(f"u-admin-{n}", "admin"))
    client = await context.__aenter__()
    await client.subscribe(SESSIONS)
    return client, context


async def test_a_failed_multi_write_operation_announces_nothing(live_server):
    """Changes are published only after the outermost operation commits: the writes of an
    operation that fails are taken back and never announced, and use no sequence number."""
    async with (
        live_server() as api,
        LiveClient.connect(api.ws_url, api.token_for("admin")) as admin,
    ):
        ids = api.world.ids
        await admin.subscribe(SESSIONS)
        system = await api.world.system()
        await system.update("session", ids["X1"], {"teacherNotes": "before"})
        (before,) = await admin.events("sessionChanged", 1)
        with pytest.raises(RuntimeError):
            async with undo_on_failure():
                await system.update("session", ids["X1"], {"teacherNotes": "half"})
                async with undo_on_failure():  # an inner operation that succeeded
                    await system.update("session", ids["X2"], {"teacherNotes": "done"})
                raise RuntimeError("the third write failed")
        await admin.nothing()
        async with undo_on_failure():  # a multi-write that commits: both, in order
            await system.update("session", ids["X1"], {"teacherNotes": "one"})
            await system.update("session", ids["X2"], {"teacherNotes": "two"})
        one, two = await admin.events("sessionChanged", 2)
    assert before["sequence"] + 1 == one["sequence"] and two["sequence"] == one["sequence"] + 1
    assert (one["session"]["teacherNotes"], two["session"]["teacherNotes"]) == ("one", "two")
    assert (await system.get("session", ids["X1"])).data["teacherNotes"] == "one"


async def test_sequences_are_per_organization_and_a_reconnect_replays_what_was_missed(
    live_server, other_world
):
    async with live_server() as api:
        ids = api.world.ids
        async with LiveClient.connect(api.ws_url, api.token_for("admin")) as admin:
            await admin.subscribe(SESSIONS)
            await api.gql(NOTE, {"id": ids["X1"], "n": "a"}, role="teacher")
            (seen,) = await admin.events("sessionChanged", 1)
        # disconnected: changes happen meanwhile, in this organization and another
        other = await other_world.system()
        await other.update("session", other_world.ids["X1"], {"teacherNotes": "elsewhere"})
        await api.gql(NOTE, {"id": ids["X1"], "n": "b"}, role="teacher")
        await api.gql(NOTE, {"id": ids["X2"], "n": "c"}, role="admin")
        async with LiveClient.connect(api.ws_url, api.token_for("admin")) as admin:
            await admin.subscribe(SESSIONS, {"after": seen["sequence"]})
            missed = await admin.events("sessionChanged", 2)
            await api.gql(NOTE, {"id": ids["X1"], "n": "d"}, role="teacher")
            (live,) = await admin.events("sessionChanged", 1)
            # too far back (more than the log keeps, or a reset): refetch with a query
            await admin.subscribe(SESSIONS, {"after": live["sequence"] + 5}, id="future")
            refused = await admin.receive()
    assert [e["session"]["teacherNotes"] for e in missed] == ["b", "c"]
    sequences = [seen["sequence"], *(e["sequence"] for e in missed), live["sequence"]]
    assert sequences == list(range(seen["sequence"], seen["sequence"] + 4))  # no gap: org-a's
    assert refused["type"] == "error" and refused["id"] == "future"
    assert refused["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"


JOBS = "subscription { jobChanged { sequence kind id job { id type status } } }"
MESSAGES = "subscription { messageQueued { kind message { id kind status channel recipientId } } }"


async def test_job_changes_are_for_admins_only(live_server):
    async with (
        live_server() as api,
        LiveClient.connect(api.ws_url, api.token_for("admin")) as admin,
        LiveClient.connect(api.ws_url, api.token_for("guardian")) as g1,
        LiveClient.connect(api.ws_url, api.token_for("teacher")) as t1,
    ):
        for client in (g1, t1):
            await client.subscribe(JOBS, id="jobs")
            refused = await client.receive()
            assert (refused["type"], refused["id"]) == ("error", "jobs")
            assert refused["payload"][0]["extensions"]["code"] == "FORBIDDEN"
        await admin.subscribe(JOBS)
        booked = await api.book("guardian")  # a hold that lapses: one job
        (hold,) = await admin.events("jobChanged", 1)
        assert (hold["kind"], hold["job"]["type"]) == ("PENDING", "session.hold_lapse")
        assert hold["id"] == hold["job"]["id"]  # the key retryJob and cancelJob take
        queued = await admin.events("jobChanged", 1)
        assert queued[0]["kind"] == "QUEUED" and queued[0]["id"] == hold["id"]
        await api.gql(PAY, {"p": booked["paymentId"]})  # reminders and the start automation
        types = {e["job"]["type"] for e in await admin.events("jobChanged", 6)}
        assert {"session.reminder", "session.no_show_check"} <= types or {
            "session.reminder",
            "session.auto_start",
        } <= types
        await g1.nothing()
        await t1.nothing()


async def test_each_user_hears_only_their_own_messages(live_server):
    from app.tutoring.jobs.handlers import handlers

    async with live_server() as api:
        jobs = api.world.service.jobs
        async with (
            LiveClient.connect(api.ws_url, api.token_for("guardian")) as g1,
            LiveClient.connect(api.ws_url, api.token("u-g2", "guardian")) as g2,
            LiveClient.connect(api.ws_url, api.token_for("teacher")) as t1,
        ):
            for client in (g1, g2, t1):
                await client.subscribe(MESSAGES)
            booked = await api.book("guardian")
            await api.gql(PAY, {"p": booked["paymentId"]})
            org = api.world.org
            reminders = [
                j for j in await jobs._col.find(org, {"type": "session.reminder"}, sort=None)
            ]
            assert len(reminders) == 2  # to the guardian and to the teacher
            api.world.service.clock.now = max(j["runAt"] for j in reminders)
            for job in reminders:
                await jobs.run(org, job["key"], handlers(api.world.service))
            (to_guardian,) = await g1.events("messageQueued", 1)
            (to_teacher,) = await t1.events("messageQueued", 1)
            await g2.nothing()
            await g1.nothing()
    assert to_guardian["kind"] == "QUEUED" and to_guardian["message"]["status"] == "QUEUED"
    assert to_guardian["message"]["kind"] == to_teacher["message"]["kind"] == "session_reminder"
    assert to_guardian["message"]["recipientId"] == api.world.ids["G1"]
    assert to_teacher["message"]["recipientId"] == api.world.ids["T1"]
    assert to_guardian["message"]["id"] != to_teacher["message"]["id"]
