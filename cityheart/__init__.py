"""cityheart: the live heart of a city operations centre.

The command line (``cityheart.cli``) loads config.yaml once with ``settings.loader.load`` and
passes the frozen settings into every component it starts.
"""
