"""What a live connection may do, over real websockets: who may connect (4401), how long
(the token's expiry), how many connections and subscriptions, what happens to a subscriber
that cannot keep up (4413), the same document limits as queries, and which subprotocol the
websocket speaks."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect

from app.platform.auth import mint_dev_token
from app.platform.changes import Change
from tests.conftest import DEV_SECRET
from tests.live_client import PROTOCOL, Closed, LiveClient

NOTES = "subscription { sessionChanged { sequence kind id session { teacherNotes } } }"
NOTE = 'mutation($id: ID!, $n: String = "n") { updateSession(id: $id, input: {teacherNotes: $n}) { id } }'


def _code(errors: list[dict]) -> str:
    return errors[0]["extensions"]["code"]


@pytest.mark.parametrize(
    "payload",
    [
        {},  # no token
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer " + mint_dev_token("another-secret-" * 3, org="org-a",
                                                     user="u-g1", roles=["guardian"])},
        {"Authorization": "Bearer " + mint_dev_token(DEV_SECRET, org="org-a", user="u-g1",
                                                     roles=["guardian"], ttl_seconds=-120)},
    ],
    ids=["missing", "garbage", "not-bearer", "bad-signature", "expired"],
)  # fmt: skip
async def test_a_missing_or_bad_token_closes_with_4401(live_server, payload):
    async with (
        live_server() as api,
        LiveClient.connect(api.ws_url, payload=payload, ack=False) as client,
    ):
        closed = await client.closed()
    assert closed.code == 4401
    assert "Unauthorized" in closed.reason


async def test_the_socket_closes_with_4401_when_the_token_expires(live_server):
    async with live_server() as api:
        token = api.token("u-g1", "guardian")
        short = mint_dev_token(
            DEV_SECRET, org=api.world.org, user="u-g1", roles=["guardian"], ttl_seconds=2
        )
        async with (
            LiveClient.connect(api.ws_url, short) as expiring,
            LiveClient.connect(api.ws_url, token) as fresh,
        ):
            await expiring.subscribe(NOTES)
            await fresh.subscribe(NOTES)
            await api.gql(NOTE, {"id": api.world.ids["X1"]}, role="teacher")
            await expiring.next()  # works until its token expires
            await fresh.next()
            closed = await expiring.closed(seconds=10)
            assert (closed.code, "expired" in closed.reason) == (4401, True)
            # the connection with a valid token carries on
            await api.gql(NOTE, {"id": api.world.ids["X1"], "n": "m"}, role="teacher")
            assert (await fresh.next())["sessionChanged"]["kind"] == "UPDATED"


async def test_a_subscribe_before_connection_ack_closes_with_4401(live_server):
    async with live_server() as api, connect(api.ws_url, subprotocols=[PROTOCOL]) as ws:
        client = LiveClient(ws)
        await client.send({"id": "1", "type": "subscribe", "payload": {"query": NOTES}})
        closed = await client.closed()
    assert closed.code == 4401


@pytest.mark.parametrize("subprotocols", [None, ["graphql-ws"], ["chat"]])
async def test_the_websocket_speaks_only_graphql_transport_ws(live_server, subprotocols):
    """An upgrade on /graphql is never answered with the GraphiQL page: without the
    graphql-transport-ws subprotocol the socket is closed at once with 4406."""
    async with live_server() as api:
        async with connect(api.ws_url, subprotocols=subprotocols, open_timeout=5) as ws:
            client = LiveClient(ws)
            closed = await client.closed()
        assert (closed.code, closed.reason) == (4406, "Subprotocol not acceptable")
        async with connect(api.ws_url, subprotocols=[PROTOCOL]) as ws:
            assert ws.subprotocol == PROTOCOL


async def test_subscriptions_per_connection_are_bounded(live_server):
    async with (
        live_server(live_max_subscriptions_per_connection=2) as api,
        LiveClient.connect(api.ws_url, api.token_for("guardian")) as g1,
    ):
        await g1.subscribe(NOTES, id="a")
        await g1.subscribe(NOTES, id="b")
        await g1.subscribe(NOTES, id="c")
        refused = await g1.receive()
        assert (refused["type"], refused["id"]) == ("error", "c")
        assert _code(refused["payload"]) == "RATE_LIMITED"
        assert "At most 2 subscriptions" in refused["payload"][0]["message"]
        # the first two run; completing one makes room for another
        await api.gql(NOTE, {"id": api.world.ids["X1"]}, role="teacher")
        got = {(await g1.receive())["id"] for _ in range(2)}
        assert got == {"a", "b"}
        await g1.send({"id": "a", "type": "complete"})
        await g1.subscribe(NOTES, id="d")
        await api.gql(NOTE, {"id": api.world.ids["X1"], "n": "m"}, role="teacher")
        got = {(await g1.receive())["id"] for _ in range(2)}
        assert got == {"b", "d"}
        await g1.nothing()


async def test_connections_per_user_are_bounded(live_server):
    async with live_server(live_max_connections_per_user=2) as api:
        token = api.token_for("guardian")
        async with (
            LiveClient.connect(api.ws_url, token),
            LiveClient.connect(api.ws_url, token) as second,
        ):
            async with LiveClient.connect(api.ws_url, token, ack=False) as third:
                closed = await third.closed()
            assert closed.code == 4429
            assert "At most 2 live connections per user" in closed.reason
            # another user is not affected
            async with LiveClient.connect(api.ws_url, api.token_for("teacher")):
                pass
            await second.ws.close()
        # closing a connection gives its place back
        await asyncio.sleep(0.2)
        async with LiveClient.connect(api.ws_url, token), LiveClient.connect(api.ws_url, token):
            pass


async def test_a_slow_consumer_is_dropped_with_4413(live_server):
    """More events waiting for one connection than LIVE_MAX_PENDING_EVENTS (here a burst of
    changes faster than they can be read and sent): the server drops the connection with
    4413 rather than buffering without bound; the client reconnects and catches up."""
    async with (
        live_server(live_max_pending_events=3) as api,
        LiveClient.connect(api.ws_url, api.token_for("guardian")) as g1,
    ):
        await g1.subscribe(NOTES)
        x1, org = api.world.ids["X1"], api.world.org
        burst = [Change(org, "session", x1, "updated") for _ in range(200)]
        await api.runtime.hub.bus.publish(burst)
        received = 0
        with pytest.raises(Closed) as closed:
            while True:
                message = await g1.receive(seconds=10)
                assert message["type"] == "next", message
                received += 1
        assert closed.value.code == 4413
        assert "Slow consumer" in closed.value.reason
        assert received < len(burst)
        # the server is fine: a new connection works
        async with LiveClient.connect(api.ws_url, api.token_for("guardian")) as again:
            await again.subscribe(NOTES)
            await api.gql(NOTE, {"id": x1}, role="teacher")
            assert (await again.next())["sessionChanged"]["id"] == x1


DEEP = (  # 16 levels of fields, the limit is 12
    "subscription { sessionChanged { session { student { guardian { students { edges { node {"
    " guardian { students { edges { node { guardian { students { edges { node { name"
    + " }" * 15
    + " }"
)
COSTLY = """subscription { sessionChanged { session { student { guardian {
  students(first: 100) { edges { node { sessions(first: 100) { edges { node {
    student { sessions(first: 100) { edges { node { id } } } } } } } } } } } } } } }"""


@pytest.mark.parametrize("document", [DEEP, COSTLY], ids=["too-deep", "too-costly"])
async def test_subscription_documents_have_the_limits_of_queries(live_server, document):
    async with (
        live_server() as api,
        LiveClient.connect(api.ws_url, api.token_for("admin")) as admin,
    ):
        await admin.subscribe(document, id="big")
        refused = await admin.receive()
        assert (refused["type"], refused["id"]) == ("error", "big")
        assert _code(refused["payload"]) == "QUERY_TOO_COMPLEX", refused
        # the connection stays usable
        await admin.subscribe(NOTES, id="small")
        await api.gql(NOTE, {"id": api.world.ids["X1"]}, role="teacher")
        assert (await admin.next())["sessionChanged"]["kind"] == "UPDATED"


async def test_queries_and_mutations_are_not_run_over_the_websocket(live_server):
    async with (
        live_server() as api,
        LiveClient.connect(api.ws_url, api.token_for("admin")) as admin,
    ):
        await admin.subscribe("{ me { userId } }", id="q")
        message = await admin.receive()
        assert (message["type"], message["id"]) == ("error", "q")


async def test_graphiql_runs_subscriptions_over_the_same_websocket(live_server):
    """The page hands GraphiQL a websocket URL on /graphql; GraphiQL's bundled graphql-ws
    client sends the Headers tab as the connection_init payload, which is what the server
    authenticates (as a browser would, here)."""
    async with live_server() as api:
        page = await api.client.get(f"{api.base_url}/graphql", headers={"Accept": "text/html"})
        assert 'location.host + "/graphql"' in page.text and "subscriptionUrl" in page.text
        bundle = await api.client.get(f"{api.base_url}/static/graphiql/graphiql.min.js")
        assert "GRAPHQL_TRANSPORT_WS_PROTOCOL = 'graphql-transport-ws'" in bundle.text
        # the toolkit's websocket fetcher: the headers become the connection parameters
        assert (
            "options.wsConnectionParams), fetcherOpts == null ? void 0 : fetcherOpts.headers"
            in (bundle.text)
        )
        headers = {"Authorization": f"Bearer {api.token_for('admin')}"}
        async with LiveClient.connect(api.ws_url, payload=headers) as admin:
            await admin.subscribe(NOTES)
            await api.gql(NOTE, {"id": api.world.ids["X1"]}, role="teacher")
            assert (await admin.next())["sessionChanged"]["kind"] == "UPDATED"
