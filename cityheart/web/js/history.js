// Sparklines that start with the past: the last hours of each series from the documented API,
// GET /api/v1/history/readings and /api/v1/history/indicators (1-minute buckets from the
// database, one page), before the feed's live windows take over.
//
// The overview needs every district's series of each kind (combined into the city's, as the
// live windows are: count-weighted mean, or max/min by the kind's threshold statistic) and the
// city's indicators; a district view its own indicators. Requests go a few at a time; a server
// without a history database or with the database away (503) ends the loading quietly.

import { CITY } from "./store.js";

const SINCE = "3h";
const AT_ONCE = 4;
const STEP_MS = 60 * 1000;   // resolution=minute: a bucket's point is drawn at its end

export class HistoryLoader {
  /** token(): the signed-in token, or null: history is checked and masked by role too. */
  constructor(config, state, onLoaded, token = () => null) {
    this.config = config;
    this.state = state;
    this.onLoaded = onLoaded;
    this.token = token;
    this.available = true;
    this.requested = new Set();
  }

  /** The city's kinds (from every district) and indicators. */
  async loadCity() {
    const districts = this.config.districts.map((d) => d.id);
    const kinds = Object.keys(this.config.kinds);
    const perKind = new Map(kinds.map((k) => [k, new Map()]));
    const jobs = [];
    for (const kind of kinds) {
      for (const district of districts) {
        jobs.push(async () => {
          const points = await this.fetch(district, kind, "readings");
          if (points) {
            perKind.get(kind).set(district, points);
            this.state.setHistory(`v:${district}/${kind}`, points.map((p) => ({ t: p.t, v: this.vitalValue(kind, p) })));
          }
        });
      }
    }
    jobs.push(...this.indicatorJobs(CITY));
    await this.run(jobs);
    for (const [kind, byDistrict] of perKind) {
      if (byDistrict.size) this.state.setHistory(`c:${kind}`, this.combine(kind, [...byDistrict.values()]));
    }
    this.onLoaded();
  }

  /** A district's indicators (its kinds come with the city's). */
  async loadDistrict(district) {
    await this.run(this.indicatorJobs(district));
    this.onLoaded();
  }

  indicatorJobs(district) {
    const names = new Set(["score", ...Object.keys(this.config.indicators || {})]);
    return [...names].map((name) => async () => {
      const points = await this.fetch(district, name, "indicators");
      if (points) this.state.setHistory(`i:${district}/${name}`, points.map((p) => ({ t: p.t, v: p.value })));
    });
  }

  /** Run jobs AT_ONCE at a time; stop starting new ones once the history is unavailable. */
  async run(jobs) {
    const queue = [...jobs];
    const worker = async () => {
      while (queue.length && this.available) await queue.shift()();
    };
    await Promise.all(Array.from({ length: AT_ONCE }, worker));
  }

  /** A series' points {t (bucket end, ms), value, min, max, count}, or null. */
  async fetch(district, name, source) {
    const key = `${source}:${district}/${name}`;
    if (!this.available || this.requested.has(key)) return null;
    this.requested.add(key);
    const what = source === "indicators" ? "indicator" : "kind";
    const query = new URLSearchParams({
      district, [what]: name, from: SINCE, resolution: "minute", limit: "1000",
    });
    let response;
    try {
      const token = this.token();
      const headers = token ? { Authorization: `Bearer ${token}` } : {};
      response = await fetch(`api/v1/history/${source}?${query}`, { cache: "no-store", headers });
    } catch {
      this.available = false;
      return null;
    }
    if (response.status === 404 || response.status >= 500) {
      this.available = false;
      return null;
    }
    if (!response.ok) return null;
    const document = await response.json();
    const points = (document.items || [])
      .map((p) => ({ t: Date.parse(p.ts) + STEP_MS, value: p.value, min: p.min, max: p.max, count: p.count }))
      .filter((p) => Number.isFinite(p.t) && typeof p.value === "number");
    return points.length ? points : null;
  }

  /** A bucket's value as the kind's threshold statistic reads it. */
  vitalValue(kind, point) {
    const stat = this.config.kinds[kind]?.thresholds?.stat || "mean";
    if (stat === "max" && typeof point.max === "number") return point.max;
    if (stat === "min" && typeof point.min === "number") return point.min;
    return point.value;
  }

  /** Every district's buckets of a kind as the city's series. */
  combine(kind, series) {
    const stat = this.config.kinds[kind]?.thresholds?.stat || "mean";
    const byT = new Map();
    for (const points of series) {
      for (const p of points) {
        if (!byT.has(p.t)) byT.set(p.t, []);
        byT.get(p.t).push(p);
      }
    }
    return [...byT.entries()].sort((a, b) => a[0] - b[0]).map(([t, points]) => {
      if (stat === "max") return { t, v: Math.max(...points.map((p) => this.vitalValue(kind, p))) };
      if (stat === "min") return { t, v: Math.min(...points.map((p) => this.vitalValue(kind, p))) };
      const weight = points.reduce((n, p) => n + Math.max(p.count || 1, 1), 0);
      return { t, v: points.reduce((sum, p) => sum + p.value * Math.max(p.count || 1, 1), 0) / weight };
    });
  }
}
