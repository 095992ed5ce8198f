"""Bearer tokens to actors.

Tokens are verified by PyJWT: HS256 with the development secret, or RS256 against an
identity provider's JWKS (fetched by ``app.platform.jwks`` off the request path, so a slow
provider or a flood of unknown ``kid``s cannot stall the event loop). The claims give the user,
organization and roles; the actor's linked entity ids (``actor.teacherId`` and the like) are
then looked up in the store.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import jwt

from app.platform.actor import SYSTEM_ROLE, Actor
from app.platform.errors import Unauthenticated
from app.platform.jwks import JwksKeySource
from app.platform.org_state import OrgState, OrgStates
from app.platform.permissions.access import ENTITIES_COLLECTION
from app.platform.store import Store


@dataclass(frozen=True)
class ClaimNames:
    user: str = "sub"
    organization: str = "org_id"
    roles: str = "roles"
    # Clerk writes "org:admin"; only this exact prefix is dropped. Any other namespaced role
    # ("billing:admin") belongs to someone else and grants nothing here.
    role_prefix: str = "org:"


@dataclass(frozen=True)
class Identity:
    user_id: str
    organization_id: str
    roles: frozenset[str]
    # The token's ``exp`` (seconds since the epoch): a live connection ends then.
    expires_at: float | None = field(default=None, compare=False)


VERIFIED_SECONDS = 60.0  # how long a verified token is taken on trust (at most its expiry)
MAX_VERIFIED = 4096  # tokens remembered at once


class TokenVerifier:
    """The ``jwks_*`` timings are those of ``JwksKeySource``; ``key_source`` replaces the one
    built from ``jwks_url`` (tests inject a clock this way)."""

    def __init__(
        self,
        *,
        dev_secret: str | None = None,
        jwks_url: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        claims: ClaimNames = ClaimNames(),
        leeway_seconds: int = 30,
        jwks_fetch_timeout_seconds: float = 5.0,
        jwks_wait_seconds: float = 0.5,
        jwks_min_refresh_seconds: float = 60.0,
        jwks_max_age_seconds: float = 900.0,
        jwks_max_bytes: int = 1_000_000,
        key_source: JwksKeySource | None = None,
    ) -> None:
        if (jwks_url or key_source) and not (issuer and audience):
            # Without both, a token the provider minted for another application would pass.
            raise ValueError("AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE")
        if key_source is None and jwks_url:
            key_source = JwksKeySource(
                jwks_url,
                fetch_timeout=jwks_fetch_timeout_seconds,
                wait=jwks_wait_seconds,
                min_refresh_interval=jwks_min_refresh_seconds,
                max_age=jwks_max_age_seconds,
                max_bytes=jwks_max_bytes,
            )
        self._dev_secret = dev_secret
        self._jwks = key_source
        self._issuer = issuer
        self._audience = audience
        self._claims = claims
        self._leeway = leeway_seconds
        # token -> (identity, trusted until, the signing key's id for RS256 tokens)
        self._verified: OrderedDict[str, tuple[Identity, float, str | None]] = OrderedDict()

    @property
    def key_source(self) -> JwksKeySource | None:
        return self._jwks

    async def start(self) -> None:
        """Loads the provider's keys before the first request needs them. Optional (the first
        RS256 token would start the fetch), and never raises: a provider that is down is
        logged and its tokens are refused until it answers."""
        if self._jwks is not None:
            await self._jwks.start()

    async def aclose(self) -> None:
        if self._jwks is not None:
            await self._jwks.aclose()

    async def verify(self, token: str) -> Identity:
        """Raises ``Unauthenticated`` with a generic message for every failure, so the reply
        never tells an attacker which check failed. Waits on the network for at most the JWKS
        wait bound, and only for a ``kid`` not yet known.

        A client sends the same token with every request until it expires, so a verified
        token is remembered (bounded, by its exact text, signature included) until its expiry
        or for ``VERIFIED_SECONDS``, whichever comes first; an RS256 token only while its key
        is still published, so a key the provider withdraws stops working as soon as the key
        set is refreshed."""
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None:
            identity, until, kid = cached
            still_published = kid is None or (self._jwks is not None and self._jwks.has(kid))
            if now < until and still_published:
                self._verified.move_to_end(token)
                return identity
            del self._verified[token]
        try:
            claims = await self._decode(token)
        except (jwt.PyJWTError, ValueError):
            raise Unauthenticated("The bearer token is missing, invalid or expired.") from None
        expires = claims.get("exp")
        identity = self._identity(claims, expires if isinstance(expires, int | float) else None)
        if isinstance(expires, int | float):
            until = min(expires + self._leeway, now + VERIFIED_SECONDS)
            kid = jwt.get_unverified_header(token).get("kid") if self._jwks is not None else None
            self._verified[token] = (identity, until, kid if isinstance(kid, str) else None)
            if len(self._verified) > MAX_VERIFIED:
                self._verified.popitem(last=False)
        return identity

    async def _decode(self, token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        required = {"require": ["exp", self._claims.user]}
        if alg == "HS256" and self._dev_secret:
            return jwt.decode(
                token, self._dev_secret, algorithms=["HS256"], options=required, leeway=self._leeway
            )
        if alg == "RS256" and self._jwks is not None:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise ValueError("the token names no signing key")
            jwk = await self._jwks.get(kid)
            if jwk is None:
                raise ValueError("unknown signing key")
            return jwt.decode(
                token,
                jwk.key,
                algorithms=["RS256"],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": [*required["require"], "iss", "aud"]},
                leeway=self._leeway,
            )
        raise ValueError("no verifier for this token")

    def _identity(self, claims: dict[str, Any], expires_at: float | None = None) -> Identity:
        user = claims.get(self._claims.user)
        org = claims.get(self._claims.organization)
        roles = claims.get(self._claims.roles)
        if isinstance(roles, str):  # e.g. Clerk's single "org_role"
            roles = [roles]
        bad = Unauthenticated("The bearer token is missing, invalid or expired.")
        if not isinstance(user, str) or not user or not isinstance(org, str) or not org:
            raise bad
        if user.startswith(f"{SYSTEM_ROLE}:"):
            raise bad  # reserved for jobs' audit trail
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise bad
        prefix = self._claims.role_prefix
        names = {r.removeprefix(prefix) if prefix else r for r in roles}
        roles_granted = frozenset(n for n in names if ":" not in n) - {SYSTEM_ROLE}
        return Identity(user, org, roles_granted, expires_at)


def mint_dev_token(
    secret: str,
    *,
    org: str,
    user: str,
    roles: Sequence[str],
    ttl_seconds: int = 12 * 3600,
    claims: ClaimNames = ClaimNames(),
) -> str:
    now = datetime.now(UTC)
    payload = {
        claims.user: user,
        claims.organization: org,
        claims.roles: list(roles),
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
    }
    return jwt.encode(payload, secret, algorithm="HS256")


class ActorResolver:
    """Finds the entities bound to a user and builds the actor. Links are cached with the
    organization's state (``app.platform.org_state``): a write that links or unlinks a user
    bumps the organization's version, so the next request looks them up again."""

    def __init__(self, store: Store, states: OrgStates | None = None) -> None:
        self._entities = store.collection(ENTITIES_COLLECTION)
        self._states = states or OrgStates(store)

    async def resolve(self, identity: Identity, state: OrgState | None = None) -> Actor:
        org = identity.organization_id
        if state is None or state.organization != org:
            state = await self._states.get(org)
        links = state.cached_links(identity.user_id)
        if links is None:
            links = await self._lookup(org, identity.user_id, state)
            state.remember_links(identity.user_id, links)
        return Actor(
            user_id=identity.user_id,
            organization_id=org,
            roles=identity.roles,
            links=links,
        )

    async def _lookup(self, org: str, user_id: str, state: OrgState) -> MappingProxyType:
        """One indexed query per linked type (``(type, data.<userLinkField>)`` is unique)."""
        links: dict[str, str] = {}
        for entity_type in state.types.values():
            if not entity_type.actor_link:
                continue
            found = await self._entities.find_one(
                org, {"type": entity_type.slug, f"data.{entity_type.user_link_field}": user_id}
            )
            if found is not None:
                links[entity_type.actor_link] = found["_id"]
        return MappingProxyType(links)
