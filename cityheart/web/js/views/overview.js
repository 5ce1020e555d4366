// City overview: the vital signs strip, the city map (districts, devices, incidents: LiveMap)
// and the live alert ticker.

import { h, setText, syncList } from "../dom.js";
import { LiveMap } from "../livemap.js";
import { indicatorLabel, kindLabel, number, unitLabel } from "../format.js";
import { indicatorLevel, isHealthScore, vitalLevel } from "../levels.js";
import { CITY } from "../store.js";
import { alertRow, flashNew, tile, updateAlertRow, updateTile } from "../widgets.js";

const TICKER_ROWS = 60;

export class OverviewView {
  constructor({ config, state, clock, navigate, incidents, session }) {
    this.config = config;
    this.state = state;
    this.clock = clock;
    this.map = new LiveMap({ config, state, incidents, session, clock,
                             onSelect: (id) => navigate(`#/district/${id}`) });
    this.strip = h("div", { class: "strip-tiles" });
    this.ticker = h("ol", { class: "ticker", "aria-live": "polite" });
    this.alertCount = h("span", { class: "count" });
    this.rendered = false;
    this.names = new Map(config.districts.map((d) => [d.id, d.name]));
    this.el = h("section", { class: "overview", "data-view": "overview" },
      h("section", { class: "strip", "aria-label": "City vital signs" }, this.strip),
      h("section", { class: "panel map-panel", "aria-label": "Districts" },
        h("h2", {}, "Districts ", h("span", { class: "hint" }, "select one for detail · devices and incidents")),
        h("div", { class: "map-wrap" }, this.map.el),
        legend()),
      h("section", { class: "panel alerts-panel", "aria-label": "Alerts" },
        h("h2", {}, "Alerts ", this.alertCount),
        this.ticker));
  }

  update() {
    this.map.update(this.state);
    const tiles = this.tiles();
    syncList(this.strip, tiles, (item) => item.key, () => tile(), updateTile);
    this.balance(tiles.length);
    this.updateTicker();
    this.rendered = true;
  }

  /** As many columns as fit, then rows of (nearly) equal length: no lone tile on a row. */
  balance(count) {
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    const fit = Math.max(1, Math.floor((this.strip.clientWidth + 0.5 * rem) / (8.2 * rem)));
    const rows = Math.ceil(count / fit);
    const columns = `repeat(${Math.max(1, Math.ceil(count / rows))}, minmax(0, 1fr))`;
    if (this.strip.style.gridTemplateColumns !== columns) this.strip.style.gridTemplateColumns = columns;
  }

  tiles() {
    const { config, state } = this;
    const items = [];
    for (const record of state.districtIndicators(CITY)) {
      const level = indicatorLevel(config, record);
      items.push({ key: `i:${record.indicator}`, name: isHealthScore(record) ? "City health" : indicatorLabel(record.indicator),
                   value: record.value, unit: record.unit, rank: level.rank, level: level.label,
                   points: state.points(`i:${CITY}/${record.indicator}`),
                   worst: worstLine(state, `i:${record.indicator}`, record.unit),
                   meta: record.confident === false ? "unconfirmed" : "whole city" });
    }
    for (const kind of Object.keys(config.kinds)) {
      const city = state.cityVital(kind);
      const thresholds = config.kinds[kind].thresholds;
      const level = city ? vitalLevel(config, city) : { rank: -1, label: "no data" };
      items.push({ key: `v:${kind}`, name: kindLabel(config, kind), value: city?.value,
                   unit: config.kinds[kind].unit, rank: level.rank, level: level.label,
                   points: state.cityPoints(kind), threshold: thresholds?.warning,
                   title: config.kinds[kind].name,
                   worst: city ? worstLine(state, `v:${kind}`, config.kinds[kind].unit) : null,
                   meta: city ? `${thresholds.stat} · ${city.devices} devices` : "waiting for data" });
    }
    return items;
  }

  updateTicker() {
    const alerts = this.state.sortedAlerts().slice(0, TICKER_ROWS);
    const open = alerts.filter((a) => this.state.isOpen(a)).length;
    setText(this.alertCount, alerts.length ? `${open} open` : "none yet");
    const context = { clock: this.clock, districtName: (id) => this.names.get(id) || id };
    syncList(this.ticker, alerts, (a) => a.id,
      () => {
        const row = alertRow();
        if (this.rendered) flashNew(row);
        return row;
      },
      (row, alert) => updateAlertRow(row, alert, { ...context, open: this.state.isOpen(alert) }));
  }

  destroy() {
    this.map.destroy();
  }
}

/** "worst Industrial East 250 µg/m³ · critical": the district a city-wide value averages away. */
function worstLine(state, key, unit) {
  const worst = state.worstDistrict(key);
  if (!worst) return null;
  const text = `worst ${worst.name} ${number(worst.value)} ${unitLabel(unit)}`.trim();
  return { rank: worst.rank, text: `${text} · ${worst.label}` };
}

function legend() {
  const entries = [["ok", "normal / good"], ["watch", "elevated / fair"], ["warning", "warning / poor"],
                   ["critical", "critical"], ["none", "no data"]];
  return h("ul", { class: "legend", "aria-label": "Legend" },
    entries.map(([level, text]) => h("li", { "data-level": level }, h("span", { class: "swatch" }), text)),
    [["ok", "device ok"], ["out_of_range", "out of range"], ["stuck", "stuck"], ["silent", "silent"]].map(([state, text]) =>
      h("li", { class: "legend-device" }, h("span", { class: "device-dot", "data-state": state }), text)));
}
