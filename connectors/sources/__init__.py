"""Pulled sources: external services cityheart polls on a schedule (``cityheart sources``).

:mod:`~connectors.sources.registry` keeps them (``sources.yaml``), :mod:`~.fetch` asks one,
:mod:`~.mapping` turns its answer into reading payloads, :mod:`~.breaker` decides when to ask
again, :mod:`~.poller` runs them all and :mod:`~.health` serves their health on ``/metrics``.
"""
