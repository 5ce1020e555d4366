// One incident on the board's side: its facts, the buttons of the actions this caller may take
// (with a small form for those that need a team, a text or an outcome), the handover buttons
// (assign, transfer, add a department, each with its form), what the server said about the
// last action, and the incident's event timeline.
//
// Fields a role may not see are simply absent from what the server sends (a viewer gets no
// teams, no actors, no comments); nothing is shown for them, not even an empty label.

import { h, setAttr, setText, syncList } from "../dom.js";
import { ago, words } from "../format.js";
import { rankName } from "../levels.js";
import { severityRank } from "../incidents.js";

const ACTION_LABELS = {
  acknowledge: "Acknowledge", dispatch: "Dispatch…", comment: "Comment…", resolve: "Resolve…",
  close: "Close", reopen: "Reopen",
};
const EVENT_LABELS = {
  open: "opened", alert: "alert", escalate: "escalated", acknowledge: "acknowledged",
  dispatch: "dispatched", comment: "comment", resolve: "resolved", close: "closed", reopen: "reopened",
  restore: "restored from history", notify: "notification", assign: "assigned",
  transfer: "transferred", add_department: "department added", link: "linked", merge: "merged",
};
const NEEDS_FORM = new Set(["dispatch", "comment", "resolve", "assign", "transfer", "add_department"]);
const HANDOVER_LABELS = { assign: "Assign…", transfer: "Transfer…", add_department: "Add department…" };

/** The CSS level of a severity (warning orange, critical and worse red). */
export function severityLevel(severity) {
  const rank = severityRank(severity);
  return rank >= 3 ? rankName(3) : rank === 2 ? rankName(2) : rankName(1);
}

export class IncidentDetail {
  /** ctx: {config, incidents, session, clock, names, departments, onChanged}. */
  constructor(ctx, id) {
    this.ctx = ctx;
    this.id = id;
    this.form = null; // the action whose form is open
    this.busy = false;
    this.title = h("h2", { class: "incident-title" });
    this.facts = h("dl", { class: "incident-facts" });
    this.buttons = h("div", { class: "incident-actions", role: "group", "aria-label": "Actions" });
    this.handover = h("div", { class: "incident-handover", role: "group", "aria-label": "Hand over" });
    this.formSlot = h("div", { class: "action-form-slot" });
    this.message = h("p", { class: "action-message", role: "status", "aria-live": "polite" });
    this.events = h("ol", { class: "timeline" });
    this.el = h("section", { class: "panel incident-detail", "data-incident-id": id },
      h("a", { class: "back", href: "#/incidents" }, "× Close"),
      this.title, this.facts, this.buttons, this.handover, this.formSlot, this.message,
      h("h3", {}, "Timeline"), this.events);
    this.fetchTimeline();
  }

  async fetchTimeline() {
    const answer = await this.ctx.session.get(`api/incidents/${encodeURIComponent(this.id)}`);
    if (answer.ok) {
      this.ctx.incidents.loadOne(answer.data);
    } else if (answer.status !== 404 || !this.ctx.incidents.incidents.has(this.id)) {
      this.say(answer.data.detail, "error");
    }
    this.ctx.onChanged();
  }

  update() {
    const { incidents, session } = this.ctx;
    const incident = incidents.incidents.get(this.id);
    if (!incident) {
      setText(this.title, `Incident ${this.id}`);
      return;
    }
    setAttr(this.el, "data-state", incident.state);
    setAttr(this.el, "data-level", severityLevel(incident.severity));
    setText(this.title, incident.title || words(incident.kind));
    this.updateFacts(incident);
    // the page offers the actions it has a button for (linking and merging: the CLI and the API)
    const permitted = this.busy ? [] : incidents.allowed(session.me, incident);
    const allowed = permitted.filter((action) => action in ACTION_LABELS || action in HANDOVER_LABELS);
    const button = (labels) => (action) => h("button", {
      type: "button", class: "action", "data-action": action, onclick: () => this.choose(action) },
    labels[action] || words(action));
    const pressed = (el, action) => setAttr(el, "aria-pressed", this.form === action ? "true" : null);
    syncList(this.buttons, allowed.filter((a) => a in ACTION_LABELS), (a) => a, button(ACTION_LABELS), pressed);
    syncList(this.handover, allowed.filter((a) => a in HANDOVER_LABELS), (a) => a, button(HANDOVER_LABELS), pressed);
    if (this.form && !allowed.includes(this.form) && !this.busy) this.closeForm();
    this.updateTimeline();
  }

  updateFacts(incident) {
    const { names, departments, clock } = this.ctx;
    const time = (iso) => (iso ? `${clock.format(new Date(iso))} · ${ago(iso)}` : null);
    const rows = [
      ["State", words(incident.state)],
      ["Severity", incident.severity],
      ["District", (incident.districts?.length ? incident.districts : [incident.district])
        .map((d) => names.get(d) || d).join(", ")],
      ["Place", typeof incident.lat === "number" && typeof incident.lon === "number"
        ? `${incident.lat.toFixed(5)}, ${incident.lon.toFixed(5)} · within ${Math.round(incident.radius_m || 0)} m`
        : null],
      ["Departments", (incident.departments || []).map((d) => departments.get(d) || d).join(", ")],
      ["Opened", time(incident.opened_at)],
      ["Acknowledged", time(incident.acknowledged_at)],
      ["Resolved", time(incident.resolved_at)],
      ["Outcome", incident.outcome ? words(incident.outcome) : null],
      ["Teams", Array.isArray(incident.teams) && incident.teams.length ? incident.teams.join(", ") : null],
      ["Assigned to", incident.assignee || null],
      ["Reported by", incident.reporter || null],
      ["Report", incident.description || null],
      ["Merged into", incident.merged_into || null],
      ["Linked", Array.isArray(incident.links) && incident.links.length ? incident.links.join(", ") : null],
      ["Alerts", typeof incident.alert_count === "number" ? String(incident.alert_count) : null],
      ["Escalation", incident.escalation_level > 0 ? `level ${incident.escalation_level}` : null],
    ].filter(([, value]) => value);
    syncList(this.facts, rows, ([name]) => name,
      ([name]) => h("div", { class: "fact", "data-fact": name.toLowerCase() }, h("dt", {}, name), h("dd", {})),
      (el, [, value]) => setText(el.querySelector("dd"), value));
  }

  updateTimeline() {
    const events = this.ctx.incidents.timeline(this.id).slice().reverse();
    syncList(this.events, events, (e) => e.sequence,
      () => h("li", { class: "event" }, h("time", { class: "event-time" }), h("span", { class: "event-what" }),
              h("span", { class: "event-who" }), h("p", { class: "event-comment" })),
      (el, event) => this.updateEvent(el, event));
  }

  updateEvent(el, event) {
    setAttr(el, "data-action", event.action);
    setText(el.querySelector(".event-time"), event.ts ? this.ctx.clock.format(new Date(event.ts)) : "");
    const d = event.details || {};
    const extra = [d.team, d.outcome && words(d.outcome), d.severity, d.assignee, d.department,
                   d.incident, d.into, d.source === "report" && "by hand",
                   event.action === "escalate" && typeof d.level === "number" ? `level ${d.level}` : null,
                   ...(event.action === "notify"
                     ? [d.status, d.recipient && `to ${d.recipient}`, d.channel && `by ${d.channel}`]
                     : [])];
    setText(el.querySelector(".event-what"),
      [EVENT_LABELS[event.action] || words(event.action), ...extra.filter(Boolean)].join(" · "));
    setText(el.querySelector(".event-who"), event.actor && event.actor !== "system" ? event.actor : "");
    const comment = el.querySelector(".event-comment");
    setText(comment, typeof event.comment === "string" ? event.comment : "");
    comment.hidden = !event.comment;
  }

  choose(action) {
    this.say("", "");
    if (!NEEDS_FORM.has(action)) {
      this.send({ action });
      return;
    }
    this.form = action;
    const departments = [...this.ctx.departments.entries()];
    this.formSlot.replaceChildren(actionForm(action, (body) => this.send(body), () => this.closeForm(),
                                             departments));
    this.formSlot.querySelector("input, textarea, select")?.focus();
    this.update();
  }

  closeForm() {
    this.form = null;
    this.formSlot.replaceChildren();
  }

  async send(body) {
    this.busy = true;
    this.say(`Sending ${words(body.action)}…`, "pending");
    this.update();
    const answer = await this.ctx.session.post(`api/incidents/${encodeURIComponent(this.id)}/actions`, body);
    this.busy = false;
    if (answer.ok) {
      if (answer.data.incident) this.ctx.incidents.put(answer.data.incident, true);
      if (answer.data.event) this.ctx.incidents.addEvent(answer.data.event);
      this.closeForm();
      this.say(`Done: ${EVENT_LABELS[body.action] || words(body.action)}.`, "ok");
      if (!answer.data.incident) { // handed over to another department: no longer ours to see
        this.ctx.incidents.incidents.delete(this.id);
        this.ctx.incidents.version += 1;
        this.say(`Done: ${EVENT_LABELS[body.action] || words(body.action)}; it is no longer routed to you.`, "ok");
      }
    } else {
      this.say(answer.data.detail || answer.data.error || `HTTP ${answer.status}`, "error");
    }
    this.ctx.onChanged();
  }

  say(text, kind) {
    setText(this.message, text);
    setAttr(this.message, "data-kind", kind || null);
    setAttr(this.message, "role", kind === "error" ? "alert" : "status");
  }
}

/** The form of an action that needs more than a click. */
function actionForm(action, submit, cancel, departments = []) {
  const fields = [];
  if (action === "assign") {
    fields.push(h("label", {}, "Assign to", h("input", { name: "target", required: true, autocomplete: "off" })));
  }
  if (action === "transfer" || action === "add_department") {
    fields.push(h("label", {}, action === "transfer" ? "Transfer to" : "Also route to",
      h("select", { name: "target", required: true }, h("option", { value: "" }, "choose…"),
        departments.map(([id, name]) => h("option", { value: id }, name)))));
  }
  if (action === "dispatch") {
    fields.push(h("label", {}, "Team or unit", h("input", { name: "team", required: true, autocomplete: "off" })));
  }
  if (action === "resolve") {
    fields.push(h("label", {}, "Outcome",
      h("select", { name: "outcome", required: true },
        h("option", { value: "" }, "choose…"),
        h("option", { value: "confirmed" }, "confirmed"),
        h("option", { value: "false_alarm" }, "false alarm"))));
  }
  const comment = action === "comment" || action === "add_department"; // (a reason)
  fields.push(h("label", {}, action === "add_department" ? "Reason" : comment ? "Comment" : "Comment (optional)",
    h("textarea", { name: "comment", rows: 2, required: comment || null })));
  const form = h("form", { class: "action-form", "data-form": action },
    ...fields,
    h("div", { class: "form-buttons" },
      h("button", { type: "submit", class: "primary" }, `Send ${words(action)}`),
      h("button", { type: "button", onclick: cancel }, "Cancel")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { action };
    for (const name of ["team", "outcome", "target", "comment"]) {
      const value = String(data.get(name) ?? "").trim();
      if (value) body[name] = value;
    }
    submit(body);
  });
  return form;
}

