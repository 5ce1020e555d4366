// District view: every sensor kind and indicator with its latest value, level and trend; the
// devices reporting; the district's open alerts.

import { h, setAttr, setText, syncList } from "../dom.js";
import { CityMap } from "../citymap.js";
import { kindLabel, number, unitLabel } from "../format.js";
import { rankName } from "../levels.js";
import { alertRow, flashNew, tile, updateAlertRow, updateTile } from "../widgets.js";

const RANK_WORDS = ["normal", "elevated", "warning", "critical"];
const STAT_TEXT = { mean: "mean", max: "max", min: "min", last: "last" };

export class DistrictView {
  constructor({ config, state, clock, navigate, history }, districtId) {
    this.config = config;
    this.state = state;
    this.clock = clock;
    this.district = config.districts.find((d) => d.id === districtId);
    this.names = new Map(config.districts.map((d) => [d.id, d.name]));
    if (!this.district) {
      this.el = h("section", { class: "missing" }, h("p", {}, `There is no district "${districtId}". `),
        h("a", { href: "#/" }, "Back to the city"));
      this.update = () => {};
      return;
    }
    history?.loadDistrict(this.district.id);
    this.map = new CityMap(config, { compact: true, onSelect: (id) => navigate(`#/district/${id}`) });
    this.badge = h("span", { class: "badge" });
    this.score = h("span", { class: "head-score" });
    this.devices = h("span", { class: "head-devices", "data-role": "devices" });
    this.worst = h("span", { class: "head-worst" });
    this.cards = h("div", { class: "cards" });
    this.alerts = h("ol", { class: "ticker district-alerts" });
    this.alertCount = h("span", { class: "count" });
    this.rendered = false;
    this.el = h("section", { class: "district-view", "data-view": "district", "data-district": this.district.id },
      h("header", { class: "district-head panel" },
        h("a", { class: "back", href: "#/" }, "← City"),
        h("h1", {}, this.district.name),
        this.badge, this.score, this.devices, this.worst),
      h("section", { class: "cards-panel", "aria-label": "Indicators and vital signs" }, this.cards),
      h("aside", { class: "panel district-side" },
        h("h2", {}, "Open alerts ", this.alertCount),
        this.alerts,
        h("h2", {}, "Districts"),
        h("div", { class: "map-wrap" }, this.map.el)));
  }

  update() {
    const { state, district } = this;
    const summary = state.summary(district.id);
    setAttr(this.el, "data-level", rankName(summary.rank));
    setAttr(this.badge, "data-level", rankName(summary.rank));
    setText(this.badge, summary.rank >= 0 ? RANK_WORDS[summary.rank] : "no data");
    setText(this.score, summary.score ? `Health ${number(summary.score.value)} (${summary.score.label})` : "");
    const vitals = state.districtVitals(district.id);
    const devices = vitals.reduce((n, v) => n + (v.devices || 0), 0);
    setAttr(this.devices, "data-count", devices);
    setText(this.devices, `${devices} device${devices === 1 ? "" : "s"} reporting · ${vitals.length} of ${Object.keys(this.config.kinds).length} kinds`);
    const worst = summary.worst;
    setText(this.worst, worst && worst.rank > 0 ? `Worst: ${worst.name} ${number(worst.value)} ${unitLabel(worst.unit)} (${worst.label})` : "");
    syncList(this.cards, this.items(summary), (item) => item.key, () => tile("tile card"), updateTile);
    this.map.update(state, district.id);
    this.updateAlerts();
    this.rendered = true;
  }

  items(summary) {
    const { config, state, district } = this;
    const items = [];
    const indicators = summary.score ? [summary.score, ...summary.items] : summary.items;
    for (const item of indicators.filter((i) => i.source === "indicator")) {
      const r = item.record;
      const parts = [];
      if (typeof r.score === "number" && item !== summary.score) parts.push(`score ${number(r.score)}`);
      if (r.confident === false) parts.push("unconfirmed");
      if (typeof r.coverage === "number") parts.push(`coverage ${Math.round(r.coverage * 100)} %`);
      parts.push(this.clock.format(new Date(r.window_end)));
      items.push({ key: `i:${item.id}`, name: item.name, value: item.value, unit: item.unit, rank: item.rank,
                   level: item.label, points: state.points(`i:${district.id}/${item.id}`), meta: parts.join(" · ") });
    }
    for (const kind of Object.keys(config.kinds)) {
      const item = summary.items.find((i) => i.source === "vital" && i.id === kind);
      const t = config.kinds[kind].thresholds;
      const base = { key: `v:${kind}`, name: kindLabel(config, kind), unit: config.kinds[kind].unit,
                     threshold: t?.warning, title: config.kinds[kind].name };
      if (!item) {
        items.push({ ...base, rank: -1, meta: "no readings yet", points: [] });
        continue;
      }
      const v = item.record;
      const meta = `${STAT_TEXT[item.stat] || item.stat} of ${v.count} · ${v.devices} device${v.devices === 1 ? "" : "s"} · ${this.clock.format(new Date(v.window_end))}`;
      items.push({ ...base, value: item.value, rank: item.rank, level: item.label, meta,
                   points: state.points(`v:${district.id}/${kind}`) });
    }
    return items;
  }

  updateAlerts() {
    const open = this.state.sortedAlerts((a) => a.district === this.district.id && this.state.isOpen(a));
    setText(this.alertCount, open.length ? String(open.length) : "none");
    const context = { clock: this.clock, districtName: (id) => this.names.get(id) || id, open: true };
    syncList(this.alerts, open, (a) => a.id,
      () => {
        const row = alertRow();
        if (this.rendered) flashNew(row);
        return row;
      },
      (row, alert) => updateAlertRow(row, alert, context));
  }

  destroy() {}
}
