// The city as the page knows it: latest vitals and indicators, short series for sparklines, and
// alerts. Applying a feed message is idempotent (a vital of a window already known replaces it,
// an alert id already known is ignored), so a replay or a fresh snapshot after a reconnect
// never doubles anything.

import { RANK_TEXT, indicatorLevel, isHealthScore, vitalLevel } from "./levels.js";
import { indicatorLabel, kindLabel, ms, number } from "./format.js";

export const CITY = "city";
const MAX_POINTS = 180;
const MAX_ALERTS = 500;

export class CityState {
  constructor(config) {
    this.config = config;
    this.vitals = new Map(); // "district/kind" -> latest vital
    this.indicators = new Map(); // "district/indicator" -> latest indicator record
    this.series = new Map(); // "v:district/kind" | "i:district/indicator" -> Map(end ms -> value)
    this.windows = new Map(); // kind -> Map(end ms -> Map(district -> vital)), for city series
    this.alerts = new Map(); // id -> alert
    this.history = new Map(); // a series key (or "c:kind" for the city) -> [{t, v}] from the database
    this.version = 0;
  }

  /** Take in one feed data message (vital, indicator or alert); others are ignored. */
  apply(message) {
    if (message.type === "vital") this.applyVital(message);
    else if (message.type === "indicator") this.applyIndicator(message);
    else if (message.type === "alert") this.applyAlert(message);
    else return false;
    this.version += 1;
    return true;
  }

  applyVital(vital) {
    const key = `${vital.district}/${vital.kind}`;
    keepLatest(this.vitals, key, vital);
    const end = ms(vital.window_end);
    const level = vitalLevel(this.config, vital);
    if (Number.isFinite(end) && typeof level.value === "number") {
      addPoint(this.series, `v:${key}`, end, level.value);
      let byEnd = this.windows.get(vital.kind);
      if (!byEnd) this.windows.set(vital.kind, (byEnd = new Map()));
      if (!byEnd.has(end)) byEnd.set(end, new Map());
      byEnd.get(end).set(vital.district, vital);
      trim(byEnd);
    }
  }

  applyIndicator(record) {
    const name = record.indicator || record.kind;
    const normal = { ...record, indicator: name };
    const key = `${record.district}/${name}`;
    keepLatest(this.indicators, key, normal);
    const end = ms(record.window_end);
    if (Number.isFinite(end) && typeof record.value === "number") {
      addPoint(this.series, `i:${key}`, end, record.value);
    }
  }

  applyAlert(alert) {
    const id = alert.id ?? [alert.rule, alert.district, alert.kind, alert.severity, alert.window_start].join("|");
    if (this.alerts.has(id)) return;
    this.alerts.set(id, { ...alert, id });
    if (this.alerts.size > MAX_ALERTS) {
      const oldest = this.sortedAlerts().at(-1);
      this.alerts.delete(oldest.id);
    }
  }

  /** Alerts newest first (by the event time that made them fire). */
  sortedAlerts(filter = () => true) {
    return [...this.alerts.values()].filter(filter).sort((a, b) => alertTime(b) - alertTime(a));
  }

  /**
   * Whether an alert still stands: no later window of its district and kind is back below the
   * warning level. Indicator rules watch a "value" or "score"; kind thresholds a window stat.
   */
  isOpen(alert) {
    const key = `${alert.district}/${alert.kind}`;
    const end = ms(alert.window_end);
    const onIndicator = alert.stat === "value" || alert.stat === "score" || !this.config.kinds[alert.kind];
    if (onIndicator) {
      const indicator = this.indicators.get(key);
      return !(indicator && ms(indicator.window_end) > end && indicatorLevel(this.config, indicator).rank < 2);
    }
    const vital = this.vitals.get(key);
    return !(vital && ms(vital.window_end) > end && vitalLevel(this.config, vital).rank < 2);
  }

  /** The latest vitals of a district, in config kind order. */
  districtVitals(district) {
    return Object.keys(this.config.kinds)
      .map((kind) => this.vitals.get(`${district}/${kind}`))
      .filter(Boolean);
  }

  /** The latest indicators of a district (or the city), health score first. */
  districtIndicators(district) {
    const order = Object.keys(this.config.indicators || {});
    const found = [...this.indicators.values()].filter((r) => r.district === district);
    const rank = (r) => (isHealthScore(r) ? -1 : order.indexOf(r.indicator) >= 0 ? order.indexOf(r.indicator) : 99);
    return found.sort((a, b) => rank(a) - rank(b));
  }

  /**
   * How a district (or the city) is doing: rank (its health score's, or critical when any of
   * its vitals or indicators is; the worst item's without a score), the label that says that
   * rank in words (the map writes it; it is never "good" on a critical district), the health
   * score record, the worst item, and every item with its level.
   */
  summary(district) {
    const items = [];
    for (const vital of this.districtVitals(district)) {
      const level = vitalLevel(this.config, vital);
      items.push({ source: "vital", id: vital.kind, name: kindLabel(this.config, vital.kind),
                   unit: vital.unit || this.config.kinds[vital.kind]?.unit, record: vital, ...level });
    }
    let score = null;
    for (const record of this.districtIndicators(district)) {
      const level = indicatorLevel(this.config, record);
      const item = { source: "indicator", id: record.indicator, name: indicatorLabel(record.indicator),
                     unit: record.unit, record, ...level };
      if (isHealthScore(record)) score = item;
      else items.push(item);
    }
    const worst = items.reduce((w, item) => (!w || item.badness > w.badness ? item : w), null);
    // the health score, except that a critical vital or indicator shows the district critical
    // even while its overall score still reads "fair" (lesser items only move the score)
    const itemRank = worst ? Math.max(...items.map((i) => i.rank)) : -1;
    const rank = score ? (itemRank >= 3 ? 3 : score.rank) : itemRank;
    return { district, rank, label: rankLabel(rank, score), score, worst, items };
  }

  /**
   * The district whose latest record of a kind (`v:` key) or indicator (`i:` key) is the
   * worst, with its level: what a city-wide mean would hide. Null without district records.
   */
  worstDistrict(key) {
    const [source, name] = [key.slice(0, 1), key.slice(2)];
    let worst = null;
    for (const district of this.config.districts) {
      const record = source === "v" ? this.vitals.get(`${district.id}/${name}`)
        : this.indicators.get(`${district.id}/${name}`);
      if (!record) continue;
      const level = source === "v" ? vitalLevel(this.config, record) : indicatorLevel(this.config, record);
      if (level.rank >= 0 && (!worst || level.badness > worst.badness)) {
        worst = { district: district.id, name: district.name, record, ...level };
      }
    }
    return worst;
  }

  /** [{t, v}] oldest first for a series key ("v:district/kind" or "i:district/indicator"). */
  points(key) {
    const points = this.series.get(key);
    const live = points ? [...points.entries()].sort((a, b) => a[0] - b[0]).map(([t, v]) => ({ t, v })) : [];
    return withHistory(this.history.get(key), live);
  }

  /** The database's points of a series ([{t, v}] oldest first): sparklines start with them. */
  setHistory(key, points) {
    this.history.set(key, points);
    this.version += 1;
  }

  /** A kind over the whole city: each district's latest window combined by the rule's stat. */
  cityVital(kind) {
    const latest = [];
    for (const district of this.config.districts) {
      const vital = this.vitals.get(`${district.id}/${kind}`);
      if (vital) latest.push(vital);
    }
    return combine(this.config, kind, latest);
  }

  /** [{t, v}] of cityVital per window, oldest first. */
  cityPoints(kind) {
    const byEnd = this.windows.get(kind);
    const live = [...(byEnd || new Map()).entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([t, districts]) => ({ t, v: combine(this.config, kind, [...districts.values()])?.value }))
      .filter((p) => typeof p.v === "number");
    return withHistory(this.history.get(`c:${kind}`), live);
  }
}

/** A summary's words for its rank: the score with its level, unless an item overrides it. */
function rankLabel(rank, score) {
  if (score && score.rank === rank) return `${number(score.value)} · ${score.label}`;
  if (score) return `${RANK_TEXT[rank]} · score ${number(score.value)}`;
  return rank >= 0 ? RANK_TEXT[rank] : "No data";
}

/** The database's points before the first live one, then the live ones. */
function withHistory(history, live) {
  if (!history?.length) return live;
  const first = live.length ? live[0].t : Infinity;
  return [...history.filter((p) => p.t < first), ...live];
}

/** A city-wide value of a kind from district vitals: count-weighted mean, or max/min. */
function combine(config, kind, vitals) {
  if (!vitals.length) return null;
  const stat = config.kinds[kind]?.thresholds?.stat || "mean";
  const values = vitals.map((v) => v[stat]).filter((x) => typeof x === "number");
  if (!values.length) return null;
  let value;
  if (stat === "max") value = Math.max(...values);
  else if (stat === "min") value = Math.min(...values);
  else {
    let total = 0;
    let weight = 0;
    for (const v of vitals) {
      if (typeof v[stat] !== "number") continue;
      const w = stat === "mean" ? Math.max(v.count || 1, 1) : 1;
      total += v[stat] * w;
      weight += w;
    }
    value = total / weight;
  }
  const devices = vitals.reduce((n, v) => n + (v.devices || 0), 0);
  const end = vitals.reduce((latest, v) => (v.window_end > latest ? v.window_end : latest), "");
  return { district: CITY, kind, [stat]: value, value, stat, devices, window_end: end, districts: vitals.length };
}

function keepLatest(map, key, record) {
  const known = map.get(key);
  if (!known || !(ms(known.window_end) > ms(record.window_end))) map.set(key, record);
}

function addPoint(series, key, end, value) {
  let points = series.get(key);
  if (!points) series.set(key, (points = new Map()));
  points.set(end, value);
  trim(points);
}

function trim(map) {
  if (map.size <= MAX_POINTS) return;
  const ends = [...map.keys()].sort((a, b) => a - b);
  for (const end of ends.slice(0, map.size - MAX_POINTS)) map.delete(end);
}

export function alertTime(alert) {
  const t = ms(alert.ts);
  if (Number.isFinite(t)) return t;
  const emitted = ms(alert.emitted_at);
  return Number.isFinite(emitted) ? emitted : ms(alert.time) || 0;
}
