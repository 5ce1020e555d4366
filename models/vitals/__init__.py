"""The vital signs in the flow: indicators per district and for the city, window by window.

Pure (no I/O, no clock): the flow (:mod:`flows.city`) feeds these pieces and publishes what
they return.

- :mod:`~models.vitals.records`: :class:`~models.vitals.records.IndicatorRecord`, the ``vitals``
  topic's indicator record (``"record": "indicator"``), and out-of-range ``Rejection`` s;
- :mod:`~models.vitals.devices`: device health fed one window (not one reading) at a time, and
  the out-of-range rejections read back from the dead-letter topic;
- :mod:`~models.vitals.air`: the AQI of the standard's averaging periods from rolling means,
  the labelled instant AQI, unit conversion at 25 degC;
- :mod:`~models.vitals.compute`: the indicator formulas of :mod:`models.indicators` applied to a
  district window, and the parameters from config.yaml;
- :mod:`~models.vitals.district`: one district's state machine (kinds' windows, trackers,
  rolling state, when a district window is complete);
- :mod:`~models.vitals.city`: the whole city from its districts.
"""

__all__: list[str] = []
