"""The shape of cityheart's configuration: frozen, validated pydantic models, no I/O.

``settings.loader.load`` reads config.yaml and the environment into a :class:`Settings`;
every other layer takes the parts it needs as constructor arguments. Unknown keys are refused
(``extra="forbid"``) so a typo fails at start instead of being ignored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from settings.anomaly import AnomalySettings
from settings.auth import AuthSettings
from settings.database import DatabaseSettings
from settings.geography import BoundariesSettings, geography_of
from settings.incidents import IncidentSettings, incident_problems
from settings.indicator_checks import reference_problems as _indicator_problems
from settings.indicators import INDICATORS, IndicatorSettings, check_severity_order
from settings.ingest import IngestSettings
from settings.metrics import METRICS_COMPONENTS, MetricsSettings
from settings.notifications import NotificationSettings, notification_problems
from settings.oncall import OncallSchedule
from settings.open_data import OpenDataSettings
from settings.ports import Listener, port_clashes
from settings.sources import SourcesSettings

if TYPE_CHECKING:
    from models.geography import Geography

__all__ = [
    "AnomalySettings",
    "AuthSettings",
    "BoundariesSettings",
    "CityInfo",
    "DashboardSection",
    "DeviceAuthSettings",
    "District",
    "FeedSettings",
    "FlowSettings",
    "IndicatorSettings",
    "IngestSettings",
    "KafkaSettings",
    "KafkaTopics",
    "Kind",
    "MetricsSettings",
    "MqttSettings",
    "RateLimitSettings",
    "ReadingsBatchSettings",
    "ScenarioEvent",
    "Settings",
    "Simulation",
    "SimulatorSettings",
    "Thresholds",
]

_ID = r"^[a-z0-9][a-z0-9_-]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CityInfo(_Frozen):
    """The city's name, local time zone and (optionally) its district boundaries file."""

    name: str
    timezone: str = "UTC"
    boundaries: BoundariesSettings | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"{value!r} is not an IANA time zone (such as 'Europe/Berlin' or 'UTC')"
            raise ValueError(msg) from None
        return value


Point = tuple[float, float]


class District(_Frozen):
    """A district: its id (used in topics and keys), name, centroid and polygon ring."""

    id: Annotated[str, Field(pattern=_ID)]
    name: str
    centroid: Point
    polygon: Annotated[list[Point], Field(min_length=4)]

    @field_validator("centroid", "polygon")
    @classmethod
    def _within_wgs84(cls, value: Point | list[Point]) -> Point | list[Point]:
        points = [value] if isinstance(value, tuple) else value
        for lon, lat in points:
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                msg = f"[{lon}, {lat}] is not a WGS84 [lon, lat] point"
                raise ValueError(msg)
        return value

    @field_validator("polygon")
    @classmethod
    def _closed_ring(cls, ring: list[Point]) -> list[Point]:
        if ring[0] != ring[-1]:
            msg = f"polygon must be closed: first point {list(ring[0])} != last {list(ring[-1])}"
            raise ValueError(msg)
        return ring


class Thresholds(_Frozen):
    """The threshold rule of a kind: levels for warning and critical on a window statistic."""

    direction: Literal["above", "below"]
    stat: Literal["mean", "min", "max", "last"] = "mean"
    warning: float
    critical: float

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        check_severity_order(self.direction, self.warning, self.critical)
        return self


class Simulation(_Frozen):
    """How the simulator draws a kind's values: a daily cosine plus Gaussian noise."""

    base: float
    amplitude: float = 0.0
    peak_hour: Annotated[float, Field(ge=0, lt=24)] = 12.0
    noise_sd: Annotated[float, Field(ge=0)] = 0.0


class Kind(_Frozen):
    """A sensor kind: canonical unit, accepted units, valid range, cadence, thresholds."""

    name: str
    unit: str
    convert: dict[str, tuple[float, float]] = Field(default_factory=dict)
    range: tuple[float, float]
    interval_s: Annotated[float, Field(gt=0)]
    thresholds: Thresholds
    simulation: Simulation

    @field_validator("range")
    @classmethod
    def _range_ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            msg = f"range must be [min, max] with min < max, got {list(value)}"
            raise ValueError(msg)
        return value


class DeviceAuthSettings(_Frozen):
    """Per-device MQTT accounts: each device writes only its own topic (``cityheart devices``).

    ``registry`` is the device registry file, relative to config.yaml's directory. ``gateway``
    names an account that may write every device topic, for the simulator of ``cityheart up``
    (null: none, only registered devices publish).
    """

    enabled: bool = False
    registry: str = "devices.yaml"
    gateway: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] | None = (
        "cityheart-gateway"
    )


class RateLimitSettings(_Frozen):
    """The bridge's per-device token bucket (``mqtt.rate_limit``); see connectors/rate_limit.py."""

    enabled: bool = True
    per_device_per_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 5.0
    burst: Annotated[int, Field(ge=1)] = 100
    report_every_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 5.0
    max_devices: Annotated[int, Field(ge=2)] = 100_000


class MqttSettings(_Frozen):
    """Where devices publish and how the bridge subscribes."""

    url: str = "mqtt://127.0.0.1:1883"
    embedded: bool = True
    embedded_broker: Literal["auto", "mosquitto", "amqtt"] = "auto"
    topic_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")] = "city"
    bridge_client_id: str = "cityheart-bridge"
    max_payload_bytes: Annotated[int, Field(gt=0)] = 4096
    max_pack_bytes: Annotated[int, Field(gt=0)] = 65536
    """The largest SenML pack a gateway may send on ``<prefix>/gateway/<gateway_id>``."""
    rate_limit: RateLimitSettings = RateLimitSettings()
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    password: SecretStr | None = None
    device_auth: DeviceAuthSettings = DeviceAuthSettings()
    bridge_processes: Annotated[int, Field(ge=1)] = 1
    """Bridge processes sharing the subscription (MQTT 5 shared subscription when > 1)."""
    bridge_group: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")] = "cityheart-bridge"
    """The shared subscription's group: ``$share/<group>/<prefix>/+/+/+``."""

    @field_validator("bridge_processes")
    @classmethod
    def _shared_needs_mqtt5(cls, value: int, info: ValidationInfo) -> int:
        protocol = info.data.get("protocol")
        if value > 1 and protocol not in (None, "5"):
            msg = (
                f"{value} bridge processes share the subscription through an MQTT 5 shared "
                f"subscription, which MQTT {protocol} lacks: set mqtt.protocol to \"5\" or "
                "mqtt.bridge_processes to 1"
            )
            raise ValueError(msg)
        return value

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            msg = f"{value!r} is not an mqtt://host:port URL"
            raise ValueError(msg)
        return value

    @property
    def host(self) -> str:
        """The broker's host name."""
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """The broker's TCP port (1883 when the URL names none)."""
        return urlsplit(self.url).port or 1883


class KafkaTopics(_Frozen):
    """Names of the Kafka topics cityheart reads and writes."""

    readings: str = "readings"
    dead_letter: str = "readings.dlq"
    rejections: str | None = None
    """The bridge's out-of-range rejections, for device health (None: ``<readings>.rejected``)."""
    vitals: str = "vitals"
    alerts: str = "alerts"
    incidents: str = "incidents"
    commands: str = "incident-commands"
    command_results: str = "incident-command-results"
    dispatch_prefix: str = "dispatch."
    reports: str = "reports"
    """Reports from people and systems (``POST /reports``): kept, shown, joined to incidents."""

    @property
    def rejected(self) -> str:
        """The rejections topic: ``rejections``, or ``<readings>.rejected``."""
        return self.rejections or f"{self.readings}.rejected"

    def dispatch(self, department: str) -> str:
        """The dispatch queue topic of ``department`` (its incident events, key = incident id)."""
        return f"{self.dispatch_prefix}{department}"

    def every(self, departments: Iterable[str] = ()) -> list[str]:
        """Every topic cityheart uses: the fixed ones, then one dispatch queue per department."""
        fixed = [self.readings, self.dead_letter, self.rejected, self.vitals, self.alerts,
                 self.incidents, self.commands, self.command_results, self.reports]
        return fixed + [self.dispatch(d) for d in departments]


class ReadingsBatchSettings(_Frozen):
    """How the bridge packs readings into ``readings`` records (``kafka.readings_batch``; see
    connectors/batcher.py): a record per partition holds the readings accepted within
    ``linger_ms``, at most ``max_readings`` of them and about ``max_bytes``."""

    linger_ms: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)] = 50.0
    max_readings: Annotated[int, Field(ge=1)] = 1000
    max_bytes: Annotated[int, Field(ge=1024, le=1_000_000)] = 262_144


class KafkaSettings(_Frozen):
    """The Kafka-compatible broker."""

    bootstrap: str = "127.0.0.1:9092"
    embedded: bool = True
    storage: Literal["durable", "memory"] = "memory"
    """The embedded broker's storage: memory, or durable (files in ``data_dir``)."""
    data_dir: str = "var/kafka"
    partitions: Annotated[int, Field(ge=1)] = 1
    topics: KafkaTopics = KafkaTopics()
    readings_batch: ReadingsBatchSettings = ReadingsBatchSettings()

    @field_validator("bootstrap")
    @classmethod
    def _host_port_list(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                msg = f"{server!r} is not host:port"
                raise ValueError(msg)
        return value

    @property
    def port(self) -> int:
        """The port of the first bootstrap server (the one an embedded broker listens on)."""
        return int(self.bootstrap.split(",")[0].rpartition(":")[2])


class FlowSettings(_Frozen):
    """The Bytewax dataflow's windows, workers, processes and recovery."""

    window_s: Annotated[float, Field(gt=0)] = 10.0
    late_allowance_s: Annotated[float, Field(ge=0)] = 1.0
    max_future_s: Annotated[float, Field(ge=0)] = 300.0
    max_clock_lead_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    workers: Annotated[int, Field(ge=1)] = 1
    processes: Annotated[int, Field(ge=1)] = 1
    recovery_dir: str | None = None
    recovery_partitions: Annotated[int, Field(ge=1)] = 1
    snapshot_interval_s: Annotated[float, Field(gt=0)] = 10.0
    backup_interval_s: Annotated[float, Field(ge=0)] = 0.0


class FeedSettings(_Frozen):
    """The websocket push feed."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8765
    path: Annotated[str, Field(pattern=r"^/")] = "/feed"
    backlog: Annotated[int, Field(ge=0)] = 2000

    @property
    def url(self) -> str:
        """The ws:// URL clients connect to."""
        return f"ws://{self.host}:{self.port}{self.path}"


class DashboardSection(_Frozen):
    """Where the command-centre web page is served (``cityheart dashboard``)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8766
    tls_certfile: str | None = None
    """PEM certificate (chain) to serve HTTPS with; with ``tls_keyfile``. None: plain HTTP."""
    tls_keyfile: str | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> DashboardSection:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            msg = "tls_certfile and tls_keyfile go together: give both or neither"
            raise ValueError(msg)
        return self

    @property
    def url(self) -> str:
        """The http:// (or https://) URL of the page."""
        scheme = "https" if self.tls_certfile else "http"
        return f"{scheme}://{self.host}:{self.port}/"


class ScenarioEvent(_Frozen):
    """One scripted event of a simulator scenario."""

    type: Literal["episode", "stuck", "silent"]
    district: str
    kind: str
    start_s: Annotated[float, Field(ge=0)] = 0.0
    duration_s: Annotated[float, Field(gt=0)] | None = None
    ramp_s: Annotated[float, Field(ge=0)] = 0.0
    factor: Annotated[float, Field(ge=0)] = 1.0


def _calm_only() -> dict[str, list[ScenarioEvent]]:
    return {"calm": []}


class SimulatorSettings(_Frozen):
    """Defaults of the device simulator and its scripted scenarios."""

    devices: Annotated[int, Field(ge=1)] = 216
    rate: Annotated[float, Field(gt=0)] = 100.0
    seed: int = 7
    scenario: str = "calm"
    scenarios: dict[str, list[ScenarioEvent]] = Field(default_factory=_calm_only)


class Settings(_Frozen):
    """The whole configuration of one cityheart deployment."""

    city: CityInfo
    districts: Annotated[list[District], Field(min_length=1)]
    kinds: Annotated[dict[str, Kind], Field(min_length=1)]
    mqtt: MqttSettings = MqttSettings()
    kafka: KafkaSettings = KafkaSettings()
    flow: FlowSettings = FlowSettings()
    feed: FeedSettings = FeedSettings()
    dashboard: DashboardSection = DashboardSection()
    simulator: SimulatorSettings = SimulatorSettings()
    indicators: IndicatorSettings = IndicatorSettings()
    database: DatabaseSettings = DatabaseSettings()
    anomaly: AnomalySettings = AnomalySettings()
    auth: AuthSettings = AuthSettings()
    incidents: IncidentSettings = IncidentSettings()
    metrics: MetricsSettings = MetricsSettings()
    open_data: OpenDataSettings = OpenDataSettings()
    ingest: IngestSettings = IngestSettings()
    notifications: NotificationSettings = NotificationSettings()
    oncall: tuple[OncallSchedule, ...] = ()
    sources: SourcesSettings = SourcesSettings()
    _geography: Geography | None = PrivateAttr(default=None)

    @property
    def geography(self) -> Geography:
        """The districts' geometries: from city.boundaries, else the hand-drawn polygons.

        The hand-drawn ones are built on each call (not cached, so equality stays that of
        the fields); build a ``models.geography.Locator`` once from it and keep that.
        """
        if self._geography is None:
            return geography_of(self.districts)
        return self._geography

    @field_validator("kinds")
    @classmethod
    def _kind_ids(cls, kinds: dict[str, Kind]) -> dict[str, Kind]:
        for kind_id in kinds:
            if not kind_id or not kind_id.replace("_", "a").isalnum() or not kind_id.islower():
                msg = f"kind id {kind_id!r} must be lower-case letters, digits and underscores"
                raise ValueError(msg)
        return kinds

    def reference_problems(self) -> list[tuple[str, str]]:
        """(dotted key, reason) for every cross-reference that does not resolve."""
        problems: list[tuple[str, str]] = []
        ids = [d.id for d in self.districts]
        for number, district_id in enumerate(ids):
            if ids.index(district_id) != number:
                problems.append((f"districts[{number}].id", f"{district_id!r} is repeated"))
        if self.simulator.scenario not in self.simulator.scenarios:
            problems.append((
                "simulator.scenario",
                f"{self.simulator.scenario!r} is not one of {sorted(self.simulator.scenarios)}",
            ))
        for name, events in self.simulator.scenarios.items():
            for number, event in enumerate(events):
                where = f"simulator.scenarios.{name}[{number}]"
                if event.district not in ids:
                    reason = f"{event.district!r} is not a district id"
                    problems.append((f"{where}.district", reason))
                if event.kind not in self.kinds:
                    problems.append((f"{where}.kind", f"{event.kind!r} is not a kind id"))
        problems += _indicator_problems(
            self.indicators, kinds=self.kinds, district_ids=ids, window_s=self.flow.window_s
        )
        problems += incident_problems(
            self.incidents, alert_kinds={*self.kinds, *INDICATORS}, district_ids=ids
        )
        oidc = self.auth.oidc
        departments = [d.id for d in self.incidents.departments]
        for value, department in (oidc.departments.items() if oidc else ()):
            if department not in departments:
                problems.append((f"auth.oidc.departments.{value}",
                                 f"{department!r} is not one of {departments}"))
        for name, grant in self.auth.grants.items():
            where = f"auth.grants.{name}"
            for number, district in enumerate(grant.districts or ()):
                if district not in ids:
                    problems.append((f"{where}.districts[{number}]",
                                     f"{district!r} is not one of {ids}"))
            known = [*self.kinds, *INDICATORS]
            for number, kind in enumerate(grant.kinds or ()):
                if kind not in known:
                    problems.append((f"{where}.kinds[{number}]", f"{kind!r} is not one of {known}"))
            for number, question in enumerate(grant.questions):
                if question.indicator not in INDICATORS:
                    problems.append((f"{where}.questions[{number}].indicator",
                                     f"{question.indicator!r} is not one of {list(INDICATORS)}"))
            if grant.detail == "derived" and not grant.questions:
                problems.append((f"{where}.questions",
                                 "a derived-only grant needs at least one question"))
        problems += notification_problems(self.notifications, self.oncall, self.incidents,
                                          alert_kinds={*self.kinds, *INDICATORS})
        return problems + port_clashes(self.listeners())

    def listeners(self) -> list[Listener]:
        """The ports this deployment's servers listen on, by config key (embedded ones only)."""
        found = [Listener("feed.port", self.feed.port),
                 Listener("dashboard.port", self.dashboard.port),
                 Listener("ingest.port", self.ingest.port)]
        if self.mqtt.embedded:
            found.append(Listener("mqtt.url", self.mqtt.port))
        if self.kafka.embedded:
            found.append(Listener("kafka.bootstrap", self.kafka.port))
        if self.database.embedded:
            found.append(Listener("database.url", self.database.port))
        if self.metrics.enabled and self.metrics.port is None:
            processes = {"bridge": self.mqtt.bridge_processes, "flow": self.flow.processes}
            found += [
                Listener(f"metrics.ports.{name}", self.metrics.port_of(name),
                         processes.get(name, 1))
                for name in METRICS_COMPONENTS
            ]
        return found

    def district_ids(self) -> list[str]:
        """The district ids in config order."""
        return [d.id for d in self.districts]

    def kafka_topic_names(self) -> list[str]:
        """Every Kafka topic this city uses, including each department's dispatch queue."""
        return self.kafka.topics.every(d.id for d in self.incidents.departments)
