"""Acknowledgement links: a GET only shows the button; forged and expired links are refused."""

from __future__ import annotations

from http import HTTPStatus

from cityheart.services.ack_links import AckLinks
from connectors.notifications.signing import link_token

SECRET = "a-link-secret-of-this-deployment-0123456"
CLAIMS = {"incident_id": "inc-1", "district": "harbour", "sub": "ana",
          "department": "water-authority", "notification": "ntf-1"}


def test_opening_a_link_shows_a_button_and_acknowledges_nothing() -> None:
    token = link_token(SECRET, CLAIMS, expires_at=2000)
    status, page = AckLinks(SECRET, None, clock=lambda: 1000).page(token)
    assert status == HTTPStatus.OK
    assert "inc-1" in page and 'method="post"' in page and token in page


def test_forged_and_expired_links_are_refused() -> None:
    links = AckLinks(SECRET, None, clock=lambda: 1000)
    forged = link_token("another-secret-entirely-0123456789", CLAIMS, expires_at=2000)
    assert links.acknowledge(forged)[0] == HTTPStatus.FORBIDDEN
    expired = link_token(SECRET, CLAIMS, expires_at=999)
    status, page = links.acknowledge(expired)
    assert status == HTTPStatus.FORBIDDEN and "expired" in page
    valid = link_token(SECRET, CLAIMS, expires_at=2000)
    assert links.acknowledge(valid)[0] == HTTPStatus.SERVICE_UNAVAILABLE   # no Kafka here
