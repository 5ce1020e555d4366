// "File a report": the board's form for a report from the field or a call (what, how bad,
// where, when, links to photos or clips). The place is a click on the map (lat/lon) or a
// district; the time defaults to now; the reporter is whoever is signed in (the server takes
// it from the token). It posts to api/reports, which checks the role and the kind and then
// validates and produces the report as POST /reports does, answering once Kafka has it; the
// report then arrives on the feed (listed under the board) and, when warning or critical, joins
// or opens an incident as an alert does. Shown to operators and dispatchers only.

import { h, setAttr, setText } from "../dom.js";
import { words } from "../format.js";

const L = window.L;
const SEVERITIES = ["warning", "critical", "info"];

export class ReportFiling {
  /** ctx: {config, session}. */
  constructor(ctx) {
    this.ctx = ctx;
    this.message = h("p", { class: "action-message", role: "status", "aria-live": "polite" });
    this.reporter = h("p", { class: "filing-reporter" });
    this.mapEl = h("div", { class: "filing-map", "aria-label": "Click where it was seen" });
    this.form = this.build();
    this.el = h("section", { class: "panel report-form filing-form", "data-form": "file-report",
                             hidden: true },
      h("h2", {}, "File a report"), this.reporter, this.form, this.message);
    this.map = null;
    this.marker = null;
  }

  build() {
    const { config } = this.ctx;
    const kinds = Object.entries(config.kinds || {}).map(([id, kind]) => [id, kind.name || words(id)]);
    const option = ([value, label]) => h("option", { value }, label);
    const form = h("form", { class: "action-form" },
      // any lower-case identifier: the city's sensor kinds are suggested (a report of one joins
      // that kind's incidents); another (pothole, fire) opens its own
      h("label", {}, "What", h("input", { name: "kind", required: true, list: "report-kinds",
                                          pattern: "[a-z][a-z0-9_]*", autocomplete: "off",
                                          placeholder: "pm25, pothole, flooding…" })),
      h("datalist", { id: "report-kinds" }, kinds.map(option)),
      h("label", {}, "What was seen or said", h("textarea", { name: "text", rows: 2, required: true,
                                                              maxlength: 4000 })),
      h("label", {}, "Severity", h("select", { name: "severity" },
        SEVERITIES.map((s) => option([s, s])))),
      h("label", {}, "District", h("select", { name: "district" },
        h("option", { value: "" }, "from the position on the map…"),
        config.districts.map((d) => option([d.id, d.name])))),
      this.mapEl,
      h("div", { class: "form-row" },
        h("label", {}, "Latitude", h("input", { name: "lat", type: "number", step: "any" })),
        h("label", {}, "Longitude", h("input", { name: "lon", type: "number", step: "any" }))),
      h("label", {}, "When (empty: now)", h("input", { name: "time", type: "datetime-local", step: 1 })),
      h("label", {}, "Attachments (links, one a line)",
        h("textarea", { name: "attachments", rows: 2, placeholder: "https://…" })),
      h("div", { class: "form-buttons" },
        h("button", { type: "submit", class: "primary" }, "File report"),
        h("button", { type: "button", onclick: () => this.toggle(false) }, "Cancel")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send(new FormData(form));
    });
    // a district chosen by name replaces a clicked position, and the other way round
    form.elements.district.addEventListener("change", () => {
      if (form.elements.district.value) this.place(null);
    });
    return form;
  }

  toggle(open) {
    this.el.hidden = !open;
    if (!open) return;
    const me = this.ctx.session.me;
    setText(this.reporter, me ? `Reported by ${me.sub} (you)` : "");
    this.showMap();
    this.form.querySelector("select")?.focus();
  }

  /** The map to click on: the districts' boundaries, drawn the first time the form opens. */
  async showMap() {
    if (!L) return;
    if (this.map) {
      this.map.invalidateSize(false);
      return;
    }
    this.map = L.map(this.mapEl, { zoomSnap: 0.25, attributionControl: false });
    this.map.on("click", (event) => this.place(event.latlng));
    const response = await fetch("api/geo/districts", { cache: "no-store" });
    if (!response.ok) return;
    // a click on a district reaches the map too (Leaflet lets path clicks bubble)
    const layer = L.geoJSON(await response.json(), {
      style: () => ({ className: "district-shape", weight: 1 }),
      onEachFeature: (feature, path) => path.on("add", () =>
        setAttr(path.getElement(), "data-district", feature.properties.id)),
    }).addTo(this.map);
    this.map.invalidateSize(false);
    this.map.fitBounds(layer.getBounds(), { padding: [6, 6] });
    this.mapEl.dataset.ready = "true";
  }

  /** Set (or clear, with null) the position from a click on the map. */
  place(latlng) {
    const { lat, lon, district } = this.form.elements;
    if (this.marker) {
      this.marker.remove();
      this.marker = null;
    }
    if (!latlng) {
      lat.value = lon.value = "";
      return;
    }
    lat.value = latlng.lat.toFixed(6);
    lon.value = latlng.lng.toFixed(6);
    district.value = "";
    this.marker = L.circleMarker(latlng, { radius: 7, className: "filing-marker" }).addTo(this.map);
  }

  async send(data) {
    const body = {};
    for (const name of ["kind", "text", "severity", "district"]) {
      const value = String(data.get(name) ?? "").trim();
      if (value) body[name] = value;
    }
    for (const name of ["lat", "lon"]) {
      const value = String(data.get(name) ?? "").trim();
      if (value && !body.district) body[name] = Number(value);
    }
    const time = String(data.get("time") ?? "").trim();
    if (time) body.time = new Date(time).toISOString(); // the browser's local time, sent in UTC
    const links = String(data.get("attachments") ?? "").split(/\s+/).filter(Boolean);
    if (links.length) body.attachments = links;
    this.say("Filing…", "pending");
    const answer = await this.ctx.session.post("api/reports", body);
    if (!answer.ok) {
      this.say(answer.data.detail || answer.data.error || `HTTP ${answer.status}`, "error");
      return;
    }
    const [id] = answer.data.ids || [];
    this.form.reset();
    this.place(null);
    this.say(`Filed ${id || "the report"}.`, "ok");
  }

  say(text, kind) {
    setText(this.message, text);
    setAttr(this.message, "data-kind", kind || null);
  }
}
