"""Notification channels against real servers on loopback: a webhook receiver that verifies
signatures and is down for a while, and an SMTP server with and without STARTTLS."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from connectors.notifications.channels import DeliveryFailed, Message, build_channels
from connectors.notifications.email import EmailSender
from connectors.notifications.outbox import DeadLetters, Outbox
from connectors.notifications.signing import (
    InvalidSignature,
    link_token,
    read_link_token,
    sign,
    verify_signature,
)
from connectors.notifications.webhook import WebhookSender
from settings.notifications import NotificationSettings, RetrySettings
from tests.support.notify import SmtpInbox, WebhookReceiver
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services

SECRET = b"webhook-secret-of-at-least-32-bytes!"
FAST = RetrySettings(attempts=60, initial_s=0.05, factor=2.0, max_s=0.3)


def message(number: int, channel: str = "hook", address: str | None = None) -> Message:
    return Message(f"ntf-{number:04d}", channel, address, f"incident {number}",
                   f"incident {number} needs you\n", {"id": f"ntf-{number:04d}", "n": number})


class Outcomes:
    """What the outbox reported, per message id and status."""

    def __init__(self) -> None:
        self.seen: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()

    def __call__(self, message: Message, status: str, details: dict[str, Any]) -> None:
        with self.lock:
            self.seen[(message.id, status)] += 1

    def count(self, status: str) -> int:
        with self.lock:
            return sum(n for (_, s), n in self.seen.items() if s == status)


def test_every_webhook_arrives_once_in_effect_across_an_outage_and_lost_answers(
    tmp_path: Path,
) -> None:
    receiver = WebhookReceiver(secret=SECRET)
    outcomes = Outcomes()
    outbox = Outbox({"hook": WebhookSender("hook", receiver.url, secret=SECRET, timeout_s=2)},
                    tmp_path, retry=FAST, on_outcome=outcomes, rescan_s=0.2)
    outbox.start()
    try:
        for number in range(20):
            assert outbox.submit(message(number))
        assert not outbox.submit(message(3))  # the same id again: nothing new
        # the receiver is down: every message fails at least once and stays pending
        wait_until(lambda: _all_tried(tmp_path, 20), 30, "every delivery to fail once")
        assert outcomes.count("delivered") == 0
        receiver.lose_answers = 3   # it comes back, and its first three answers get lost
        receiver.start()
        wait_until(lambda: not outbox.pending(), 60,
                   lambda: f"deliveries; {len(outbox.pending())} still pending")
    finally:
        outbox.close()
        receiver.stop()
    assert set(receiver.deliveries) == {f"ntf-{n:04d}" for n in range(20)}
    assert receiver.duplicates >= 3          # lost answers were retried, recognised by key
    assert receiver.bad_signatures == 0
    assert [receiver.deliveries[f"ntf-{n:04d}"]["n"] for n in range(20)] == list(range(20))
    assert DeadLetters(tmp_path).list() == []
    assert all(outcomes.seen[(f"ntf-{n:04d}", "delivered")] == 1 for n in range(20))
    assert outcomes.count("failed") == 0


def test_what_a_stopped_notifier_left_pending_is_delivered_after_its_restart_and_only_once(
    tmp_path: Path,
) -> None:
    receiver = WebhookReceiver(secret=SECRET)
    sender = WebhookSender("hook", receiver.url, secret=SECRET, timeout_s=2)
    first = Outbox({"hook": sender}, tmp_path, retry=FAST, rescan_s=0.1)
    first.start()
    for number in range(5):
        first.submit(message(number))
    wait_until(lambda: _all_tried(tmp_path, 5), 30, "every delivery to fail once")
    first.close()                                   # stops with all five pending
    receiver.start()
    outcomes = Outcomes()
    again = Outbox({"hook": sender}, tmp_path, retry=FAST, on_outcome=outcomes, rescan_s=0.1)
    again.start()
    try:
        wait_until(lambda: outcomes.count("delivered") == 5, 30, "the five after the restart")
        # the same event handled again (a crash before the read position was saved): no resend
        assert not any(again.submit(message(number)) for number in range(5))
    finally:
        again.close()
        receiver.stop()
    assert set(receiver.deliveries) == {f"ntf-{n:04d}" for n in range(5)}
    assert receiver.requests == 5


def _all_tried(state_dir: Path, expected: int) -> bool:
    import orjson

    files = list((state_dir / "pending").glob("ntf-*.json"))
    return len(files) == expected and all(
        orjson.loads(f.read_bytes())["attempts"] >= 1 for f in files)


def test_refused_deliveries_are_dead_lettered_listed_and_replayed(tmp_path: Path) -> None:
    receiver = WebhookReceiver(secret=SECRET)
    receiver.refuse = True
    receiver.start()
    outcomes = Outcomes()
    outbox = Outbox({"hook": WebhookSender("hook", receiver.url, secret=SECRET, timeout_s=2)},
                    tmp_path, retry=FAST, on_outcome=outcomes, rescan_s=0.1)
    outbox.start()
    try:
        for number in range(3):
            outbox.submit(message(number))
        wait_until(lambda: len(DeadLetters(tmp_path).list()) == 3, 30, "three dead letters")
        dead = DeadLetters(tmp_path).list()
        assert [d.attempts for d in dead] == [1, 1, 1]    # a 400 is not worth retrying
        assert all("HTTP 400" in (d.last_error or "") for d in dead)
        assert outcomes.count("failed") == 3
        assert not outbox.submit(message(1))               # dead already: not sent anew
        receiver.refuse = False
        assert sorted(DeadLetters(tmp_path).replay()) == ["ntf-0000", "ntf-0001", "ntf-0002"]
        wait_until(lambda: len(receiver.deliveries) == 3, 30, "the replayed deliveries")
        wait_until(lambda: not outbox.pending(), 10, "the pending list to empty")
    finally:
        outbox.close()
        receiver.stop()
    assert DeadLetters(tmp_path).list() == []
    assert outcomes.count("delivered") == 3


def test_a_receiver_refuses_a_forged_or_stale_signature() -> None:
    body = b'{"id": "ntf-1"}'
    headers = {"X-Cityheart-Timestamp": "1765100000",
               "X-Cityheart-Signature": sign(SECRET, body, timestamp=1765100000)}
    verify_signature(SECRET, body, headers, now=1765100010)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_signature(SECRET, body + b" ", headers, now=1765100010)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_signature(b"another secret", body, headers, now=1765100010)
    with pytest.raises(InvalidSignature, match="more than 300 s"):
        verify_signature(SECRET, body, headers, now=1765100000 + 301)


def test_link_tokens_are_signed_and_expire() -> None:
    token = link_token("s3cret", {"incident_id": "inc-1", "sub": "ana"}, expires_at=2000)
    assert read_link_token("s3cret", token, now=1000)["sub"] == "ana"
    with pytest.raises(InvalidSignature, match="expired"):
        read_link_token("s3cret", token, now=2000)
    with pytest.raises(InvalidSignature, match="not signed"):
        read_link_token("other", token, now=1000)
    body, mac = token.split(".")
    with pytest.raises(InvalidSignature, match="not signed"):
        read_link_token("s3cret", body[:-2] + "xx." + mac, now=1000)


def test_email_goes_out_over_starttls_when_the_server_offers_it() -> None:
    with SmtpInbox(tls=True) as inbox:
        sender = EmailSender("mail", "127.0.0.1", inbox.port, sender="ops@city.example",
                             starttls="required", tls_context=inbox.client_context)
        sender.send(message(7, channel="mail", address="ana@city.example"))
        [mail] = inbox.to("ana@city.example")
        auto = EmailSender("mail", "127.0.0.1", inbox.port, sender="ops@city.example",
                           tls_context=inbox.client_context)       # starttls: auto
        auto.send(message(8, channel="mail", address="ben@city.example"))
        untrusted = EmailSender("mail", "127.0.0.1", inbox.port, sender="ops@city.example")
        with pytest.raises(DeliveryFailed):   # a certificate the system does not trust
            untrusted.send(message(9, channel="mail", address="ben@city.example"))
    assert inbox.tls_used == [True, True]
    assert mail["Subject"] == "incident 7"
    assert mail["X-Cityheart-Notification"] == "ntf-0007"
    assert "incident 7 needs you" in mail.get_content()


def test_email_in_the_clear_only_when_starttls_is_not_required() -> None:
    with SmtpInbox() as inbox:
        plain = EmailSender("mail", "127.0.0.1", inbox.port, sender="ops@city.example")
        plain.send(message(1, channel="mail", address="ben@city.example"))
        assert len(inbox.to("ben@city.example")) == 1 and inbox.tls_used == [False]
        strict = EmailSender("mail", "127.0.0.1", inbox.port, sender="ops@city.example",
                             starttls="required")
        with pytest.raises(DeliveryFailed, match="does not offer STARTTLS") as caught:
            strict.send(message(2, channel="mail", address="ben@city.example"))
        assert caught.value.retryable is False
        port = inbox.port
    down = EmailSender("mail", "127.0.0.1", port, sender="ops@city.example", timeout_s=2)
    with pytest.raises(DeliveryFailed) as caught:
        down.send(message(3, channel="mail", address="ben@city.example"))
    assert caught.value.retryable is True


def test_channels_are_built_by_type_with_secrets_from_the_environment() -> None:
    settings = NotificationSettings.model_validate({"channels": [
        {"id": "hook", "type": "webhook", "url": "http://127.0.0.1:9/x",
         "secret_env": "HOOK_SECRET"},
        {"id": "mail", "type": "email", "host": "127.0.0.1", "sender": "a@b.example"}]})
    channels = build_channels(settings.channels, secrets={"HOOK_SECRET": "abc"})
    assert isinstance(channels["hook"], WebhookSender)
    assert isinstance(channels["mail"], EmailSender)
    assert "abc" not in repr(channels["hook"])
    with pytest.raises(ValueError, match="HOOK_SECRET"):
        build_channels(settings.channels, secrets={})
