"""City indicators as pure formulas: no I/O, no clock, no config; time and parameters come in.

One module per domain, each with its ordered level names (``LEVELS``) and small frozen
parameter classes (whose level bounds each describe as a :class:`~models.indicators.levels.Band`),
returning an :class:`~models.indicators.levels.Indicator` (value, unit, level, 0-100 sub-score,
explaining inputs):

- :mod:`~models.indicators.traffic`: travel-time index or share of slow segments per district
- :mod:`~models.indicators.noise`: Leq (energy average) against GB 3096-2008 day/night limits
- :mod:`~models.indicators.water`: water level vs warning/danger lines with rate of rise;
  pipe pressure band
- :mod:`~models.indicators.power`: load / capacity per substation and district
- :mod:`~models.indicators.crowd`: persons/m2 against the area's safe density
- :mod:`~models.indicators.health`: silent, stuck and out-of-range devices; district coverage
- :mod:`~models.indicators.score`: district and city health scores with their components
- :mod:`~models.indicators.rolling`: 1 h / 8 h / 24 h rolling means kept incrementally

State meant for a bytewax ``stateful_map`` (``RollingMean``, ``RollingLeq``,
``LeqAccumulator``, ``DeviceTracker``) is small, bounded and picklable, and keeps no parameters
that come from config: those are passed to each call. For example, per district and window::

    from models.indicators import district_score, travel_time_index, TrafficParams

    traffic = travel_time_index(vital["mean"], TrafficParams(free_flow_kmh=50.0))
    score = district_score("old-town", [traffic], weights={"traffic": 1.0})
    score.as_dict()    # {"district": "old-town", "score": ..., "components": [...]}
"""

from __future__ import annotations

from models.indicators.crowd import CrowdParams, crowd_indicator, density
from models.indicators.health import (
    DEVICE_STATES,
    Coverage,
    DeviceStatus,
    DeviceTracker,
    HealthParams,
    coverage,
)
from models.indicators.levels import Indicator, InvalidIndicatorInput, Scale
from models.indicators.noise import (
    GB3096_2008,
    LeqAccumulator,
    NoiseLimit,
    NoiseParams,
    RollingLeq,
    leq,
    local_hour,
    noise_indicator,
)
from models.indicators.power import PowerParams, district_load, substation_load
from models.indicators.rolling import RollingMean, WindowMean
from models.indicators.score import (
    CityScore,
    Component,
    DistrictScore,
    DistrictShare,
    city_score,
    district_score,
)
from models.indicators.traffic import TrafficParams, segment_share, travel_time_index
from models.indicators.water import (
    PressureBand,
    WaterLevelParams,
    pressure_indicator,
    rate_of_rise,
    water_level_indicator,
)

__all__ = [
    "DEVICE_STATES",
    "GB3096_2008",
    "CityScore",
    "Component",
    "Coverage",
    "CrowdParams",
    "DeviceStatus",
    "DeviceTracker",
    "DistrictScore",
    "DistrictShare",
    "HealthParams",
    "Indicator",
    "InvalidIndicatorInput",
    "LeqAccumulator",
    "NoiseLimit",
    "NoiseParams",
    "PowerParams",
    "PressureBand",
    "RollingLeq",
    "RollingMean",
    "Scale",
    "TrafficParams",
    "WaterLevelParams",
    "WindowMean",
    "city_score",
    "coverage",
    "crowd_indicator",
    "density",
    "district_load",
    "district_score",
    "leq",
    "local_hour",
    "noise_indicator",
    "pressure_indicator",
    "rate_of_rise",
    "segment_share",
    "substation_load",
    "travel_time_index",
    "water_level_indicator",
]
