"""Acknowledgement links: a notification's link acknowledges its incident as its recipient.

A link is ``<notifications.link_base_url>ack?t=<token>``; the token (signed with the secret in
``notifications.link_secret_env``, :func:`connectors.notifications.signing.link_token`) names the
incident, its district, the recipient, the department they were told for and the notification.
Opening it shows a page with one button (a GET changes nothing: mail scanners follow links);
the button POSTs, and the acknowledgement goes to the flow as a command, exactly as if the
recipient had pressed *acknowledge* as that department's dispatcher. The event it makes names
the notification (``details.notification``, ``details.via: link``)::

    links = AckLinks(secret, bus)                 # the dashboard's CommandBus
    status, html = links.page(token)              # GET /ack?t=...
    status, html = links.acknowledge(token)       # POST /ack (form field t)
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import replace
from http import HTTPStatus

from alerts.commands import Command
from connectors.command_bus import CommandBus
from connectors.notifications.signing import InvalidSignature, read_link_token
from models.claims import Claims
from models.errors import ConnectorError

__all__ = ["AckLinks"]

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cityheart: {title}</title></head><body><h1>{title}</h1><p>{text}</p>{form}</body></html>
"""
_FORM = """<form method="post" action="ack"><input type="hidden" name="t" value="{token}">
<button type="submit">Acknowledge</button></form>"""


class AckLinks:
    """Answers the acknowledgement links of notifications (see module doc)."""

    def __init__(
        self, secret: str, bus: CommandBus | None, *, clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self._secret = secret
        self._bus = bus
        self._clock = clock
        self._timeout = timeout

    def page(self, token: str) -> tuple[HTTPStatus, str]:
        """The confirmation page of a link (nothing is acknowledged yet)."""
        try:
            claims = read_link_token(self._secret, token, now=self._clock())
        except InvalidSignature as exc:
            return HTTPStatus.FORBIDDEN, _page("Link not valid", exc.reason)
        text = (f"Acknowledge incident {claims['incident_id']} as {claims['sub']} "
                f"({claims['department']})?")
        form = _FORM.format(token=html.escape(token, quote=True))
        return HTTPStatus.OK, _page("Acknowledge incident", text, form)

    def acknowledge(self, token: str) -> tuple[HTTPStatus, str]:
        """Acknowledge the link's incident through the flow; the page saying how it went."""
        now = self._clock()
        try:
            claims = read_link_token(self._secret, token, now=now)
        except InvalidSignature as exc:
            return HTTPStatus.FORBIDDEN, _page("Link not valid", exc.reason)
        if self._bus is None:
            return HTTPStatus.SERVICE_UNAVAILABLE, _page("Not now", "this server sends no "
                                                         "commands (no Kafka configured)")
        who = Claims(role="dispatcher", sub=str(claims["sub"]), iat=int(now), exp=int(now) + 1,
                     department=str(claims["department"]))
        notification = str(claims.get("notification"))
        command = Command.new(
            {"id": claims["incident_id"], "district": claims["district"]}, "acknowledge", who,
            at=now, command_id=f"ack-{notification}-{int(now * 1000)}",
            comment=f"acknowledged from notification {notification}",
        )
        command = replace(command, details={"notification": notification, "via": "link"})
        try:
            result = self._bus.request(command.id, command.incident_id, command.to_record(),
                                       timeout=self._timeout)
        except ConnectorError as exc:
            return HTTPStatus.SERVICE_UNAVAILABLE, _page("Not now", str(exc))
        if result.get("ok"):
            return HTTPStatus.OK, _page("Acknowledged",
                                        f"incident {claims['incident_id']} is acknowledged")
        status = HTTPStatus.CONFLICT if result.get("error") == "conflict" \
            else HTTPStatus.FORBIDDEN
        return status, _page("Not acknowledged", str(result.get("detail")))


def _page(title: str, text: str, form: str = "") -> str:
    return _PAGE.format(title=html.escape(title), text=html.escape(text), form=form)
