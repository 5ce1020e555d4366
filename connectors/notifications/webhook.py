"""The webhook channel: POST the notification's JSON, signed, with its idempotency key.

    sender = WebhookSender("water-hook", "https://water.example/hook", secret=b"...")
    sender.send(message)        # DeliveryFailed(retryable=True) on 5xx, 408, 429, no answer

Each attempt signs anew (a fresh timestamp, see :mod:`connectors.notifications.signing`) and
carries the same ``Idempotency-Key`` (the notification's id), so a receiver that got a delivery
whose answer was lost recognises the retry. A 2xx answer is success; 408, 429, 5xx and network
errors are worth retrying; any other answer is not (the receiver refuses the request).
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

import orjson

from connectors.notifications.channels import DeliveryFailed, Message
from connectors.notifications.signing import signed_headers
from settings.notifications import WebhookChannel

__all__ = ["WebhookSender"]

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({408, 425, 429})


class WebhookSender:
    """A ``webhook`` channel (see module doc)."""

    def __init__(
        self, channel_id: str, url: str, *, secret: str | bytes | None = None,
        timeout_s: float = 5.0, clock: Callable[[], float] = time.time,
    ) -> None:
        self.id = channel_id
        self.url = url
        self._secret = secret
        self._timeout_s = timeout_s
        self._clock = clock

    @classmethod
    def from_settings(cls, config: WebhookChannel, secrets: Mapping[str, str]) -> WebhookSender:
        """The sender of ``config``; its secret from ``secrets[config.secret_env]``."""
        secret = None
        if config.secret_env is not None:
            secret = secrets.get(config.secret_env)
            if not secret:
                msg = (f"channel {config.id!r}: environment variable {config.secret_env} "
                       "(its signing secret) is not set")
                raise ValueError(msg)
        return cls(config.id, config.url, secret=secret, timeout_s=config.timeout_s)

    def __repr__(self) -> str:
        return f"WebhookSender({self.id!r}, {self.url!r}, secret={'***' if self._secret else None})"

    def send(self, message: Message) -> None:
        """POST ``message.body``; raise DeliveryFailed unless the answer is 2xx."""
        body = orjson.dumps(message.body)
        headers = signed_headers(self._secret, body, timestamp=self._clock(),
                                 idempotency_key=message.id)
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as answer:
                answer.read()
        except urllib.error.HTTPError as exc:
            retryable = exc.code >= 500 or exc.code in _RETRYABLE_STATUS
            raise DeliveryFailed(self.id, self.url, f"HTTP {exc.code} {exc.reason}",
                                 retryable=retryable) from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryFailed(self.id, self.url, f"no answer: {reason}",
                                 retryable=True) from exc
        log.debug("webhook %s: delivered %s", self.id, message.id)
