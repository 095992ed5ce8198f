"""One organization of deterministic data for the benchmarks (no dependency on the tests).

Two teachers, two guardians, four students, and ``sessions`` sessions: the first
``teacher_sessions`` are Teacher T1's, the rest Teacher T2's. People are created through the
secure entity service; sessions, which a benchmark may want by the ten thousand, are written
straight into the store in the entity service's document shape.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from bson import ObjectId

from app.platform.actor import Actor
from app.platform.entities import EntityService
from app.platform.packs import install_pack
from app.tutoring.pack import TUTORING_PACK

ORG = "bench"
SECRET = "bench-secret-that-is-long-enough-for-hs256-0123"
START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
USERS = {"admin": "u-admin", "teacher": "u-t1", "guardian": "u-g1"}


@dataclass
class Seeded:
    ids: dict[str, str] = field(default_factory=dict)
    sessions: list[dict[str, Any]] = field(default_factory=list)  # id and data of each session
    names: dict[str, str] = field(default_factory=dict)  # entity id -> name


def session_data(ids: dict[str, str], i: int, teacher_sessions: int) -> dict[str, Any]:
    teacher = "T1" if i < teacher_sessions else "T2"
    student = ("S1", "S2", "S3", "S4")[i % 4]
    guardian = "G1" if student in ("S1", "S3") else "G2"
    return {
        "teacherId": ids[teacher],
        "studentId": ids[student],
        "guardianId": ids[guardian],
        "startTime": START + timedelta(hours=i),
        "duration": 60,
        "subject": "math",
        "status": "scheduled",
        "rescheduleCount": 0,
    }


async def seed(service: EntityService, sessions: int, teacher_sessions: int) -> Seeded:
    await install_pack(service.store, ORG, TUTORING_PACK)
    system = await service.for_actor(Actor.system(ORG, "bench"))
    out = Seeded()

    async def make(key: str, slug: str, data: dict[str, Any]) -> None:
        out.ids[key] = (await system.create(slug, data)).id
        out.names[out.ids[key]] = data["name"]

    for key in ("T1", "T2"):
        await make(key, "teacher", {"name": f"Teacher {key}", "email": f"{key}@bench.test",
                                    "userId": f"u-{key.lower()}", "hourlyRate": 40})  # fmt: skip
    for key in ("G1", "G2"):
        await make(key, "guardian", {"name": f"Guardian {key}", "phone": "+0 000",
                                     "userId": f"u-{key.lower()}"})  # fmt: skip
    for n, key in enumerate(("S1", "S2", "S3", "S4")):
        guardian = "G1" if n % 2 == 0 else "G2"
        await make(key, "student", {"name": f"Student {key}", "guardianId": out.ids[guardian]})
    now = datetime.now(UTC).replace(microsecond=0)
    docs = []
    for i in range(sessions):
        data = session_data(out.ids, i, teacher_sessions)
        doc_id = str(ObjectId())
        out.sessions.append({"id": doc_id, **data})
        docs.append(
            {
                "_id": doc_id,
                "type": "session",
                "data": data,
                "createdAt": now,
                "updatedAt": now,
                "createdBy": "system:bench",
                "updatedBy": "system:bench",
                "_v": 1,
            }
        )
    entities = service.store.collection("entities")
    for chunk in range(0, len(docs), 1000):
        await entities.insert_many(ORG, docs[chunk : chunk + 1000])
    return out
