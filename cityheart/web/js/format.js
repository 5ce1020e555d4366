// How numbers, units, names and times read on the screen.

const KIND_LABELS = {
  pm25: "PM2.5", pm10: "PM10", no2: "NO₂", o3: "O₃", co: "CO", so2: "SO₂",
  noise: "Noise", traffic_speed: "Traffic speed", water_level: "Water level",
  power_load: "Power load", crowd_density: "Crowd density", rainfall: "Rainfall",
};

const INDICATOR_LABELS = {
  score: "Health score", health_score: "Health score", aqi: "AQI",
  aqi_instant: "AQI now", traffic: "Traffic", noise: "Noise Leq", water_level: "Water",
  water_pressure: "Water pressure", power: "Power grid", crowd: "Crowds",
  device_health: "Sensors",
};

/** A sensor kind's short name (config's long name as the fallback). */
export function kindLabel(config, kind) {
  return KIND_LABELS[kind] || config.kinds[kind]?.name || kind;
}

/** An indicator's display name. */
export function indicatorLabel(indicator) {
  return INDICATOR_LABELS[indicator] || indicator.replace(/_/g, " ");
}

/** A unit as people write it: ug/m3 -> µg/m³. */
export function unitLabel(unit) {
  if (!unit) return "";
  if (unit === "tti") return "TTI";
  return String(unit).replace(/^ug\//, "µg/").replace(/m3$/, "m³").replace(/m2$/, "m²");
}

/** A number with as many decimals as its size deserves. */
export function number(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  const size = Math.abs(value);
  const digits = size >= 100 ? 0 : size >= 10 ? 1 : 2;
  return value.toLocaleString("en-GB", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "HH:MM:SS" in the city's time zone. */
export function clockFormatter(timeZone) {
  const options = { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };
  try {
    return new Intl.DateTimeFormat("en-GB", { ...options, timeZone });
  } catch {
    return new Intl.DateTimeFormat("en-GB", options);
  }
}

/** Milliseconds since the epoch of an ISO time, or NaN. */
export function ms(iso) {
  return typeof iso === "string" ? Date.parse(iso) : NaN;
}

/** A duration in seconds as people say it: "45 s", "4 min 20 s", "2 h 5 min", "3 d 4 h". */
export function duration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return s % 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s / 60} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** "3 min ago" from an ISO time (empty when unknown). */
export function ago(iso, now = Date.now()) {
  const t = ms(iso);
  if (!Number.isFinite(t)) return "";
  const s = Math.max(0, (now - t) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** A share 0..1 as "87 %" ("—" when unknown). */
export function percent(share) {
  return typeof share === "number" && Number.isFinite(share) ? `${Math.round(share * 100)} %` : "—";
}

/** A word of an id: "false_alarm" -> "false alarm". */
export function words(id) {
  return typeof id === "string" ? id.replace(/[_-]+/g, " ") : "";
}
