"""The websocket push feed: its protocol core beside the server and the client that drive it.

- :mod:`~connectors.feed.protocol`: messages, subscriptions, the numbered log (no I/O)
- :mod:`~connectors.feed.delivery`: a client's bounded outbox and the client side's deduper (no I/O)
- :mod:`~connectors.feed.auth`: tokens on connect, masking by role
- :mod:`~connectors.feed.server`: the websockets server reading Kafka
- :mod:`~connectors.feed.client`: a resuming client (``cityheart watch``)
"""
