"""Real receivers of notifications on loopback: an SMTP server (aiosmtpd) and a webhook receiver.

    with SmtpInbox() as inbox:                      # inbox.port; inbox.messages (parsed)
        ...
    with SmtpInbox(tls=True) as inbox:              # offers STARTTLS, requires it;
        sender = EmailSender(..., tls_context=inbox.client_context)

    receiver = WebhookReceiver(secret=b"...")       # verifies signatures, dedupes by key
    receiver.start(); receiver.stop(); receiver.start()   # down for a while, same port
    receiver.lose_answers = 3                       # store, then drop the connection unanswered
    receiver.refuse = True                          # answer 400 (a receiver that refuses)
    receiver.deliveries                             # {idempotency key: body}, first of each
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import http.server
import ipaddress
import socket
import ssl
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import orjson
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cityheart.runtime.servers import free_port
from connectors.notifications.signing import (
    IDEMPOTENCY_HEADER,
    InvalidSignature,
    verify_signature,
)

__all__ = ["SmtpInbox", "WebhookReceiver"]


class _Handler:
    def __init__(self, inbox: SmtpInbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.inbox.lock:
            self.inbox.messages.append(message)  # type: ignore[arg-type]
            self.inbox.tls_used.append(session.ssl is not None)
            self.inbox.recipients.append(list(envelope.rcpt_tos))
            self.inbox.arrived.append(time.time())
        return "250 OK"


class SmtpInbox:
    """An SMTP server on a free loopback port keeping what it receives (see module doc)."""

    def __init__(self, *, tls: bool = False) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self.tls_used: list[bool] = []
        self.arrived: list[float] = []
        self.lock = threading.Lock()
        self.client_context: ssl.SSLContext | None = None
        options: dict[str, Any] = {}
        if tls:
            server_context, self.client_context = _tls_contexts()
            options = {"tls_context": server_context, "require_starttls": True}
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                      **options)

    def __enter__(self) -> SmtpInbox:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def arrival(self, address: str) -> float:
        """When the first message for ``address`` arrived (epoch seconds)."""
        with self.lock:
            return next(t for t, r in zip(self.arrived, self.recipients, strict=True)
                        if address in r)

    def to(self, address: str) -> list[EmailMessage]:
        """The messages received for ``address``."""
        with self.lock:
            return [m for m, r in zip(self.messages, self.recipients, strict=True)
                    if address in r]


def _tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh self-signed certificate for 127.0.0.1, and a client
    context that trusts exactly that certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    folder = Path(tempfile.mkdtemp(prefix="smtp-tls-"))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


class WebhookReceiver:
    """An HTTP receiver of signed webhook deliveries on a fixed loopback port (module doc)."""

    def __init__(self, *, secret: bytes, path: str = "/hook") -> None:
        self.secret = secret
        self.path = path
        self.port = free_port()
        self.deliveries: dict[str, dict[str, Any]] = {}
        self.requests = 0
        self.duplicates = 0
        self.bad_signatures = 0
        self.lose_answers = 0
        self.refuse = False
        self.lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.receive(dict(self.headers.items()), body)
                if status is None:  # the answer is lost: drop the connection
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def receive(self, headers: dict[str, str], body: bytes) -> int | None:
        """What the receiver does with one request: its status (None: no answer)."""
        with self.lock:
            self.requests += 1
            try:
                verify_signature(self.secret, body, headers, now=time.time())
            except InvalidSignature:
                self.bad_signatures += 1
                return 401
            if self.refuse:
                return 400
            key = headers.get(IDEMPOTENCY_HEADER) or ""
            if key in self.deliveries:
                self.duplicates += 1
            else:
                self.deliveries[key] = orjson.loads(body)
            if self.lose_answers > 0:
                self.lose_answers -= 1
                return None
            return 204
