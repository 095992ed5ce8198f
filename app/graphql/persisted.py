"""Which document a request runs: automatic persisted queries and trusted documents.

Apollo's automatic persisted queries: a request may carry
``extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}``.

- hash without ``query``: the document remembered under that hash (the trusted documents'
  first, then those clients sent before, per organization), else ``PERSISTED_QUERY_NOT_FOUND``
  with the message ``PersistedQueryNotFound``, on which Apollo clients send the hash again
  with the text;
- hash with ``query``: the hash must be the text's sha256 (``BAD_USER_INPUT`` otherwise); the
  text is remembered for next time (``app.platform.persisted``: bounded, expiring) and runs.

With ``GRAPHQL_TRUSTED_DOCUMENTS_ONLY`` a caller runs only trusted documents
(``app.graphql.trusted``) unless one of their roles allows ``create`` on the resource
``graphqlDocument`` (composing their own operations: the tutoring admin's ``*`` does). Any
other document is ``FORBIDDEN`` and is not remembered. The transport asks the permission
engine; which roles may is the organization's data.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from graphql import GraphQLError

from app.graphql.cost import parse_document
from app.graphql.limits import MAX_TOKENS
from app.graphql.trusted import TrustedDocuments, sha256
from app.platform.entities import ActorEntities
from app.platform.errors import BadUserInput, Forbidden, PersistedQueryNotFound
from app.platform.permissions import Action
from app.platform.persisted import Documents

log = logging.getLogger(__name__)

ANY_DOCUMENT_RESOURCE = "graphqlDocument"
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class PersistedOperations:
    def __init__(
        self,
        documents: Documents | None,
        trusted: TrustedDocuments | None = None,
        *,
        trusted_only: bool = False,
        max_bytes: int = 64 * 1024,
    ) -> None:
        self.documents = documents
        self.trusted = trusted
        self.trusted_only = trusted_only and trusted is not None
        self.max_bytes = max_bytes

    async def resolve(
        self,
        query: str | None,
        extensions: Mapping[str, Any] | None,
        operation_name: str | None,
        entities: ActorEntities,
    ) -> str | None:
        """The text to run (None: no document at all, which the caller reports)."""
        digest = _digest(extensions)
        org = entities.actor.organization_id
        if digest is not None and query is None:
            query = self.trusted.by_hash.get(digest) if self.trusted else None
            if query is None and self.documents is not None:
                query = await self._get(org, digest)
            if query is None:
                raise PersistedQueryNotFound()
            digest = None  # known: nothing to remember
        if query is None:
            return None
        if digest is not None and sha256(query) != digest:
            raise BadUserInput(
                "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query; hash "
                "the exact text you send.",
                {"persistedQuery": "sha256Hash does not match the query"},
            )
        self.check_trusted(query, operation_name, entities)
        if digest is not None:
            await self._remember(org, digest, query)
        return query

    def check_trusted(
        self, query: str, operation_name: str | None, entities: ActorEntities
    ) -> None:
        if not self.trusted_only or self.trusted is None:
            return
        if entities.access.compiled.roles_for(ANY_DOCUMENT_RESOURCE, Action.CREATE):
            return  # may compose their own operations (an admin in GraphiQL)
        if not self.trusted.allows(query, operation_name):
            raise Forbidden(
                "Only the app's trusted operations run here: this document is not one of "
                "them. Use an operation the app was built with.",
                details={"operationName": operation_name},
            )

    async def _get(self, org: str, digest: str) -> str | None:
        assert self.documents is not None
        try:
            return await self.documents.get(org, digest)
        except Exception:  # Redis unreachable: as if unknown; the client sends the text
            log.warning("persisted documents unavailable; answering PersistedQueryNotFound")
            return None

    async def _remember(self, org: str, digest: str, query: str) -> None:
        if self.documents is None:
            return
        if len(query.encode()) > self.max_bytes:
            raise BadUserInput(
                f"Documents longer than {self.max_bytes} bytes are not persisted; send a "
                "smaller one or send it without persistedQuery.",
                {"query": "too long to persist"},
            )
        try:
            parse_document(query, MAX_TOKENS)
        except GraphQLError:
            return  # not worth keeping: the request reports the syntax error
        try:
            await self.documents.put(org, digest, query)
        except Exception:
            log.warning("persisted documents unavailable; the query runs without being kept")


def _digest(extensions: Mapping[str, Any] | None) -> str | None:
    """``extensions.persistedQuery.sha256Hash`` (lower case), checked; None when absent."""
    if not extensions or "persistedQuery" not in extensions:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, Mapping) or persisted.get("version", 1) != 1:
        raise BadUserInput(
            "extensions.persistedQuery must be {version: 1, sha256Hash: <64 hex digits>}.",
            {"persistedQuery": "unsupported shape or version"},
        )
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not _HEX64.match(digest):
        raise BadUserInput(
            "extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits.",
            {"persistedQuery": "sha256Hash is not a SHA-256"},
        )
    return digest.lower()
