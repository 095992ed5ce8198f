"""``messages``: the outbox messages the caller may read (reminders, follow-ups, expiry
warnings), newest first, as a bounded cursor connection. Who reads which messages is the
pack's decision (``app.tutoring.messages``); this module only carries it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from app.graphql.types.base import Connection
from app.graphql.types.local import local
from app.platform.entities.service import MAX_PAGE_SIZE
from app.tutoring.messages import MessageQuery, list_messages


@strawberry.enum
class MessageStatus(Enum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"


@strawberry.type(description="A message written to you (or, for admins, to anyone).")
class Message:
    id: strawberry.ID
    kind: str = strawberry.field(
        description="Its template: session_reminder, trial_followup_buy_pack, "
        "pack_followup_renew or pack_expiring"
    )
    status: MessageStatus
    channel: str = strawberry.field(description="whatsapp or email")
    recipientType: str = strawberry.field(description="guardian or teacher")
    recipientId: strawberry.ID
    subject: str | None = strawberry.field(description="As sent (null for older messages)")
    body: str | None = strawberry.field(description="As sent (null for older messages)")
    sessionId: strawberry.ID | None = strawberry.field(description="The session it is about")
    entitlementId: strawberry.ID | None = strawberry.field(description="The pack it is about")
    createdAt: datetime
    sentAt: datetime | None
    localCreatedAt = local("createdAt")
    localSentAt = local("sentAt")

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Message:
        variables = doc.get("variables") or {}
        return cls(
            id=doc["_id"],
            kind=doc["template"],
            status=MessageStatus(doc["status"]),
            channel=doc["channel"],
            recipientType=doc["recipientType"],
            recipientId=doc["recipientId"],
            subject=doc.get("subject"),
            body=doc.get("body"),
            sessionId=variables.get("sessionId"),
            entitlementId=variables.get("entitlementId"),
            createdAt=doc["createdAt"],
            sentAt=doc.get("sentAt"),
        )


@strawberry.type
class MessagesQuery:
    @strawberry.field(
        description="Messages written to the records you are linked to (admins: every message "
        f"of the organization), newest first; first is capped at {MAX_PAGE_SIZE}."
    )
    async def messages(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        status: MessageStatus | None = None,
        from_: Annotated[
            datetime | None,
            strawberry.argument(name="from", description="Written at or after this time"),
        ] = None,
        to: Annotated[
            datetime | None, strawberry.argument(description="Written before this time")
        ] = None,
    ) -> Connection[Message]:
        query = MessageQuery(
            status=status.value if status else None,
            since=from_,
            until=to,
            first=first,
            after=after,
        )
        page, count = await list_messages(info.context.entities, query)
        info.context.limits.charge(1 + 2 * len(page.items))  # the connection, edges, nodes
        return Connection.of(page, Message.of, count)
