"""Demo data for a fresh organization: an admin, two teachers, two guardians and their
children, packs, payments and sessions. Seeding twice adds nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.platform.actor import Actor
from app.platform.entities import EntityService
from app.platform.org_settings import SettingsRepository
from app.tutoring.roles import ADMIN, GUARDIAN, TEACHER
from app.tutoring.scheduling.booking import BookingRequest, book_session
from app.tutoring.scheduling.payments import record_payment_succeeded
from app.tutoring.settings import NAMESPACE, TutoringSettings


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    role: str
    label: str


DEMO_USERS = (
    DemoUser("demo-admin", ADMIN, "Admin Alice"),
    DemoUser("demo-teacher-tom", TEACHER, "Teacher Tom"),
    DemoUser("demo-teacher-tina", TEACHER, "Teacher Tina"),
    DemoUser("demo-guardian-gail", GUARDIAN, "Guardian Gail"),
    DemoUser("demo-guardian-gary", GUARDIAN, "Guardian Gary"),
)

_WEEKDAYS_9_TO_17 = [{"dayOfWeek": d, "startHour": 9, "endHour": 17} for d in range(1, 6)]


def _next_weekday_at(now: datetime, days_ahead: int, hour: int) -> datetime:
    day = (now + timedelta(days=days_ahead)).replace(hour=hour, minute=0, second=0, microsecond=0)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


async def seed_demo(service: EntityService, org: str) -> bool:
    """Returns False when the organization already has the demo data."""
    system = await service.for_actor(Actor.system(org, "seed-demo"))
    if await system.count("teacher", where={"userId": "demo-teacher-tom"}):
        return False
    # Remind five days ahead: the first demo sessions lie two to four days ahead (after a
    # weekend), so their reminders are due at once and show up within seconds, any time of day.
    await SettingsRepository(service.store).update(
        org, NAMESPACE, TutoringSettings, {"reminderLeadMinutes": 5 * 24 * 60}
    )
    now = service.clock()
    tom = await system.create(
        "teacher",
        {
            "name": "Tom Turing",
            "email": "tom@example.com",
            "phone": "+1 555 0101",
            "subjects": ["math", "physics"],
            "availability": _WEEKDAYS_9_TO_17,
            "hourlyRate": 45,
            "bio": "Loves proofs.",
            "userId": "demo-teacher-tom",
            "timezone": "America/New_York",
        },
    )
    tina = await system.create(
        "teacher",
        {
            "name": "Tina Tesla",
            "email": "tina@example.com",
            "phone": "+1 555 0102",
            "subjects": ["chemistry"],
            "availability": _WEEKDAYS_9_TO_17,
            "hourlyRate": 50,
            "userId": "demo-teacher-tina",
            "timezone": "Europe/London",
        },
    )
    gail = await system.create(
        "guardian",
        {
            "name": "Gail Gauss",
            "email": "gail@example.com",
            "phone": "+1 555 0201",
            "whatsappNumber": "+1 555 0201",
            "userId": "demo-guardian-gail",
        },
    )
    gary = await system.create(
        "guardian",
        {
            "name": "Gary Galois",
            "email": "gary@example.com",
            "phone": "+1 555 0202",
            "userId": "demo-guardian-gary",
        },
    )
    sam = await system.create(
        "student",
        {
            "name": "Sam Gauss",
            "grade": "9",
            "subjects": ["math"],
            "guardianId": gail.id,
            "notes": "Needs encouragement with word problems.",
            "preferredTeacherId": tom.id,
        },
    )
    sue = await system.create(
        "student",
        {"name": "Sue Galois", "grade": "11", "subjects": ["chemistry"], "guardianId": gary.id},
    )
    pay = await system.create(
        "payment",
        {"guardianId": gail.id, "amount": 360, "currency": "USD", "method": "card"},
        server_fields={"status": "paid", "paidAt": now, "providerReference": "demo-ref-1"},
    )
    pack = await system.create(
        "entitlement",
        {
            "guardianId": gail.id,
            "studentId": sam.id,
            "totalCredits": 8,
            "paymentId": pay.id,
            "subject": "math",
            "expiresAt": now + timedelta(days=90),
            "recurringSchedule": {"dayOfWeek": 2, "hour": 10, "minute": 0},
        },
        server_fields={
            "remainingCredits": 8,
            "availableCredits": 8,
            "usedCredits": 0,
            "status": "active",
        },
    )
    # Sessions go through the real booking rules (claims, credits, pay-before-book).
    bookings = [
        (tom, sam, 2, "math", pack.id),
        (tom, sam, 9, "math", pack.id),
        (tina, sue, 3, "chemistry", None),
    ]
    for teacher, student, days, subject, entitlement in bookings:
        zone = ZoneInfo(teacher.get("timezone"))
        session = await book_session(
            system,
            BookingRequest(
                teacher_id=teacher.id,
                student_id=student.id,
                start=_next_weekday_at(now.astimezone(zone), days, 10),
                duration_minutes=60,
                subject=subject,
                entitlement_id=entitlement,
            ),
        )
        await system.update(
            "session",
            session.id,
            {
                "meetingLink": "https://meet.example.com/demo",
                "guardianNotes": "Please focus on homework.",
                "teacherNotes": "Prepare a worksheet.",
            },
        )
        if entitlement is None:  # the trial session waits for its payment; pay it
            await record_payment_succeeded(system, session.get("paymentId"), "demo-psp")
    return True
