"""A department's dispatch queue: its bookkeeping core beside the Kafka consumer that drives it.

- :mod:`~connectors.dispatch.queue`: the ledger of what was handled, checkpointed (no I/O)
- :mod:`~connectors.dispatch.consumer`: reads the department's topic from its checkpoint
"""
