"""Notifications leaving cityheart: channels, signed webhooks, e-mail, the delivery outbox.

- :mod:`~connectors.notifications.channels`: the channel protocol and the registry of types
- :mod:`~connectors.notifications.webhook`: POST JSON, signed (HMAC-SHA256 over timestamp + body)
- :mod:`~connectors.notifications.email`: SMTP, STARTTLS when the server offers it
- :mod:`~connectors.notifications.signing`: webhook signatures and acknowledgement links (pure)
- :mod:`~connectors.notifications.outbox`: retries with backoff, the dead-letter list, replay

Who is told of what is decided in :mod:`alerts.notify_rules`; the notifier service that reads
incident events and drives all this is :mod:`cityheart.services.notifier`.
"""
