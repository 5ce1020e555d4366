"""The lab: benchmarks, fault soaks and the NAB scorer's adapter, outside the product.

Its own distribution (``pip install ./lab``, see ``lab/pyproject.toml``); it adds
``cityheart bench`` and ``cityheart soak`` to the CLI through an entry point (:mod:`lab.cli`).
"""
