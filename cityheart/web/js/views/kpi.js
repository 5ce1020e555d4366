// KPI view: each department's response over a period (24 h, 7 d, 30 d) from GET /api/kpi:
// median times to acknowledge and resolve against the department's service levels, the share
// within them, the backlog, and a table with every number. Operators see every department,
// dispatchers their own; viewers none (the server says so, and the page shows its words).

import { h, setText } from "../dom.js";
import { barChart } from "../charts.js";
import { duration, percent } from "../format.js";

const PERIODS = [["24h", "24 h"], ["7d", "7 days"], ["30d", "30 days"]];
const REFRESH_MS = 30000;
const COLUMNS = [
  ["opened", "Opened", String], ["acknowledged", "Acknowledged", String], ["resolved", "Resolved", String],
  ["median_ack_s", "Median ack", duration], ["mean_ack_s", "Mean ack", duration],
  ["median_resolve_s", "Median resolve", duration], ["mean_resolve_s", "Mean resolve", duration],
  ["ack_within_sla", "Ack in SLA", percent], ["resolve_within_sla", "Resolve in SLA", percent],
  ["backlog", "Backlog", String], ["false_alarms", "False alarms", String],
];

export class KpiView {
  constructor({ config, session }, period = null) {
    this.session = session;
    this.period = PERIODS.some(([p]) => p === period) ? period : "7d";
    this.departments = new Map((config.departments || []).map((d) => [d.id, d]));
    this.status = h("p", { class: "kpi-status", role: "status" });
    this.charts = h("div", { class: "kpi-charts" });
    this.table = h("div", { class: "panel kpi-table-wrap" });
    const chooser = h("div", { class: "period", role: "group", "aria-label": "Period" },
      PERIODS.map(([value, text]) => h("a", { href: `#/kpi/${value}`, class: "period-choice", "data-period": value,
                                              "aria-current": value === this.period ? "true" : null }, text)));
    this.el = h("section", { class: "kpi-view", "data-view": "kpi", "data-period": this.period },
      h("header", { class: "board-head" }, h("h1", {}, "Response KPIs"), chooser, this.status),
      this.charts, this.table);
    this.timer = setInterval(() => this.load(), REFRESH_MS);
    this.rows = null;
    this.onResize = () => {
      clearTimeout(this.resizing);
      this.resizing = setTimeout(() => this.rows && this.draw(this.rows), 200);
    };
    window.addEventListener("resize", this.onResize);
    this.load();
  }

  async load() {
    const answer = await this.session.get(`api/kpi?since=${this.period}&until=now`);
    if (!answer.ok) {
      this.el.dataset.state = "refused";
      setText(this.status, answer.data.detail || `HTTP ${answer.status}`);
      this.charts.replaceChildren();
      this.table.replaceChildren();
      return;
    }
    const rows = answer.data.departments || [];
    this.el.dataset.state = "loaded";
    setText(this.status, rows.length ? `${rows.length} department${rows.length === 1 ? "" : "s"} · since ${this.period}` : "no departments");
    this.draw(rows);
  }

  name(id) {
    return this.departments.get(id)?.name || id;
  }

  draw(rows) {
    this.rows = rows;
    const sla = (id, key) => this.departments.get(id)?.[key];
    const timeRows = (key, slaKey) => rows.map((r) => ({
      label: this.name(r.department),
      bars: [{ value: r[key], series: "time",
               text: r[key] == null ? "no data" : `${duration(r[key])}${sla(r.department, slaKey) ? ` / SLA ${duration(sla(r.department, slaKey))}` : ""}` }],
      mark: sla(r.department, slaKey) ? { value: sla(r.department, slaKey), text: `SLA ${duration(sla(r.department, slaKey))}` } : null,
    }));
    const shareRows = rows.map((r) => ({
      label: this.name(r.department),
      bars: [{ value: r.ack_within_sla, text: `ack ${percent(r.ack_within_sla)}`, series: "ack" },
             { value: r.resolve_within_sla, text: `resolve ${percent(r.resolve_within_sla)}`, series: "resolve" }],
    }));
    const backlogRows = rows.map((r) => ({
      label: this.name(r.department),
      bars: [{ value: r.backlog, text: `${r.backlog ?? 0} open`, series: "backlog" },
             { value: r.false_alarms, text: `${r.false_alarms ?? 0} false alarm${r.false_alarms === 1 ? "" : "s"}`, series: "false" }],
    }));
    const specs = [
      ["Median time to acknowledge", "dashes: SLA", timeRows("median_ack_s", "sla_ack_s"), {}],
      ["Median time to resolve", "dashes: SLA", timeRows("median_resolve_s", "sla_resolve_s"), {}],
      ["Within SLA", "share of incidents", shareRows, { max: 1 }],
      ["Backlog and false alarms", "open now / in the period", backlogRows, {}],
    ];
    const panels = specs.map(([title]) => h("section", { class: "panel kpi-chart", "data-chart": title },
      h("h2", {}, title)));
    this.charts.replaceChildren(...panels);
    // drawn once the panels have their width: one SVG unit is a CSS pixel at 16 px a rem
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    specs.forEach(([title, hint, chartRows, options], n) => {
      const width = (panels[n].clientWidth - 2 * rem) * (16 / rem);
      panels[n].firstChild.append(h("span", { class: "hint" }, hint));
      panels[n].append(barChart(chartRows, { ...options, label: title, width }));
    });
    this.table.replaceChildren(h("table", { class: "kpi-table" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Department"), COLUMNS.map(([, title]) => h("th", { scope: "col" }, title)))),
      h("tbody", {}, rows.map((r) => h("tr", { "data-department": r.department },
        h("th", { scope: "row" }, this.name(r.department)),
        COLUMNS.map(([key, , fmt]) => h("td", { "data-key": key }, r[key] == null ? "—" : fmt(r[key]))))))));
  }

  update() {}

  destroy() {
    clearInterval(this.timer);
    clearTimeout(this.resizing);
    window.removeEventListener("resize", this.onResize);
  }
}
