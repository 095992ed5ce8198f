"""Tokens to actors: HS256 dev tokens, RS256 through a JWKS endpoint, and every refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.platform.auth import ActorResolver, ClaimNames, TokenVerifier, mint_dev_token
from app.platform.errors import ErrorCode, Unauthenticated

SECRET = "test-secret-that-is-long-enough-for-hs256"


def _hs(payload, secret=SECRET):
    return jwt.encode(payload, secret, algorithm="HS256")


def _claims(**over):
    base = {
        "sub": "u-t1",
        "org_id": "org-a",
        "roles": ["teacher"],
        "exp": datetime.now(UTC) + timedelta(hours=1),
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


async def test_dev_token_round_trip():
    verifier = TokenVerifier(dev_secret=SECRET)
    token = mint_dev_token(SECRET, org="org-a", user="u-g1", roles=["guardian"])
    identity = await verifier.verify(token)
    assert (identity.user_id, identity.organization_id, identity.roles) == (
        "u-g1",
        "org-a",
        frozenset({"guardian"}),
    )


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        _hs(_claims(), secret="another-secret-that-is-long-enough-xx"),
        _hs(_claims(exp=datetime.now(UTC) - timedelta(hours=1))),
        _hs(_claims(exp=None)),
        _hs(_claims(sub=None)),
        _hs(_claims(org_id=None)),
        _hs(_claims(roles=None)),
        _hs(_claims(roles=5)),
        jwt.encode(_claims(), key=None, algorithm="none"),
    ],
)
async def test_bad_tokens_are_unauthenticated(token):
    with pytest.raises(Unauthenticated) as err:
        await TokenVerifier(dev_secret=SECRET).verify(token)
    assert err.value.code is ErrorCode.UNAUTHENTICATED
    assert err.value.message == "The bearer token is missing, invalid or expired."


async def test_dev_tokens_refused_without_secret():
    token = mint_dev_token(SECRET, org="org-a", user="u", roles=["admin"])
    with pytest.raises(Unauthenticated):
        await TokenVerifier(dev_secret=None).verify(token)


async def test_system_role_cannot_be_claimed():
    identity = await TokenVerifier(dev_secret=SECRET).verify(
        _hs(_claims(roles=["system", "admin"]))
    )
    assert identity.roles == frozenset({"admin"})


async def test_configurable_claims_accept_clerk_org_role():
    names = ClaimNames(user="sub", organization="org_id", roles="org_role")
    token = _hs({**_claims(roles=None), "org_role": "org:admin"})
    identity = await TokenVerifier(dev_secret=SECRET, claims=names).verify(token)
    assert identity.roles == frozenset({"admin"})


@pytest.fixture(scope="module")
def jwks_server():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield key, f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    server.shutdown()


async def test_rs256_through_jwks(jwks_server):
    key, url = jwks_server
    verifier = TokenVerifier(jwks_url=url, issuer="https://idp.test", audience="tutoring")
    await verifier.start()
    claims = _claims(iss="https://idp.test", aud="tutoring")
    good = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    assert (await verifier.verify(good)).user_id == "u-t1"
    wrong_aud = jwt.encode(
        {**claims, "aud": "other"}, key, algorithm="RS256", headers={"kid": "k1"}
    )
    wrong_iss = jwt.encode(
        {**claims, "iss": "https://evil"}, key, algorithm="RS256", headers={"kid": "k1"}
    )
    for token in (wrong_aud, wrong_iss):
        with pytest.raises(Unauthenticated):
            await verifier.verify(token)
    await verifier.aclose()


async def test_hs256_is_not_accepted_when_only_jwks_is_configured(jwks_server):
    """Algorithm confusion: an HS256 token signed with the public key must not pass."""
    key, url = jwks_server
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    claims = {**_claims(), "exp": int(_claims()["exp"].timestamp())}
    header = b64(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
    signing_input = header + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64(signature)}"
    verifier = TokenVerifier(jwks_url=url, issuer="https://idp.test", audience="tutoring")
    await verifier.start()
    with pytest.raises(Unauthenticated):
        await verifier.verify(forged)
    await verifier.aclose()


def test_jwks_without_issuer_and_audience_is_refused(jwks_server):
    _, url = jwks_server
    for kwargs in ({}, {"issuer": "https://idp.test"}, {"audience": "tutoring"}):
        with pytest.raises(ValueError):
            TokenVerifier(jwks_url=url, **kwargs)


async def test_rs256_tokens_must_carry_issuer_and_audience(jwks_server):
    key, url = jwks_server
    verifier = TokenVerifier(jwks_url=url, issuer="https://idp.test", audience="tutoring")
    await verifier.start()
    for missing in ("iss", "aud"):
        claims = {
            k: v for k, v in _claims(iss="https://idp.test", aud="tutoring").items() if k != missing
        }
        with pytest.raises(Unauthenticated):
            await verifier.verify(jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"}))
    await verifier.aclose()


async def test_only_the_configured_role_prefix_is_dropped():
    token = _hs(_claims(roles=["org:teacher", "billing:admin", "x:guardian"]))
    assert (await TokenVerifier(dev_secret=SECRET).verify(token)).roles == frozenset({"teacher"})


async def test_system_subjects_are_reserved_for_jobs():
    with pytest.raises(Unauthenticated):
        await TokenVerifier(dev_secret=SECRET).verify(_hs(_claims(sub="system:session-reminder")))


async def test_actor_links_resolve_to_entities_of_the_org(world):
    resolver = ActorResolver(world.service.store)
    verifier = TokenVerifier(dev_secret=SECRET)
    actor = await resolver.resolve(
        await verifier.verify(_hs(_claims(sub="u-g1", roles=["guardian"])))
    )
    assert actor.links == {"guardianId": world.ids["G1"]}
    assert actor.value("actor.guardianId") == world.ids["G1"]
    assert actor.value("actor.teacherId") is None
