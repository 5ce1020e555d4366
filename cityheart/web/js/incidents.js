// Incidents as the page knows them: the API's list first, then every `incident` message of the
// feed's incidents channel. A record replaces the known one only when its `sequence` (the
// number of the incident's last event) is not older, so a replay, a snapshot after a reconnect
// or an API answer that lags behind the feed never moves an incident back.
//
// Which buttons to show: the API gives `allowed_actions` per caller with each incident; it holds
// for the sequence it came with. For a newer sequence (a live update) the page works them out
// the way the server does (alerts/access.py): the actions the state permits, all of them for
// operators, acknowledge/dispatch/comment/resolve and the handovers but merging for a dispatcher
// of a department the incident is routed to, none for viewers. The server checks again and has the last word.
//
// The channel's `report` messages (reports from people and systems; the feed sends them to
// operators only, since they name people) are kept too, the newest few, for the board's list.

export const BOARD_STATES = ["open", "acknowledged", "dispatched", "resolved"];
export const SEVERITIES = ["emergency", "critical", "warning", "info"];
const TRANSITIONS = {
  acknowledge: ["open"],
  dispatch: ["acknowledged", "dispatched"],
  comment: ["open", "acknowledged", "dispatched", "resolved", "closed"],
  resolve: ["acknowledged", "dispatched"],
  close: ["resolved"],
  reopen: ["resolved", "closed"],
  assign: ["open", "acknowledged", "dispatched"],
  transfer: ["open", "acknowledged", "dispatched"],
  add_department: ["open", "acknowledged", "dispatched"],
  link: ["open", "acknowledged", "dispatched"],
  merge: ["open", "acknowledged", "dispatched"],
};
const DISPATCHER_ACTIONS = ["acknowledge", "dispatch", "comment", "resolve", "assign", "transfer",
                            "add_department", "link"];
const MAX_EVENTS = 200; // per incident, for the timeline of live events
const MAX_REPORTS = 50; // the newest reports kept for the board

/** The actions the role may take on an incident in its state (as alerts/access.py says). */
export function possibleActions(me, incident) {
  if (!me || me.role === "viewer") return [];
  const permitted = Object.keys(TRANSITIONS).filter((a) => TRANSITIONS[a].includes(incident.state));
  if (me.role === "operator") return permitted;
  const routed = (incident.departments || []).includes(me.department);
  return me.role === "dispatcher" && routed ? permitted.filter((a) => DISPATCHER_ACTIONS.includes(a)) : [];
}

/** How bad a severity is: higher is worse (unknown ones rank lowest). */
export function severityRank(severity) {
  const at = SEVERITIES.indexOf(severity);
  return at < 0 ? -1 : SEVERITIES.length - at;
}

export class IncidentState {
  constructor() {
    this.incidents = new Map(); // id -> incident record (+ allowed_actions, allowedAt)
    this.events = new Map(); // incident id -> Map(sequence -> event)
    this.reports = new Map(); // report id -> report record
    this.loaded = false; // the API's list arrived
    this.problem = null; // why the API's list did not: {status, detail}
    this.version = 0;
  }

  /** A feed data message: `incident`, `incident_event` and `report` are taken in, others ignored. */
  apply(message) {
    if (message.type === "incident") return this.put(strip(message), false);
    if (message.type === "incident_event") return this.addEvent(strip(message));
    if (message.type === "report") return this.addReport(strip(message));
    return false;
  }

  /** A report record (a replay of a known id changes nothing). */
  addReport(report) {
    if (!report || typeof report.id !== "string" || this.reports.has(report.id)) return false;
    this.reports.set(report.id, report);
    if (this.reports.size > MAX_REPORTS) {
      const oldest = [...this.reports.values()].sort((a, b) => a.ts - b.ts)[0];
      this.reports.delete(oldest.id);
    }
    this.version += 1;
    return true;
  }

  /** The reports known, newest first. */
  latestReports() {
    return [...this.reports.values()].sort((a, b) => b.ts - a.ts);
  }

  /** An incident record; `fromApi` records carry the caller's allowed_actions. */
  put(record, fromApi) {
    if (!record || typeof record.id !== "string") return false;
    const known = this.incidents.get(record.id);
    const sequence = Number(record.sequence) || 0;
    if (known && (Number(known.sequence) || 0) > sequence) return false;
    const next = { ...record };
    if (fromApi && Array.isArray(record.allowed_actions)) {
      next.allowedAt = sequence;
    } else if (known && known.allowedAt !== undefined) {
      next.allowed_actions = known.allowed_actions;
      next.allowedAt = known.allowedAt;
    }
    this.incidents.set(record.id, next);
    this.version += 1;
    return true;
  }

  addEvent(event) {
    if (!event || typeof event.incident_id !== "string") return false;
    let events = this.events.get(event.incident_id);
    if (!events) this.events.set(event.incident_id, (events = new Map()));
    const sequence = Number(event.sequence) || 0;
    if (events.has(sequence)) return false;
    events.set(sequence, event);
    if (events.size > MAX_EVENTS) events.delete(Math.min(...events.keys()));
    this.version += 1;
    return true;
  }

  /** The API's answer to GET /api/incidents. */
  load(answer) {
    if (!answer.ok) {
      this.problem = { status: answer.status, detail: answer.data.detail };
      this.version += 1;
      return;
    }
    for (const record of answer.data.incidents || []) this.put(record, true);
    this.loaded = true;
    this.problem = null;
    this.version += 1;
  }

  /** The API's answer to GET /api/incidents/ID: the incident and its whole timeline. */
  loadOne(document) {
    this.put(document.incident, true);
    for (const event of document.events || []) this.addEvent(event);
  }

  /** The buttons for an incident: the API's when current, else worked out for `me`. */
  allowed(me, incident) {
    if (incident.allowedAt !== undefined && incident.allowedAt === (Number(incident.sequence) || 0)) {
      return incident.allowed_actions;
    }
    return possibleActions(me, incident);
  }

  /** Incidents in a board state, worst first, then the longest waiting (resolved: newest). */
  inState(state) {
    const found = [...this.incidents.values()].filter((i) => i.state === state);
    const time = (i) => Date.parse(state === "resolved" ? i.resolved_at || i.updated_at : i.opened_at) || 0;
    return found.sort((a, b) => (state === "resolved"
      ? time(b) - time(a)
      : severityRank(b.severity) - severityRank(a.severity) || time(a) - time(b)));
  }

  /** An incident's events known so far, oldest first. */
  timeline(id) {
    const events = this.events.get(id);
    return events ? [...events.values()].sort((a, b) => a.sequence - b.sequence) : [];
  }
}

/** A feed message without the feed's own fields (type, seq, time). */
function strip(message) {
  const { type: _type, seq: _seq, time: _time, ...record } = message;
  return record;
}
