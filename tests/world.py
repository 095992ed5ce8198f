"""A small, fully populated tutoring organization for permission tests.

Org layout (per organization):
  teachers T1 (user u-t1), T2 (u-t2); guardians G1 (u-g1), G2 (u-g2); admin u-admin
  students S1 (G1), S2 (G2), S3 (G1, no sessions)
  sessions X1 (T1, S1, G1), X2 (T2, S2, G2)
  payments P1 (G1), P2 (G2); entitlements E1 (G1, S1), E2 (G2, S2)
Every field of X1, S1, G1, T1, P1, E1 is set, so a mask test sees each field either
present or hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from app.platform.actor import Actor
from app.platform.auth import ActorResolver, Identity
from app.platform.entities import ActorEntities, EntityService
from app.platform.packs import install_pack
from app.tutoring.pack import TUTORING_PACK

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


@dataclass
class World:
    org: str
    service: EntityService
    ids: dict[str, str] = field(default_factory=dict)

    async def actor(self, user: str, *roles: str) -> Actor:
        return await ActorResolver(self.service.store).resolve(
            Identity(user, self.org, frozenset(roles))
        )

    async def as_user(self, user: str, *roles: str) -> ActorEntities:
        return await self.service.for_actor(await self.actor(user, *roles))

    async def as_role(self, role: str) -> ActorEntities:
        """The canonical user of a role: admin, teacher T1, guardian G1."""
        user = {"admin": "u-admin", "teacher": "u-t1", "guardian": "u-g1"}[role]
        return await self.as_user(user, role)

    async def system(self) -> ActorEntities:
        return await self.service.for_actor(Actor.system(self.org, "test"))


FULL_TEACHER = {
    "email": "t@example.com",
    "phone": "+1 555 0001",
    "subjects": ["math"],
    "availability": [{"dayOfWeek": 1, "startHour": 9, "endHour": 17}],
    "hourlyRate": 40,
    "bio": "bio",
    "timezone": "Europe/Berlin",
}


async def build_world(service: EntityService, org: str) -> World:
    await install_pack(service.store, org, TUTORING_PACK)
    w = World(org, service)
    s = await w.system()
    ids = w.ids

    async def make(key: str, slug: str, data: dict, server: dict | None = None) -> None:
        ids[key] = (await s.create(slug, data, server_fields=server)).id

    await make("T1", "teacher", {"name": "T1", "userId": "u-t1", **FULL_TEACHER})
    await make("T2", "teacher", {"name": "T2", "userId": "u-t2", **FULL_TEACHER})
    for g in ("G1", "G2"):
        await make(
            g,
            "guardian",
            {
                "name": g,
                "email": f"{g.lower()}@example.com",
                "phone": f"+1 555 1{g[-1]}",
                "whatsappNumber": "+1 555 9999",
                "billingAddress": {
                    "street": "1 Main St",
                    "city": "X",
                    "postalCode": "1",
                    "country": "US",
                },
                "paymentMethod": "card",
                "userId": f"u-{g.lower()}",
            },
        )
    for key, guardian, teacher in (("S1", "G1", "T1"), ("S2", "G2", "T2"), ("S3", "G1", "T1")):
        await make(
            key,
            "student",
            {
                "name": key,
                "grade": "9",
                "subjects": ["math"],
                "notes": "internal note",
                "preferredTeacherId": ids[teacher],
                "guardianId": ids[guardian],
            },
        )
    for n, (g, st) in enumerate((("G1", "S1"), ("G2", "S2")), start=1):
        await make(
            f"P{n}",
            "payment",
            {
                "guardianId": ids[g],
                "amount": 100,
                "currency": "USD",
                "method": "card",
                "paymentLinkUrl": "https://pay.example.com/x",
            },
            {
                "status": "paid",
                "providerReference": "ref",
                "paidAt": NOW,
                "failedAt": NOW,
                "failureReason": "none",
                "refundDue": False,
                "refundReason": "none",
            },
        )
        await make(
            f"E{n}",
            "entitlement",
            {
                "guardianId": ids[g],
                "studentId": ids[st],
                "totalCredits": 4,
                "expiresAt": NOW + timedelta(days=60),
                "paymentId": ids[f"P{n}"],
                "subject": "math",
                "preferredTeacherId": ids["T1"],
                "recurringSchedule": {"dayOfWeek": 2, "hour": 10, "minute": 0},
            },
            {"remainingCredits": 4, "availableCredits": 4, "usedCredits": 0, "status": "active"},
        )
    for key, t, st, g, n in (("X1", "T1", "S1", "G1", 1), ("X2", "T2", "S2", "G2", 2)):
        await make(
            key,
            "session",
            {
                "subject": "math",
                "meetingLink": "https://meet.example.com/x",
                "teacherNotes": "teacher-only note",
                "guardianNotes": "guardian note",
                "reportSubmitted": False,
                "reportContent": "draft report",
            },
            {
                "teacherId": ids[t],
                "studentId": ids[st],
                "guardianId": ids[g],
                "startTime": NOW + timedelta(days=2),
                "duration": 60,
                "status": "scheduled",
                "entitlementId": ids[f"E{n}"],
                "paymentId": ids[f"P{n}"],
                "cancellationReason": "n/a",
                "cancelledBy": "nobody",
                "cancelledAt": NOW,
                "rescheduleCount": 0,
                "holdExpiresAt": NOW,
                "startedAt": NOW,
                "completedAt": NOW,
                "reportShared": False,  # guardians read reportContent only once it is shared
                "reportSharedAt": NOW,
                "reportSharedBy": "nobody",
            },
        )
    for n in (1, 2):
        await s.update(
            "payment", ids[f"P{n}"], {"sessionId": ids[f"X{n}"], "entitlementId": ids[f"E{n}"]}
        )
    return w
