"""HTTP ingest: systems that cannot speak MQTT POST readings, validated and dead-lettered as the
bridge does, answered once Kafka has them (docs/ingest.md).

- :mod:`~connectors.ingest.keys`: the sources' keys (hashed in a file) and what each may send
- :mod:`~connectors.ingest.bodies`: a request body's records (JSON, a JSON array, SenML, CSV)
- :mod:`~connectors.ingest.intake`: validate, produce, wait for Kafka; idempotency memories
- :mod:`~connectors.ingest.app`: the ASGI application (``POST /ingest``)
- :mod:`~connectors.ingest.server`: uvicorn on a thread; ``serve_ingest`` for ``cityheart ingest``
"""
