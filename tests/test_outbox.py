"""The outbox: one message per key, and each message sent once even with two senders."""

from __future__ import annotations

import asyncio

from app.platform.outbox import LoggingSender, Outbox


class Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message) -> None:
        await asyncio.sleep(0)
        self.sent.append(message["idempotencyKey"])


async def test_one_message_per_key_and_one_send_per_message(store, clock, caplog):
    outbox = Outbox(store, clock=clock)
    for key in ("k1", "k2", "k1"):
        await outbox.write(
            "org-a", recipient_type="guardian", recipient_id="g", channel="email",
            template="t", variables={"x": 1}, idempotency_key=key,
        )  # fmt: skip
    assert [m["idempotencyKey"] for m in await outbox.list("org-a")] == ["k1", "k2"]
    a, b = Recorder(), Recorder()
    await asyncio.gather(outbox.deliver(a), outbox.deliver(b))
    assert sorted(a.sent + b.sent) == ["k1", "k2"]
    assert {m["status"] for m in await outbox.list("org-a")} == {"sent"}
    await outbox.write(
        "org-a", recipient_type="guardian", recipient_id="g", channel="whatsapp",
        template="session_reminder", variables={"name": "Gail Gauss", "phone": "+1 555 0201"},
        idempotency_key="k3",
    )  # fmt: skip
    with caplog.at_level("INFO"):
        assert await outbox.deliver(LoggingSender()) == 1
    # The development sender logs that the message went, never what it says to whom.
    assert "k3" in caplog.text and "session_reminder" in caplog.text
    assert "Gail" not in caplog.text and "555" not in caplog.text
