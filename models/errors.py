"""The exceptions cityheart raises, one tree for the whole product.

- CityheartError
    - ConfigError: config.yaml or an environment override is wrong (names the key)
    - InvalidReading: a device payload cannot become a reading (carries the bytes and reason)
    - ConnectorError: a server (MQTT, Kafka, PostgreSQL, websocket) failed or refused us
"""

from __future__ import annotations

__all__ = ["CityheartError", "ConfigError", "ConnectorError", "InvalidReading"]


class CityheartError(Exception):
    """Base class of every error cityheart raises on purpose."""


class ConfigError(CityheartError):
    """Raised when the configuration has a missing, unknown or invalid key.

    ``key`` is the dotted path of the offending key (``kinds.pm25.range``), ``source`` the
    file or environment variable it came from.
    """

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(source, key, reason)
        self.source = source
        self.key = key
        self.reason = reason

    def __str__(self) -> str:
        where = f"{self.source}: {self.key}" if self.key else self.source
        return f"{where}: {self.reason}"


class InvalidReading(CityheartError):
    """Raised when a device payload cannot become a reading.

    ``reason`` is a short machine-readable code (``invalid_json``, ``missing_field``,
    ``unknown_unit``, ``not_finite``, ``out_of_range``, ``future_timestamp``, ...) and
    ``detail`` says what exactly was wrong, naming the field and the value.
    """

    def __init__(self, payload: bytes, reason: str, detail: str) -> None:
        super().__init__(payload, reason, detail)
        self.payload = payload
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"invalid reading ({self.reason}): {self.detail}"


class ConnectorError(CityheartError):
    """Raised when a server cityheart talks to fails or refuses a request.

    ``service`` names the server (``mqtt``, ``kafka``, ...) and ``address`` where it was.
    """

    def __init__(self, service: str, address: str, reason: str) -> None:
        super().__init__(service, address, reason)
        self.service = service
        self.address = address
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.service} at {self.address}: {self.reason}"
