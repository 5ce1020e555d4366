// The city map: every district's polygon from config, coloured by its level, with its name,
// health score (or level) and worst indicator written on it. Clicking a district opens it.

import { s, setAttr, setText } from "./dom.js";
import { number, unitLabel } from "./format.js";
import { RANKS, rankName } from "./levels.js";
import { projection, ringBox, ringPath } from "./geo.js";

export class CityMap {
  /** onSelect(districtId) when a district is clicked; `compact` draws names only. */
  constructor(config, { onSelect, compact = false } = {}) {
    this.config = config;
    this.compact = compact;
    const { project, width, height } = projection(config.districts);
    this.el = s("svg", { class: compact ? "city-map compact" : "city-map", viewBox: `0 0 ${width} ${height}`,
                         role: "group", "aria-label": `Map of ${config.city.name}` });
    this.districts = new Map();
    const boxes = config.districts.map((d) => ringBox(d.polygon, project));
    // one type size for every district, from the smallest; long lines shrink to fit (fit())
    const size = Math.min(...boxes.map((b) => Math.min(b.height / (compact ? 4 : 7), b.width / 9)));
    config.districts.forEach((district, index) => {
      const box = boxes[index];
      const [cx, cy] = project(district.centroid);
      const group = s("g", { class: "district", "data-district": district.id, "data-level": "none",
                             tabindex: compact ? null : 0, role: "link", "aria-label": district.name });
      const path = s("path", { id: `district-${district.id}`, class: "district-shape",
                               "data-district": district.id, "data-name": district.name,
                               d: ringPath(district.polygon, project) },
        s("title", {}, district.name));
      const line = (className, dy, scale) => s("text", { class: className, x: cx, y: cy + dy * size,
                                                          "font-size": size * scale });
      const entry = { group, path, width: box.width * 0.9, size };
      entry.name = line("district-name", compact ? 0 : -1.25, compact ? 0.8 : 1);
      entry.name.textContent = district.name;
      group.append(path, entry.name);
      if (!compact) {
        entry.state = line("district-state", 0.15, 1.15);
        entry.worst = line("district-worst", 1.45, 0.8);
        group.append(entry.state, entry.worst);
      }
      if (onSelect) {
        group.addEventListener("click", () => onSelect(district.id));
        group.addEventListener("keydown", (event) => {
          if (event.key === "Enter" || event.key === " ") onSelect(district.id);
        });
      }
      this.districts.set(district.id, entry);
      this.el.append(group);
    });
    this.fitted = false;
  }

  /** Colour and label every district from the current state; `selected` is outlined. */
  update(state, selected = null) {
    if (!this.fitted && this.el.isConnected) {
      for (const entry of this.districts.values()) fit(entry.name, entry.width);
      this.fitted = true;
    }
    for (const [id, entry] of this.districts) {
      const summary = state.summary(id);
      setAttr(entry.group, "data-level", rankName(summary.rank));
      setAttr(entry.group, "data-selected", id === selected ? "true" : null);
      setAttr(entry.group, "data-worst", summary.worst ? summary.worst.id : null);
      if (this.compact) continue;
      // colour and words both from summary's one rank
      if (setText(entry.state, summary.label)) fit(entry.state, entry.width);
      const worst = summary.worst;
      const worstText = worst ? `${worst.name} ${number(worst.value)} ${unitLabel(worst.unit)}`.trim() : "";
      if (setText(entry.worst, worstText)) fit(entry.worst, entry.width);
      setAttr(entry.worst, "data-level", worst ? RANKS[worst.rank] ?? "none" : null);
    }
  }
}

/** Shrink an SVG text line (from its font-size attribute) until it is at most `width` long. */
function fit(text, width) {
  if (!text.isConnected || !text.textContent) return;
  const base = Number(text.dataset.size || text.getAttribute("font-size"));
  text.dataset.size = String(base);
  text.setAttribute("font-size", String(base));
  const length = text.getComputedTextLength();
  if (length > width) text.setAttribute("font-size", (base * width / length).toFixed(2));
}
