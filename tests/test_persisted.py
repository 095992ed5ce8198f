"""Persisted operations over HTTP and websockets: Apollo's automatic persisted queries (hash
alone, then with its document, then alone again; the cache in Redis) and trusted documents
(only the app's operations run for non-admin roles)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.graphql.trusted import TrustedDocuments, TrustedDocumentsError
from tests.live_client import LiveClient

ME = "query Me { me { userId roles } }"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HOME = (EXAMPLES / "guardian" / "home.graphql").read_text()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(digest: str) -> dict:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def post(api, body: dict, role: str = "guardian") -> dict:
    headers = {"Authorization": f"Bearer {api.token_for(role)}"}
    response = await api.client.post(f"{api.base_url}/graphql", json=body, headers=headers)
    return response.json()


def code(body: dict) -> str:
    return body["errors"][0]["extensions"]["code"]


async def test_automatic_persisted_queries(live_server):
    async with live_server() as api:
        digest = sha(ME)
        # 1. the hash alone, unknown: the client is told to send the document
        unknown = await post(api, {"extensions": persisted(digest)})
        assert code(unknown) == "PERSISTED_QUERY_NOT_FOUND"
        assert unknown["errors"][0]["message"] == "PersistedQueryNotFound"
        assert unknown["data"] is None
        # 2. the hash with its document: runs, and is remembered (in Redis)
        first = await post(api, {"query": ME, "extensions": persisted(digest)})
        assert first["data"]["me"] == {"userId": "u-g1", "roles": ["guardian"]}
        keys = await api.runtime.redis.keys(f"apq:*{digest}")
        assert len(keys) == 1
        # 3. the hash alone: runs the remembered document, for any user of the organization
        again = await post(api, {"extensions": persisted(digest)}, role="teacher")
        assert again["data"]["me"] == {"userId": "u-t1", "roles": ["teacher"]}
        assert "errors" not in again
        # a hash that is not the document's SHA-256 is refused, and nothing is remembered
        other = "query { me { userId } }"
        wrong = await post(api, {"query": other, "extensions": persisted(sha("something else"))})
        assert code(wrong) == "BAD_USER_INPUT"
        assert "sha256Hash" in wrong["errors"][0]["message"]
        later = await post(api, {"extensions": persisted(sha("something else"))})
        assert code(later) == "PERSISTED_QUERY_NOT_FOUND"
        malformed = await post(api, {"extensions": persisted("not-a-hash")})
        assert code(malformed) == "BAD_USER_INPUT"


async def test_a_persisted_query_survives_the_process_that_learnt_it(live_server):
    """The cache is Redis, shared by every API process: another process (here a new one on
    the same Redis) knows the hash."""
    async with live_server() as api:
        await post(api, {"query": ME, "extensions": persisted(sha(ME))})
        from app.platform.persisted import RedisDocuments

        other = RedisDocuments(api.runtime.redis, ttl_seconds=60, max_documents=10)
        assert await other.get(api.world.org, sha(ME)) == ME
        assert await other.get("another-org", sha(ME)) is None  # per organization


async def test_subscriptions_accept_persisted_queries(live_server):
    document = "subscription Notes { sessionChanged { kind id } }"
    async with (
        live_server() as api,
        LiveClient.connect(api.ws_url, api.token_for("guardian")) as g1,
    ):
        await g1.send(
            {"id": "1", "type": "subscribe", "payload": {"extensions": persisted(sha(document))}}
        )
        refused = await g1.receive()
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        await g1.subscribe(document, extensions=persisted(sha(document)), id="2")
        await g1.send(
            {"id": "3", "type": "subscribe", "payload": {"extensions": persisted(sha(document))}}
        )
        await g1.sync()
        note = 'mutation($id: ID!) { updateSession(id: $id, input: {guardianNotes: "x"}) { id } }'
        await api.gql(note, {"id": api.world.ids["X1"]}, role="guardian")
        got = sorted([(await g1.receive())["id"] for _ in range(2)])
    assert got == ["2", "3"]


TRUSTED = """
query Me { me { userId roles } }

query MySessions($first: Int = 5) {
  sessions(first: $first) { totalCount edges { node { ...SessionBits } } }
}

fragment SessionBits on Session { id status startTime }

subscription MySessionChanges { sessionChanged { kind id } }
"""


@pytest.fixture
def trusted_file(tmp_path):
    path = tmp_path / "operations.graphql"
    path.write_text(TRUSTED)
    return str(path)


async def test_trusted_documents_only(live_server, trusted_file):
    settings = {"graphql_trusted_documents": trusted_file, "graphql_trusted_documents_only": True}
    async with live_server(**settings) as api:
        # a guardian runs the app's operations: as written, re-laid out, or by hash alone
        known = await post(api, {"query": ME, "operationName": "Me"})
        assert known["data"]["me"]["userId"] == "u-g1"
        relaid = "query MySessions($first: Int = 5) {\n  sessions(first: $first) {\n    totalCount\n    edges { node { ...SessionBits } }\n  }\n}\nfragment SessionBits on Session { id\n status startTime }"
        ran = await post(api, {"query": relaid, "operationName": "MySessions"})
        assert ran["data"]["sessions"]["totalCount"] == 1
        whole = await post(api, {"extensions": persisted(sha(TRUSTED)), "operationName": "Me"})
        assert whole["data"]["me"]["userId"] == "u-g1"
        # anything else is refused, with a code and a message saying what to do
        unknown = await post(api, {"query": "{ me { userId } }"})
        assert code(unknown) == "FORBIDDEN"
        assert "trusted operations" in unknown["errors"][0]["message"]
        changed = await post(
            api, {"query": ME.replace("roles", "roles organizationId"), "operationName": "Me"}
        )
        assert code(changed) == "FORBIDDEN"
        by_hash = await post(
            api, {"query": "{ me { userId } }", "extensions": persisted(sha("{ me { userId } }"))}
        )
        assert code(by_hash) == "FORBIDDEN"
        assert code(await post(api, {"extensions": persisted(sha("{ me { userId } }"))})) == (
            "PERSISTED_QUERY_NOT_FOUND"  # an untrusted document is not remembered either
        )
        # teachers too; admins compose their own operations (GraphiQL)
        assert code(await post(api, {"query": "{ me { userId } }"}, role="teacher")) == "FORBIDDEN"
        admin = await post(api, {"query": "{ me { userId } }"}, role="admin")
        assert admin["data"]["me"]["userId"] == "u-admin"
        # and over the websocket, the same rule
        async with LiveClient.connect(api.ws_url, api.token_for("guardian")) as g1:
            await g1.subscribe("subscription { sessionChanged { id } }", id="untrusted")
            refused = await g1.receive()
            assert (refused["type"], refused["id"]) == ("error", "untrusted")
            assert refused["payload"][0]["extensions"]["code"] == "FORBIDDEN"
            await g1.subscribe(
                "subscription MySessionChanges { sessionChanged { kind id } }", id="trusted"
            )
            await api.gql(
                'mutation($id: ID!) { updateSession(id: $id, input: {teacherNotes: "x"}) { id } }',
                {"id": api.world.ids["X1"]},
                role="admin",
            )
            assert (await g1.next())["sessionChanged"]["kind"] == "UPDATED"


async def test_without_only_every_document_runs(live_server, trusted_file):
    async with live_server(graphql_trusted_documents=trusted_file) as api:
        body = await post(api, {"query": "{ me { userId } }"})
        assert body["data"]["me"]["userId"] == "u-g1"
        # the trusted documents are known by hash without being sent first
        known = await post(api, {"extensions": persisted(sha(ME))})
        assert known["data"]["me"]["userId"] == "u-g1"


def test_a_bad_trusted_documents_file_is_refused_at_start(tmp_path):
    from app.config import Settings
    from app.graphql.view import load_trusted
    from app.runtime import ConfigurationError

    broken = tmp_path / "broken.graphql"
    broken.write_text("query { me { ")
    with pytest.raises(ConfigurationError, match=r"broken\.graphql"):
        load_trusted(str(broken))
    with pytest.raises(TrustedDocumentsError, match="does not exist"):
        TrustedDocuments.load(tmp_path / "missing.graphql")
    only = Settings(graphql_trusted_documents_only=True)
    assert any("GRAPHQL_TRUSTED_DOCUMENTS" in p for p in only.auth_problems())


def test_an_apollo_manifest_is_a_trusted_documents_file(tmp_path):
    import json

    manifest = tmp_path / "manifest.json"
    operations = [{"id": sha(ME), "name": "Me", "type": "query", "body": ME}]
    manifest.write_text(
        json.dumps(
            {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}
        )
    )
    trusted = TrustedDocuments.load(manifest)
    assert trusted.by_hash[sha(ME)] == ME
    assert trusted.allows("query Me {\n  me { userId\n roles }\n}", "Me")
    assert not trusted.allows("query Me { me { userId } }", "Me")


async def test_the_examples_serve_as_the_trusted_documents(live_server):
    """``examples/`` (the personas' operations) as GRAPHQL_TRUSTED_DOCUMENTS: the guardian's
    home screen runs, sent as the whole file with its operation name; a home-made query
    does not."""
    settings = {"graphql_trusted_documents": str(EXAMPLES), "graphql_trusted_documents_only": True}
    home = HOME
    async with live_server(**settings) as api:
        body = {"query": home, "operationName": "GuardianHome", "variables": {"tz": "UTC"}}
        ran = await post(api, body)
        assert "errors" not in ran, ran
        assert ran["data"]["me"]["guardian"]["name"] == "G1"
        refused = await post(api, {"query": "{ me { guardian { name } } }"})
        assert code(refused) == "FORBIDDEN"
