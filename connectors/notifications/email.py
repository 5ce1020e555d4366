"""The e-mail channel: one message per notification over SMTP, STARTTLS when offered.

    sender = EmailSender("mail", "smtp.city.example", 587, sender="ops@city.example",
                         username="ops", password="...", starttls="auto")
    sender.send(message)        # message.address is the recipient

``starttls``: ``auto`` upgrades when the server offers STARTTLS (and sends in the clear when it
does not: a loopback relay), ``required`` refuses a server that does not offer it, ``off`` never
upgrades. The message's ``Message-ID`` derives from the notification id, so a mail system that
dedupes by it sees a retry as the same message. Refused recipients are not retried; a server
that is down or answers 4xx is.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate

from connectors.notifications.channels import DeliveryFailed, Message
from settings.notifications import EmailChannel

__all__ = ["EmailSender"]

log = logging.getLogger(__name__)


class EmailSender:
    """An ``email`` channel (see module doc)."""

    def __init__(
        self, channel_id: str, host: str, port: int, *, sender: str,
        username: str | None = None, password: str | None = None, starttls: str = "auto",
        timeout_s: float = 10.0, tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.id = channel_id
        self.host = host
        self.port = port
        self.sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout_s = timeout_s
        self._tls = tls_context

    @classmethod
    def from_settings(cls, config: EmailChannel, secrets: Mapping[str, str]) -> EmailSender:
        """The sender of ``config``; its password from ``secrets[config.password_env]``."""
        password = secrets.get(config.password_env) if config.password_env else None
        if config.password_env and not password:
            msg = (f"channel {config.id!r}: environment variable {config.password_env} "
                   "(the SMTP password) is not set")
            raise ValueError(msg)
        return cls(config.id, config.host, config.port, sender=config.sender,
                   username=config.username, password=password, starttls=config.starttls,
                   timeout_s=config.timeout_s)

    def __repr__(self) -> str:
        return f"EmailSender({self.id!r}, {self.host}:{self.port}, user={self._username!r})"

    def send(self, message: Message) -> None:
        """Send ``message.text`` to ``message.address``."""
        where = f"{message.address} via {self.host}:{self.port}"
        if not message.address:
            raise DeliveryFailed(self.id, where, "no e-mail address", retryable=False)
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.address
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = f"<{message.id}@{self.sender.partition('@')[2]}>"
        mail["X-Cityheart-Notification"] = message.id
        mail.set_content(message.text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self._timeout_s) as smtp:
                smtp.ehlo()
                self._upgrade(smtp, where)
                if self._username:
                    smtp.login(self._username, self._password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(self.id, where, f"recipient refused: {exc.recipients}",
                                 retryable=False) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailed(self.id, where, f"login refused: {exc.smtp_code}",
                                 retryable=False) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(self.id, where, f"SMTP {exc.smtp_code} {exc.smtp_error!r}",
                                 retryable=exc.smtp_code < 500) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(self.id, where, f"no answer: {exc}", retryable=True) from exc
        log.debug("email %s: sent %s to %s", self.id, message.id, message.address)

    def _upgrade(self, smtp: smtplib.SMTP, where: str) -> None:
        if self._starttls == "off":
            return
        if not smtp.has_extn("starttls"):
            if self._starttls == "required":
                raise DeliveryFailed(self.id, where, "the server does not offer STARTTLS "
                                     "(starttls: required)", retryable=False)
            return
        smtp.starttls(context=self._tls or ssl.create_default_context())
        smtp.ehlo()
