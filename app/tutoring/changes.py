"""What happened to a session, a pack or a payment, in the words live subscribers receive.

Domain operations name their writes with these (``event=`` on the entity service); the
platform announces them with the entity's type and id, and the GraphQL subscriptions turn
them into their ``kind`` enums. A write without a name is ``created``, ``updated`` or
``deleted`` (``app.platform.changes``).
"""

from __future__ import annotations

from app.platform.changes import CREATED, DELETED, UPDATED

# sessions
BOOKED = "booked"
PAID = "paid"  # also a payment's: it succeeded
RESCHEDULED = "rescheduled"
STARTED = "started"
COMPLETED = "completed"
CANCELLED = "cancelled"
NO_SHOW = "no_show"
# packs (entitlements): credits held for a booking, charged, given back; the pack expired
RESERVED = "reserved"
CONSUMED = "consumed"
RELEASED = "released"
EXPIRED = "expired"
# payments
FAILED = "failed"

SESSION_EVENTS = (
    BOOKED, PAID, RESCHEDULED, STARTED, COMPLETED, CANCELLED, NO_SHOW, CREATED, UPDATED, DELETED
)  # fmt: skip
ENTITLEMENT_EVENTS = (CREATED, RESERVED, CONSUMED, RELEASED, EXPIRED, UPDATED, DELETED)
PAYMENT_EVENTS = (CREATED, PAID, FAILED, UPDATED, DELETED)

# A lifecycle move, named by the status it reaches.
BY_STATUS = {
    "scheduled": PAID,
    "in_progress": STARTED,
    "completed": COMPLETED,
    "cancelled": CANCELLED,
    "no_show": NO_SHOW,
}
