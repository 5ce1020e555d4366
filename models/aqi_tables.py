"""The breakpoint tables of the two air quality index standards, transcribed from their sources.

Each table maps one pollutant at one averaging period (a NAME such as ``pm25_24h``) to segments
``(C_lo, C_hi, I_lo, I_hi)``: a concentration in ``[C_lo, C_hi]`` gets the index
``I_lo + (I_hi - I_lo) * (C - C_lo) / (C_hi - C_lo)``. :mod:`models.aqi` does the arithmetic;
this module only holds the numbers, as decimal strings exactly as the sources print them.

Sources:

- **HJ 633-2012** (China, *Technical Regulation on Ambient Air Quality Index (on trial)*),
  Table 1 (IAQI and the corresponding pollutant concentration limits) with its notes: the
  1-hour SO2 table stops at 800 ug/m3 (above it no IAQI is computed from the 1-hour value and
  SO2 is reported from the 24-hour value) and the 8-hour O3 table stops at 800 ug/m3 (above it
  O3 is reported from the 1-hour value). Units ug/m3, CO in mg/m3.
- **US EPA AQI**, 40 CFR Part 58 Appendix G, Table 2, as revised by the PM NAAQS final rule
  (89 FR 16202, 6 March 2024, effective 6 May 2024), and the EPA *Technical Assistance Document
  for the Reporting of Daily Air Quality - the AQI* (EPA-454/B-24-002, May 2024), Table 6. The
  2024 revision lowered the PM2.5 breakpoints and merged the two Hazardous rows (301-400,
  401-500) into one Hazardous row 301-500 for every pollutant. Footnotes: 8-hour O3 does not
  define AQI values of 301 and above (1-hour O3 does); 1-hour O3 defines no AQI below 101
  (below 0.125 ppm the 8-hour value is used); 1-hour SO2 does not define AQI values above 200
  (the 24-hour value does, and the 24-hour table starts at 305 ppb).
"""

from __future__ import annotations

__all__ = ["EPA", "EPA_PLACES", "HJ633", "UNITS"]

Row = tuple[str, str, int, int]
"""One segment: (C_lo, C_hi, I_lo, I_hi), concentrations as printed in the source."""

HJ633: dict[str, tuple[Row, ...]] = {
    "so2_24h": (
        ("0", "50", 0, 50), ("50", "150", 50, 100), ("150", "475", 100, 150),
        ("475", "800", 150, 200), ("800", "1600", 200, 300), ("1600", "2100", 300, 400),
        ("2100", "2620", 400, 500),
    ),
    "so2_1h": (
        ("0", "150", 0, 50), ("150", "500", 50, 100), ("500", "650", 100, 150),
        ("650", "800", 150, 200),
    ),
    "no2_24h": (
        ("0", "40", 0, 50), ("40", "80", 50, 100), ("80", "180", 100, 150),
        ("180", "280", 150, 200), ("280", "565", 200, 300), ("565", "750", 300, 400),
        ("750", "940", 400, 500),
    ),
    "no2_1h": (
        ("0", "100", 0, 50), ("100", "200", 50, 100), ("200", "700", 100, 150),
        ("700", "1200", 150, 200), ("1200", "2340", 200, 300), ("2340", "3090", 300, 400),
        ("3090", "3840", 400, 500),
    ),
    "pm10_24h": (
        ("0", "50", 0, 50), ("50", "150", 50, 100), ("150", "250", 100, 150),
        ("250", "350", 150, 200), ("350", "420", 200, 300), ("420", "500", 300, 400),
        ("500", "600", 400, 500),
    ),
    "co_24h": (
        ("0", "2", 0, 50), ("2", "4", 50, 100), ("4", "14", 100, 150), ("14", "24", 150, 200),
        ("24", "36", 200, 300), ("36", "48", 300, 400), ("48", "60", 400, 500),
    ),
    "co_1h": (
        ("0", "5", 0, 50), ("5", "10", 50, 100), ("10", "35", 100, 150),
        ("35", "60", 150, 200), ("60", "90", 200, 300), ("90", "120", 300, 400),
        ("120", "150", 400, 500),
    ),
    "o3_1h": (
        ("0", "160", 0, 50), ("160", "200", 50, 100), ("200", "300", 100, 150),
        ("300", "400", 150, 200), ("400", "800", 200, 300), ("800", "1000", 300, 400),
        ("1000", "1200", 400, 500),
    ),
    "o3_8h": (
        ("0", "100", 0, 50), ("100", "160", 50, 100), ("160", "215", 100, 150),
        ("215", "265", 150, 200), ("265", "800", 200, 300),
    ),
    "pm25_24h": (
        ("0", "35", 0, 50), ("35", "75", 50, 100), ("75", "115", 100, 150),
        ("115", "150", 150, 200), ("150", "250", 200, 300), ("250", "350", 300, 400),
        ("350", "500", 400, 500),
    ),
}
"""HJ 633-2012 Table 1. Segments share their end points; every value is an integer."""

EPA: dict[str, tuple[Row, ...]] = {
    "o3_8h": (
        ("0.000", "0.054", 0, 50), ("0.055", "0.070", 51, 100), ("0.071", "0.085", 101, 150),
        ("0.086", "0.105", 151, 200), ("0.106", "0.200", 201, 300),
    ),
    "o3_1h": (
        ("0.125", "0.164", 101, 150), ("0.165", "0.204", 151, 200),
        ("0.205", "0.404", 201, 300), ("0.405", "0.604", 301, 500),
    ),
    "pm25_24h": (
        ("0.0", "9.0", 0, 50), ("9.1", "35.4", 51, 100), ("35.5", "55.4", 101, 150),
        ("55.5", "125.4", 151, 200), ("125.5", "225.4", 201, 300), ("225.5", "325.4", 301, 500),
    ),
    "pm10_24h": (
        ("0", "54", 0, 50), ("55", "154", 51, 100), ("155", "254", 101, 150),
        ("255", "354", 151, 200), ("355", "424", 201, 300), ("425", "604", 301, 500),
    ),
    "co_8h": (
        ("0.0", "4.4", 0, 50), ("4.5", "9.4", 51, 100), ("9.5", "12.4", 101, 150),
        ("12.5", "15.4", 151, 200), ("15.5", "30.4", 201, 300), ("30.5", "50.4", 301, 500),
    ),
    "so2_1h": (
        ("0", "35", 0, 50), ("36", "75", 51, 100), ("76", "185", 101, 150),
        ("186", "304", 151, 200),
    ),
    "so2_24h": (("305", "604", 201, 300), ("605", "1004", 301, 500)),
    "no2_1h": (
        ("0", "53", 0, 50), ("54", "100", 51, 100), ("101", "360", 101, 150),
        ("361", "649", 151, 200), ("650", "1249", 201, 300), ("1250", "2049", 301, 500),
    ),
}
"""40 CFR 58 Appendix G Table 2 (2024). Segments leave a gap of one unit of the last decimal
place; concentrations are truncated to that place first, so every value lands in one segment."""

EPA_PLACES: dict[str, int] = {
    "o3_8h": 3, "o3_1h": 3, "pm25_24h": 1, "pm10_24h": 0, "co_8h": 1, "so2_1h": 0,
    "so2_24h": 0, "no2_1h": 0,
}
"""Decimal places EPA truncates each concentration to before the lookup."""

UNITS: dict[str, dict[str, str]] = {
    "hj633": {
        "pm25_24h": "ug/m3", "pm10_24h": "ug/m3", "o3_1h": "ug/m3", "o3_8h": "ug/m3",
        "co_1h": "mg/m3", "co_24h": "mg/m3", "so2_1h": "ug/m3", "so2_24h": "ug/m3",
        "no2_1h": "ug/m3", "no2_24h": "ug/m3",
    },
    "epa": {
        "pm25_24h": "ug/m3", "pm10_24h": "ug/m3", "o3_1h": "ppm", "o3_8h": "ppm",
        "co_8h": "ppm", "so2_1h": "ppb", "so2_24h": "ppb", "no2_1h": "ppb",
    },
}
"""The unit each standard's table is written in, per NAME."""
