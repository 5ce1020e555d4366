// "New incident": the board's form for an incident people open by hand, from a phone call or a
// field report. It posts to api/incidents (the server checks the role, the kind, the district
// and the severity, and the flow routes the incident like an alert's); the new incident is
// taken in at once and opened beside the board. Shown to operators and dispatchers only.

import { h, setAttr, setText } from "../dom.js";
import { words } from "../format.js";

const SEVERITIES = ["warning", "critical", "emergency"];

export class ReportForm {
  /** ctx: {config, incidents, session, onChanged}. */
  constructor(ctx) {
    this.ctx = ctx;
    this.message = h("p", { class: "action-message", role: "status", "aria-live": "polite" });
    this.form = this.build();
    this.el = h("section", { class: "panel report-form", "data-form": "report", hidden: true },
      h("h2", {}, "New incident"), this.form, this.message);
  }

  build() {
    const { config } = this.ctx;
    const kinds = Object.entries(config.kinds || {}).map(([id, kind]) => [id, kind.name || words(id)]);
    const option = ([value, label]) => h("option", { value }, label);
    const form = h("form", { class: "action-form" },
      h("label", {}, "What", h("select", { name: "kind", required: true },
        h("option", { value: "" }, "choose…"), kinds.map(option))),
      h("label", {}, "Title", h("input", { name: "title", required: true, autocomplete: "off",
                                           maxlength: 200 })),
      h("label", {}, "Severity", h("select", { name: "severity", required: true },
        SEVERITIES.map((s) => option([s, s])))),
      h("label", {}, "District", h("select", { name: "district" },
        h("option", { value: "" }, "from the position…"),
        config.districts.map((d) => option([d.id, d.name])))),
      h("div", { class: "form-row" },
        h("label", {}, "Latitude", h("input", { name: "lat", type: "number", step: "any" })),
        h("label", {}, "Longitude", h("input", { name: "lon", type: "number", step: "any" }))),
      h("label", {}, "What was reported (optional)", h("textarea", { name: "description", rows: 2 })),
      h("label", {}, "Reported by (optional)", h("input", { name: "reporter", autocomplete: "off" })),
      h("div", { class: "form-buttons" },
        h("button", { type: "submit", class: "primary" }, "Open incident"),
        h("button", { type: "button", onclick: () => this.toggle(false) }, "Cancel")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send(new FormData(form));
    });
    return form;
  }

  toggle(open) {
    this.el.hidden = !open;
    if (open) this.form.querySelector("select, input")?.focus();
  }

  async send(data) {
    const body = {};
    for (const name of ["kind", "title", "severity", "district", "description", "reporter"]) {
      const value = String(data.get(name) ?? "").trim();
      if (value) body[name] = value;
    }
    for (const name of ["lat", "lon"]) {
      const value = String(data.get(name) ?? "").trim();
      if (value) body[name] = Number(value);
    }
    this.say("Opening…", "pending");
    const answer = await this.ctx.session.post("api/incidents", body);
    if (!answer.ok) {
      this.say(answer.data.detail || answer.data.error || `HTTP ${answer.status}`, "error");
      return;
    }
    const { incident, event } = answer.data;
    if (incident) this.ctx.incidents.put(incident, true);
    if (event) this.ctx.incidents.addEvent(event);
    this.form.reset();
    this.say(`Opened ${incident ? incident.id : "the incident"}.`, "ok");
    this.toggle(false);
    this.ctx.onChanged();
    if (incident) location.hash = `#/incidents/${encodeURIComponent(incident.id)}`;
  }

  say(text, kind) {
    setText(this.message, text);
    setAttr(this.message, "data-kind", kind || null);
  }
}
