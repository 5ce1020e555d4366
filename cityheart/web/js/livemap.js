// The overview's map (Leaflet, served from the package: vendor/leaflet): the districts' real
// boundaries from /api/geo/districts, coloured by level and labelled, with pan and zoom and no
// tile server; devices as markers coloured by state (ok / silent / stuck / out of range),
// clustered when zoomed out, at their position or, without one, at their district's centroid;
// incidents at their place (a circle around their alerts). Selecting a device shows its recent
// values (/api/history's raw readings of its district and kind, filtered to the device).

import { h, setAttr, setText } from "./dom.js";
import { number, unitLabel } from "./format.js";
import { RANKS, rankName } from "./levels.js";
import { BOARD_STATES } from "./incidents.js";

const L = window.L;
const DEVICE_STATES = ["ok", "out_of_range", "stuck", "silent"]; // healthiest first
const STATE_TEXT = { ok: "ok", out_of_range: "out of range", stuck: "stuck", silent: "silent",
                     unknown: "no word yet" };
const ACTIVE = new Set(BOARD_STATES.slice(0, 3));
const MIN_INCIDENT_RADIUS_M = 60;

export class LiveMap {
  /** onSelect(districtId) when a district is clicked. */
  constructor({ config, state, incidents, session, clock, onSelect }) {
    this.config = config;
    this.clock = clock;
    this.state = state;
    this.incidents = incidents;
    this.session = session;
    this.onSelect = onSelect;
    this.centroids = new Map(config.districts.map((d) => [d.id, [d.centroid[1], d.centroid[0]]]));
    this.names = new Map(config.districts.map((d) => [d.id, d.name]));
    this.el = h("div", { class: "city-map live-map", role: "group", "aria-label": `Map of ${config.city.name}` });
    this.map = L.map(this.el, { zoomSnap: 0.25, minZoom: 3, maxZoom: 19, attributionControl: true });
    this.map.attributionControl.setPrefix("Leaflet");
    this.districts = new Map(); // id -> {layer, label parts}
    this.devices = new Map(); // id -> {marker, device}
    this.known = []; // devices from /api/devices
    this.clusters = L.markerClusterGroup({ maxClusterRadius: 40, showCoverageOnHover: false,
                                           disableClusteringAtZoom: 17, iconCreateFunction: clusterIcon });
    this.incidentLayer = L.layerGroup();
    this.incidentShapes = new Map(); // id -> {circle, pin}
    this.bounds = null;
    // the city fills the map until someone pans or zooms, also when the page's layout moves
    this.userMoved = false;
    this.fitting = false;
    this.map.on("dragstart zoomstart", () => { if (!this.fitting) this.userMoved = true; });
    this.resized = new ResizeObserver(() => {
      this.map.invalidateSize(false);
      if (!this.userMoved) this.fit();
    });
    this.resized.observe(this.el);
    this.ready = this.load();
  }

  async load() {
    const response = await fetch("api/geo/districts", { cache: "no-store" });
    if (!response.ok) throw new Error(`api/geo/districts: HTTP ${response.status}`);
    const geojson = await response.json();
    if (this.destroyed) return;
    const layer = L.geoJSON(geojson, {
      style: () => ({ className: "district-shape", weight: 2 }),
      onEachFeature: (feature, path) => this.addDistrict(feature, path),
    });
    layer.addTo(this.map);
    this.clusters.addTo(this.map);
    this.incidentLayer.addTo(this.map);
    this.bounds = layer.getBounds();
    this.fit();
    for (const [id, entry] of this.districts) this.decorate(id, entry);
    const answer = await this.session.get("api/devices");
    if (this.destroyed) return;
    this.known = answer.ok ? answer.data.devices || [] : [];
    this.update();
    this.el.dataset.ready = "true";
  }

  addDistrict(feature, path) {
    const { id, name } = feature.properties;
    const parts = { name: h("span", { class: "district-name" }, name),
                    state: h("span", { class: "district-state" }),
                    worst: h("span", { class: "district-worst" }) };
    const box = h("div", { class: "district-label", "data-district": id, "data-label": id, "data-level": "none" },
      parts.name, parts.state, parts.worst);
    const centre = this.centroids.get(id) || path.getBounds().getCenter();
    const label = L.marker(centre, { icon: L.divIcon({ className: "district-label-icon", html: box,
                                                       iconSize: null }),
                                     interactive: false, keyboard: false });
    label.addTo(this.map);
    path.on("click", () => this.onSelect?.(id));
    this.districts.set(id, { path, box, ...parts });
  }

  /** The district's SVG path carries its id and level, for styling and for tests. */
  decorate(id, entry) {
    const el = entry.path.getElement?.() || entry.path.getLayers?.()[0]?.getElement();
    if (!el) return;
    entry.el = el;
    setAttr(el, "id", `district-${id}`);
    setAttr(el, "data-district", id);
    setAttr(el, "data-name", this.names.get(id));
    setAttr(el, "data-level", "none");
    setAttr(el, "tabindex", "0");
    el.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") this.onSelect?.(id);
    });
  }

  fit() {
    if (!this.bounds || !this.el.isConnected || !this.el.clientWidth) return false;
    this.map.invalidateSize(false);
    this.fitting = true;
    try {
      this.map.fitBounds(this.bounds, { padding: [12, 12], animate: false });
    } finally {
      this.fitting = false;
    }
    this.fitted = true;
    return true;
  }

  update() {
    if (!this.bounds || this.destroyed) return;
    if (!this.fitted) this.fit();
    for (const [id, entry] of this.districts) {
      const summary = this.state.summary(id);
      const level = rankName(summary.rank);
      setAttr(entry.box, "data-level", level);
      if (entry.el) setAttr(entry.el, "data-level", level);
      setAttr(entry.box, "data-worst", summary.worst ? summary.worst.id : null);
      setText(entry.state, summary.label);
      const worst = summary.worst;
      setText(entry.worst, worst ? `${worst.name} ${number(worst.value)} ${unitLabel(worst.unit)}`.trim() : "");
      setAttr(entry.worst, "data-level", worst ? RANKS[worst.rank] ?? "none" : null);
    }
    this.updateDevices();
    this.updateIncidents();
  }

  /**
   * Every device the registry names or the feed's device health speaks of, with its state:
   * each district's `device_health` record lists, per kind, the ids (or {id, lat, lon}) of its
   * ok, out-of-range, stuck and silent devices.
   */
  deviceList() {
    const byId = new Map(this.known.map((d) => [d.id, { ...d, state: "unknown" }]));
    for (const district of this.config.districts) {
      const health = this.state.indicators.get(`${district.id}/device_health`);
      for (const part of health?.components || []) {
        for (const state of DEVICE_STATES) { // healthiest first: the worst named wins
          for (const entry of part[state] || []) {
            const named = typeof entry === "string" ? { id: entry } : entry;
            if (!named || typeof named.id !== "string") continue;
            const device = byId.get(named.id) || { id: named.id, district: district.id, kind: part.kind };
            const place = typeof named.lat === "number" && typeof named.lon === "number"
              ? { lat: named.lat, lon: named.lon } : {};
            byId.set(named.id, { ...device, ...place, state });
          }
        }
      }
    }
    return [...byId.values()];
  }

  updateDevices() {
    const seen = new Set();
    let changed = false;
    for (const device of this.deviceList()) {
      seen.add(device.id);
      const located = typeof device.lat === "number" && typeof device.lon === "number";
      const at = located ? [device.lat, device.lon] : this.centroids.get(device.district);
      if (!at) continue;
      let entry = this.devices.get(device.id);
      if (!entry) {
        const dot = h("span", { class: "device-dot", "data-device": device.id });
        const marker = L.marker(at, { icon: L.divIcon({ className: "device-icon", html: dot, iconSize: [14, 14] }),
                                      title: device.id, keyboard: true });
        marker.on("click", () => this.selectDevice(device.id));
        entry = { marker, dot };
        this.devices.set(device.id, entry);
        this.clusters.addLayer(marker);
      } else if (!entry.marker.getLatLng().equals(at)) {
        entry.marker.setLatLng(at);
      }
      entry.device = device;
      changed ||= entry.marker.options.state !== device.state;
      entry.marker.options.state = device.state; // what its cluster's colour is made of
      setAttr(entry.dot, "data-state", device.state);
      setAttr(entry.dot, "data-located", located ? "true" : "false");
      setAttr(entry.dot, "data-district", device.district);
    }
    for (const [id, entry] of this.devices) {
      if (seen.has(id)) continue;
      this.clusters.removeLayer(entry.marker);
      this.devices.delete(id);
    }
    if (changed && this.map.hasLayer(this.clusters)) this.clusters.refreshClusters();
  }

  /** Zoom until the device's marker is out of its cluster, then show it. */
  showDevice(id) {
    const entry = this.devices.get(id);
    if (!entry) return false;
    this.clusters.zoomToShowLayer(entry.marker);
    return true;
  }

  async selectDevice(id) {
    const entry = this.devices.get(id);
    if (!entry) return;
    const { device } = entry;
    const values = h("ol", { class: "device-values" }, h("li", { class: "muted" }, "loading…"));
    const body = h("div", { class: "device-popup", "data-device": id },
      h("strong", {}, id),
      h("div", {}, `${this.config.kinds[device.kind]?.name || device.kind} · ${this.names.get(device.district) || device.district}`),
      h("div", { class: "device-state", "data-state": device.state }, STATE_TEXT[device.state] || device.state),
      h("div", { class: "muted" }, device.lat === undefined ? "no position yet: shown at its district's centre"
        : `${device.lat.toFixed(5)}, ${device.lon.toFixed(5)}`),
      values);
    entry.marker.unbindPopup().bindPopup(body, { maxWidth: 320 }).openPopup();
    const query = new URLSearchParams({ district: device.district, name: device.kind,
                                        source: "readings", since: "30m" });
    const answer = await this.session.get(`api/history?${query}`);
    const unit = unitLabel(this.config.kinds[device.kind]?.unit || "");
    const points = answer.ok ? (answer.data.points || []).filter((p) => p.device_id === id).slice(-8).reverse() : [];
    values.replaceChildren(...(points.length
      ? points.map((p) => h("li", { "data-ts": p.ts }, `${this.clock.format(new Date(p.ts))} · ${number(p.value)} ${unit}`.trim()))
      : [h("li", { class: "muted" }, answer.ok ? "no readings in the last 30 minutes" : "no history here")]));
  }

  updateIncidents() {
    const seen = new Set();
    for (const incident of this.incidents.incidents.values()) {
      if (!ACTIVE.has(incident.state)) continue;
      const located = typeof incident.lat === "number" && typeof incident.lon === "number";
      const at = located ? [incident.lat, incident.lon] : this.centroids.get(incident.district);
      if (!at) continue;
      seen.add(incident.id);
      let entry = this.incidentShapes.get(incident.id);
      if (!entry) {
        const pin = h("a", { class: "incident-pin", "data-incident": incident.id,
                             href: `#/incidents/${encodeURIComponent(incident.id)}` }, "!");
        entry = {
          circle: L.circle(at, { radius: MIN_INCIDENT_RADIUS_M, className: "incident-area", interactive: false }),
          // a teardrop whose tip (15.6 px below its centre, see app.css) is the place
          marker: L.marker(at, { icon: L.divIcon({ className: "incident-icon", html: pin, iconSize: [22, 22],
                                                   iconAnchor: [11, 27] }),
                                 zIndexOffset: 1000 }),
          pin,
        };
        entry.circle.addTo(this.incidentLayer);
        entry.marker.addTo(this.incidentLayer);
        this.incidentShapes.set(incident.id, entry);
      }
      entry.circle.setLatLng(at);
      entry.circle.setRadius(Math.max(incident.radius_m || 0, MIN_INCIDENT_RADIUS_M));
      entry.marker.setLatLng(at);
      setAttr(entry.pin, "data-level", incident.severity === "warning" ? "warning" : "critical");
      setAttr(entry.pin, "data-located", located ? "true" : "false");
      setAttr(entry.pin, "data-lat", at[0].toFixed(6));
      setAttr(entry.pin, "data-lon", at[1].toFixed(6));
      setAttr(entry.pin, "title", `${incident.title} · ${(incident.districts?.length ? incident.districts : [incident.district])
        .map((d) => this.names.get(d) || d).join(", ")}`);
    }
    for (const [id, entry] of this.incidentShapes) {
      if (seen.has(id)) continue;
      this.incidentLayer.removeLayer(entry.circle);
      this.incidentLayer.removeLayer(entry.marker);
      this.incidentShapes.delete(id);
    }
  }

  destroy() {
    this.destroyed = true;
    this.resized.disconnect();
    this.map.remove();
  }
}

/** A cluster's badge: how many devices, coloured by the worst state among them. */
function clusterIcon(cluster) {
  const states = cluster.getAllChildMarkers().map((m) => m.options.state || "unknown");
  const worst = states.reduce((w, s) => (DEVICE_STATES.indexOf(s) > DEVICE_STATES.indexOf(w) ? s : w), "unknown");
  const count = cluster.getChildCount();
  const size = count < 10 ? "small" : count < 100 ? "medium" : "large";
  const badge = h("div", { class: "device-cluster", "data-state": worst }, h("span", {}, String(count)));
  return L.divIcon({ html: badge, className: `marker-cluster marker-cluster-${size}`, iconSize: L.point(40, 40) });
}
