// Incident board: one column per state (open, acknowledged, dispatched, resolved), worst
// severity first, live from the feed's incidents channel; #/incidents/<id> opens one incident
// beside the columns with its actions and timeline (views/incident_detail.js). Operators and
// dispatchers open incidents by hand with "New incident…" (views/report_form.js) and file
// reports with "File a report…" (views/report_filing.js). The maintenance windows not ended yet
// (api/suppressions) and the latest reports from the feed (operators only receive them) are
// listed under the heading.

import { h, setAttr, setText, syncList } from "../dom.js";
import { ago, words } from "../format.js";
import { BOARD_STATES, SEVERITIES } from "../incidents.js";
import { IncidentDetail, severityLevel } from "./incident_detail.js";
import { ReportFiling } from "./report_filing.js";
import { ReportForm } from "./report_form.js";

const RESOLVED_SHOWN = 30;
const REPORTS_SHOWN = 5;
const WINDOWS_EVERY_MS = 15000;
const STATE_TITLES = { open: "Open", acknowledged: "Acknowledged", dispatched: "Dispatched", resolved: "Resolved" };

export class IncidentBoardView {
  constructor({ config, incidents, session, clock, render }, selected = null) {
    this.incidents = incidents;
    this.session = session;
    this.names = new Map(config.districts.map((d) => [d.id, d.name]));
    this.departments = new Map((config.departments || []).map((d) => [d.id, d.name]));
    this.selected = selected;
    this.rendered = false;
    this.summary = h("span", { class: "board-summary" });
    this.scope = h("span", { class: "board-scope" });
    this.notice = h("p", { class: "board-notice", role: "status" });
    this.columns = BOARD_STATES.map((state) => {
      const count = h("span", { class: "count" });
      const severities = h("span", { class: "column-severities" });
      const list = h("ol", { class: "incident-list", "aria-label": `${STATE_TITLES[state]} incidents` });
      const el = h("section", { class: "panel board-column", "data-state": state },
        h("h2", {}, STATE_TITLES[state], count, severities), list);
      return { state, el, count, severities, list };
    });
    this.detail = selected
      ? new IncidentDetail({ config, incidents, session, clock, names: this.names,
                             departments: this.departments, onChanged: render }, selected)
      : null;
    this.report = new ReportForm({ config, incidents, session, onChanged: render });
    this.filing = new ReportFiling({ config, session });
    this.kinds = config.kinds || {};
    this.reports = h("ol", { class: "report-list", "aria-label": "Latest reports" });
    this.reportsPanel = h("section", { class: "board-reports", hidden: true },
      h("h2", {}, "Latest reports"), this.reports);
    this.clock = clock;
    this.windows = h("ul", { class: "board-windows", "aria-label": "Maintenance windows", hidden: true });
    this.loadWindows();
    this.windowTimer = setInterval(() => this.loadWindows(), WINDOWS_EVERY_MS);
    this.newButton = h("button", { type: "button", class: "action new-incident", hidden: true,
                                   onclick: () => this.report.toggle(this.report.el.hidden) },
      "New incident…");
    this.fileButton = h("button", { type: "button", class: "action file-report", hidden: true,
                                    onclick: () => this.filing.toggle(this.filing.el.hidden) },
      "File a report…");
    this.el = h("section", { class: "incidents-view", "data-view": "incidents",
                             "data-selected": selected ? "true" : null },
      h("header", { class: "board-head" }, h("h1", {}, "Incidents"), this.summary, this.scope,
        this.newButton, this.fileButton, this.notice, this.windows, this.reportsPanel,
        this.report.el, this.filing.el),
      h("div", { class: "board-columns" }, this.columns.map((c) => c.el)),
      this.detail ? this.detail.el : null);
  }

  update() {
    const active = BOARD_STATES.slice(0, 3).flatMap((s) => this.incidents.inState(s));
    const worst = SEVERITIES.find((s) => active.some((i) => i.severity === s));
    setText(this.summary, active.length
      ? `${active.length} active${worst ? ` · ${active.filter((i) => i.severity === worst).length} ${worst}` : ""}`
      : "no active incidents");
    this.updateScope();
    for (const column of this.columns) this.updateColumn(column);
    this.updateReports();
    if (this.detail) this.detail.update();
    this.rendered = true;
  }

  updateScope() {
    const me = this.session.me;
    this.newButton.hidden = !this.session.mayAct;
    this.fileButton.hidden = !this.session.mayAct;
    let scope = "";
    if (me?.role === "dispatcher") scope = `routed to ${this.departments.get(me.department) || me.department}`;
    else if (me?.role === "viewer") scope = "public summaries";
    setText(this.scope, scope);
    const problem = this.incidents.problem;
    let notice = "";
    if (problem?.status === 404) notice = "This server has no dispatch API: incidents arrive live from the feed only.";
    else if (problem) notice = `Incidents could not be loaded: ${problem.detail}`;
    setText(this.notice, notice);
    this.notice.hidden = !notice;
  }

  updateColumn({ state, count, severities, list }) {
    let items = this.incidents.inState(state);
    setText(count, String(items.length));
    const bySeverity = SEVERITIES.map((s) => [s, items.filter((i) => i.severity === s).length])
      .filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`);
    setText(severities, state === "resolved" ? "" : bySeverity.join(" · "));
    if (state === "resolved") items = items.slice(0, RESOLVED_SHOWN);
    syncList(list, items, (i) => i.id,
      () => {
        const card = incidentCard();
        if (this.rendered) {
          card.classList.add("fresh");
          card.addEventListener("animationend", () => card.classList.remove("fresh"), { once: true });
        }
        return card;
      },
      (card, incident) => this.updateCard(card, incident));
  }

  updateCard(card, incident) {
    setAttr(card, "data-incident-id", incident.id);
    setAttr(card, "data-state", incident.state);
    setAttr(card, "data-severity", incident.severity);
    setAttr(card, "data-level", severityLevel(incident.severity));
    setAttr(card, "aria-current", incident.id === this.selected ? "true" : null);
    const link = card.querySelector("a");
    setAttr(link, "href", `#/incidents/${encodeURIComponent(incident.id)}`);
    setText(card.querySelector(".inc-sev"), incident.severity || "");
    const since = incident.state === "resolved" ? incident.resolved_at : incident.opened_at;
    setText(card.querySelector(".inc-age"), ago(since));
    setText(card.querySelector(".inc-title"), incident.title || words(incident.kind));
    setText(card.querySelector(".inc-where"), this.names.get(incident.district) || incident.district || "");
    setText(card.querySelector(".inc-deps"),
      (incident.departments || []).map((d) => this.departments.get(d) || d).join(", "));
    const meta = [];
    if (typeof incident.alert_count === "number") meta.push(`${incident.alert_count} alert${incident.alert_count === 1 ? "" : "s"}`);
    if (incident.escalation_level > 0) meta.push(`escalated ×${incident.escalation_level}`);
    if (Array.isArray(incident.teams) && incident.teams.length) meta.push(`team ${incident.teams.join(", ")}`);
    if (incident.outcome) meta.push(words(incident.outcome));
    setText(card.querySelector(".inc-meta"), meta.join(" · "));
  }

  /** The newest reports the feed brought: severity, what, where, who, what they said. */
  updateReports() {
    const reports = this.incidents.latestReports().slice(0, REPORTS_SHOWN);
    this.reportsPanel.hidden = reports.length === 0;
    syncList(this.reports, reports, (r) => r.id,
      () => h("li", { class: "report-item" }),
      (el, r) => {
        setAttr(el, "data-report-id", r.id);
        setAttr(el, "data-severity", r.severity);
        const what = this.kinds[r.kind]?.name || words(r.kind);
        const where = this.names.get(r.district) || r.district;
        const when = this.clock.format(new Date(r.ts * 1000));
        setText(el, `${r.severity} · ${what} · ${where} · ${when} · ${r.reporter}: ${r.text}`);
      });
  }

  /** The maintenance windows not ended yet, for operators and dispatchers. */
  async loadWindows() {
    if (!this.session.mayAct) return;
    const answer = await this.session.get("api/suppressions");
    const windows = answer.ok ? answer.data.windows || [] : [];
    syncList(this.windows, windows, (w) => w.id,
      () => h("li", { class: "board-window" }),
      (el, w) => {
        setAttr(el, "data-window-id", w.id);
        const where = (w.districts || []).map((d) => this.names.get(d) || d).join(", ");
        const only = [...(w.devices || []), ...(w.kinds || []).map(words)].join(", ");
        const until = this.clock.format(new Date(w.end));
        setText(el, `Maintenance window: ${w.reason || w.id} · ${where}${only ? ` (${only})` : ""} · until ${until}`);
      });
    this.windows.hidden = windows.length === 0;
  }

  destroy() {
    clearInterval(this.windowTimer);
  }
}

function incidentCard() {
  return h("li", { class: "incident-card" },
    h("a", { class: "inc-link" },
      h("div", { class: "inc-top" }, h("span", { class: "inc-sev" }), h("span", { class: "inc-age" })),
      h("p", { class: "inc-title" }),
      h("div", { class: "inc-line" }, h("span", { class: "inc-where" }), h("span", { class: "inc-deps" })),
      h("div", { class: "inc-meta" })));
}
