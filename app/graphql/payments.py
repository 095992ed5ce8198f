"""Payment outcomes and retries: each field calls one pack operation, the same one the
agent's tool of the same job calls (``app/tutoring/agent/tools.py``)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.graphql.types.entities import Payment, Session
from app.platform.errors import BadUserInput
from app.tutoring.scheduling import payments, retry

_DEPRECATED_ID = strawberry.argument(deprecation_reason="Use id.")


def one_id(id: str | None, payment_id: str | None) -> str:
    """``id``, or the deprecated ``paymentId`` it replaces: exactly one of them."""
    if (id is None) == (payment_id is None):
        raise BadUserInput(
            "Give the payment's id as id (paymentId is its deprecated name), not both.",
            {"id": "exactly one of id and paymentId is required"},
        )
    return id if id is not None else payment_id  # type: ignore[return-value]


@strawberry.type
class PaymentMutation:
    @strawberry.mutation(
        description="Admin. The provider took the payment. Idempotent. Schedules the session "
        "it is for if that still awaits payment; otherwise the payment is recorded with "
        "refundDue."
    )
    async def recordPaymentSucceeded(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        paymentId: Annotated[strawberry.ID | None, _DEPRECATED_ID] = None,
        providerReference: str | None = None,
    ) -> Payment:
        entity = await payments.record_payment_succeeded(
            info.context.entities, one_id(id, paymentId), providerReference
        )
        return Payment(entity=entity)

    @strawberry.mutation(
        description="Admin. The provider refused the payment: final for this payment. The "
        "session keeps its slot until its hold ends, for retrySessionPayment."
    )
    async def recordPaymentFailed(
        self,
        info: Info,
        *,
        id: strawberry.ID | None = None,
        paymentId: Annotated[strawberry.ID | None, _DEPRECATED_ID] = None,
        reason: str,
    ) -> Payment:
        entity = await payments.record_payment_failed(
            info.context.entities, one_id(id, paymentId), reason
        )
        return Payment(entity=entity)

    @strawberry.mutation(
        description="The session's guardian or an admin, while it is PENDING_PAYMENT and its "
        "hold lasts: a new PENDING payment of the same amount replaces the current one (which "
        "must have failed or still be pending). The hold is not extended."
    )
    async def retrySessionPayment(self, info: Info, id: strawberry.ID) -> Session:
        return Session(entity=await retry.retry_session_payment(info.context.entities, id))
