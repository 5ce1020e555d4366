"""Settings: the city's config file and environment, validated once into frozen objects.

- :mod:`~settings.loader`: reads the YAML file and ``CITYHEART_*`` overrides (``load(path)``)
- :mod:`~settings.config`: the schema (``Settings``), with its sections in sibling modules
  (:mod:`~settings.anomaly`, :mod:`~settings.auth`, :mod:`~settings.database`,
  :mod:`~settings.incidents`, :mod:`~settings.indicators`, :mod:`~settings.metrics`)
- :mod:`~settings.params`: the domain's parameter objects built from settings

Settings may import the domain (``models``); the domain never imports settings.
"""
