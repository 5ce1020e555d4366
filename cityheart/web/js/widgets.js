// Widgets the screens share: a value tile with a sparkline, and an alert row.

import { h, setAttr, setText } from "./dom.js";
import { number, unitLabel } from "./format.js";
import { rankName } from "./levels.js";
import { drawSpark, sparkSvg } from "./spark.js";
import { alertTime } from "./store.js";

/** A tile: name, value with unit, level, sparkline and a line of detail. */
export function tile(className = "tile") {
  return h("article", { class: className, "data-level": "none" },
    h("header", { class: "tile-name" }),
    h("div", { class: "tile-value" }, h("span", { class: "num" }), " ", h("span", { class: "unit" })),
    sparkSvg(),
    h("div", { class: "tile-meta" }, h("span", { class: "tile-level" }), " ", h("span", { class: "tile-detail" })),
    h("div", { class: "tile-worst", "data-level": "none" }));
}

/**
 * Refresh a tile: {name, value, unit, rank, level, points, threshold, meta, title, worst}.
 * `worst` ({text, rank}, optional) is a line in its own colour under a city-wide value: the
 * worst district, which the mean would hide.
 */
export function updateTile(el, item) {
  setAttr(el, "data-level", rankName(item.rank));
  setAttr(el, "title", item.title || null);
  setText(el.querySelector(".tile-name"), item.name);
  setText(el.querySelector(".tile-level"), item.rank >= 0 ? item.level : "no data");
  setText(el.querySelector(".num"), number(item.value));
  setText(el.querySelector(".unit"), unitLabel(item.unit));
  setText(el.querySelector(".tile-detail"), item.meta ? `· ${item.meta}` : "");
  drawSpark(el.querySelector("svg"), item.points || [], { threshold: item.threshold });
  const worst = el.querySelector(".tile-worst");
  setAttr(worst, "data-level", item.worst ? rankName(item.worst.rank) : "none");
  setAttr(worst, "hidden", item.worst ? null : "");
  setText(worst, item.worst ? item.worst.text : "");
}

/** An alert row for lists and the ticker. */
export function alertRow() {
  return h("li", { class: "alert-row" },
    h("span", { class: "alert-sev" }),
    h("time", { class: "alert-time" }),
    h("span", { class: "alert-where" }),
    h("p", { class: "alert-msg" }));
}

/** Refresh an alert row from an alert (its id is the row's key). */
export function updateAlertRow(el, alert, { clock, districtName, open }) {
  setAttr(el, "data-alert-id", alert.id);
  setAttr(el, "data-severity", alert.severity);
  setAttr(el, "data-open", open ? "true" : "false");
  setText(el.querySelector(".alert-sev"), open ? alert.severity : `${alert.severity} · cleared`);
  const time = alertTime(alert);
  const timeEl = el.querySelector(".alert-time");
  setText(timeEl, time ? clock.format(new Date(time)) : "");
  setAttr(timeEl, "datetime", alert.ts || alert.emitted_at || null);
  setText(el.querySelector(".alert-where"), districtName(alert.district));
  setText(el.querySelector(".alert-msg"), alert.message || `${alert.kind} ${alert.severity}`);
}

/** Mark rows created after the first render, so they flash once. */
export function flashNew(el) {
  el.classList.add("fresh");
  el.addEventListener("animationend", () => el.classList.remove("fresh"), { once: true });
}
